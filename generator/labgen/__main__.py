"""`python -m labgen` is `labgen`."""

from labgen.cli.main import main

main()
