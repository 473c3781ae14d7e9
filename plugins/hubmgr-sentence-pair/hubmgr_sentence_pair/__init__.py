"""hubmgr-sentence-pair: a third-party hubmgr task plugin for sentence-pair classification.

It is written against hubmgr's public API only (``from hubmgr import ...`` and :mod:`hubmgr.data`),
as any plugin on PyPI would be, and installed through its own entry point.
"""

__version__ = "0.1.0"
