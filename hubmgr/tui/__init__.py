"""The Textual terminal UI (``hubmgr`` with no arguments, ``hubmgr tui``): :mod:`hubmgr.tui.app`.

Screens talk to the core only through :class:`hubmgr.tui.backend.Backend`, which imports each core module
when it is first needed, so opening the UI never imports torch.
"""
