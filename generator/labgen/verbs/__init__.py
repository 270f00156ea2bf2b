"""One module per `labgen` verb, each a typed function that does the verb's work.

cli.py parses the command line and calls these; they return results (results.py)
that ui.py prints. A verb reads its options from its arguments and its Context,
never from the environment.
"""
