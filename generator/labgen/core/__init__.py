"""What every part of labgen shares: the lab model (lab.py: lab.yaml -> Lab), errors and
their exit codes (errors.py), the Context a verb is handed (context.py), the records verbs
return (results.py) and where labgen's data and machines live (resources.py).
"""
