"""labgen: reproducible container-networking labs on Vagrant machines."""

__version__ = "0.1.0"
