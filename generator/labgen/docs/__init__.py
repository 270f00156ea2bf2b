"""What labgen writes about labs: the docs pages (pages.py), the seed map (seedmap.py),
recorded outputs and their normalisation (recordings.py), and JUnit XML (junit.py)."""
