"""A machine's network as data: its state read in one SSH call (snapshot.py), what a step
changed (diff.py), the namespaces, veth pairs and bridges as a graph (wiring.py), and that graph for
Graphviz (drawing.py)."""
