"""The helpers lab checks import: `from labgen.checklib import rules, links, ...`.

They live in labgen.inmachine.checklib, which is copied into every lab machine under this
same name; this module keeps the name labs use working on the host.
"""

from labgen.inmachine.checklib import *  # noqa: F403
from labgen.inmachine.checklib import __all__  # noqa: F401
