"""`python -m labgen` is `labgen`."""

from .cli import main

main()
