"""`python -m generator` is `labgen`."""

from .cli import main

main()
