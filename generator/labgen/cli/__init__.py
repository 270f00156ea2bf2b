"""The command line: parses arguments and calls one verb each; prints nothing itself.

main.py the `labgen` group, its one error boundary (LabgenGroup.invoke) and the learner's
verbs; author.py the lab author's and instructor's; verify.py verify and box; views.py
trace and draw; workshop.py the workshop; options.py the shared options and the Context
built from them.
"""
