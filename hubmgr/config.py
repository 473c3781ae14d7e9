"""Settings: Hub endpoint, token, offline mode and paths, read from the environment when asked.

The Hugging Face cache is shared with transformers and the ``hf`` CLI: we honour ``HF_HOME``,
``HF_HUB_CACHE``, ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` exactly as huggingface_hub does.
Values are read from ``os.environ`` each time :func:`get_settings` is called (huggingface_hub reads its
constants once at import, which would ignore a test's or a user's later change).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def _env_bool(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface"


@dataclass(frozen=True)
class Settings:
    """Where hubmgr talks to and where it keeps things.

    Attributes:
        endpoint: Hub base URL (``HF_ENDPOINT``), no trailing slash.
        offline: ``HF_HUB_OFFLINE`` is set: never touch the network.
        hub_cache: the shared model cache (``HF_HUB_CACHE`` or ``$HF_HOME/hub``).
        data_dir: hubmgr's own data (run registry, adapters): ``HUBMGR_HOME`` or the platform data dir.
        token: the Hub token, never printed. ``repr`` hides it.
    """

    endpoint: str = DEFAULT_ENDPOINT
    offline: bool = False
    hub_cache: Path = field(default_factory=lambda: _hf_home() / "hub")
    data_dir: Path = field(default_factory=lambda: Path.home() / ".local/share/hubmgr")
    token: str | None = field(default=None, repr=False)

    @property
    def runs_db(self) -> Path:
        return self.data_dir / "runs.sqlite"

    @property
    def runs_dir(self) -> Path:
        """Default parent folder of training outputs."""
        return self.data_dir / "runs"

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)


def _find_token() -> str | None:
    tok = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if tok:
        return tok.strip() or None
    path = os.environ.get("HF_TOKEN_PATH")
    token_file = Path(path).expanduser() if path else _hf_home() / "token"
    try:
        text = token_file.read_text().strip()
    except OSError:
        return None
    return text or None


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    import platformdirs

    endpoint = (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    hub_cache = Path(cache).expanduser() if cache else _hf_home() / "hub"
    home = os.environ.get("HUBMGR_HOME")
    data_dir = Path(home).expanduser() if home else Path(platformdirs.user_data_dir("hubmgr"))
    return Settings(
        endpoint=endpoint,
        offline=_env_bool("HF_HUB_OFFLINE"),
        hub_cache=hub_cache,
        data_dir=data_dir,
        token=_find_token(),
    )
