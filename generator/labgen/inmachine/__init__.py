"""The modules copied into every lab machine (as lab/labgen/): standard library only, plus
pytest and testinfra from Debian for the checks. Labs import checklib as
`labgen.checklib` there and on the host. A test imports each with `python -S` from the
folder a machine gets.

checklib.py the helpers lab checks use; pytest_plugin.py the step marker and results file;
selection.py which checks apply to a step; trace.py, trace_run.py, trace_lab.py
`labgen-lab trace`: counters in hook order, the in-machine run, its command line.
"""
