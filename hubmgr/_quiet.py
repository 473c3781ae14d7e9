"""Silence library chatter (load reports, progress bars, deprecation warnings) while training, evaluating or merging.

The CLI and the TUI report progress through events; transformers' own bars on stderr would garble a
terminal UI. Set ``HUBMGR_DEBUG=1`` to see everything.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from typing import Iterator


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Lower transformers/datasets verbosity, hide their progress bars and UserWarning/FutureWarning
    (except :class:`hubmgr.plugins.PluginWarning`: what a plugin's hook raised is shown)."""
    if os.environ.get("HUBMGR_DEBUG"):
        yield
        return
    import transformers

    previous = transformers.logging.get_verbosity()
    bars = transformers.utils.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        import datasets
    except ImportError:  # pragma: no cover
        datasets = None
    if datasets is not None:
        ds_bars = datasets.is_progress_bar_enabled()
        ds_verbosity = datasets.logging.get_verbosity()
        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
    # warnings.catch_warnings() swaps process-wide state: only from the main thread (the TUI trains and
    # evaluates in worker threads and shows its own notices).
    in_main = threading.current_thread() is threading.main_thread()
    try:
        with warnings.catch_warnings() if in_main else contextlib.nullcontext():
            if in_main:
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", FutureWarning)
                # what a plugin's hook raised is for the user (PluginWarning is a UserWarning)
                from hubmgr.plugins import PluginWarning

                warnings.simplefilter("always", PluginWarning)  # call_run_hook says each once a run
            yield
    finally:
        transformers.logging.set_verbosity(previous)
        if bars:
            transformers.utils.logging.enable_progress_bar()
        if datasets is not None:
            datasets.logging.set_verbosity(ds_verbosity)
            if ds_bars:
                datasets.enable_progress_bars()
