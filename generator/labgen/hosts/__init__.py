"""Hosts other than this one that machines run on: the registry, a probe, the image push."""
