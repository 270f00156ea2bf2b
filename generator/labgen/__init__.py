"""labgen: reproducible container-networking labs on Vagrant machines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("labgen")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
