"""A lab's testinfra checks: run in a child pytest over SSH (runner.py) and read as
documentation (reader.py). What the checks themselves import lives in labgen.inmachine.
"""
