"""What labgen writes about labs: the docs pages (pages.py), the seed map (seedmap.py),
the tutorial's listings beside the recordings (listings.py), recorded outputs and their
normalisation (recordings.py), and JUnit XML (junit.py)."""
