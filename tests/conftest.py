"""Shared pytest fixtures: an isolated Hugging Face environment, the Hub double, tiny models, CLI runners.

Nothing here reaches the real Hub. ``huggingface_hub`` (and ``datasets``) read their settings (endpoint,
cache, offline, xet) once at import, so besides the environment variables :func:`hf_env` also patches
``huggingface_hub.constants`` (and ``datasets.config`` when already imported) for the test's duration.
Use :func:`set_offline` / :func:`set_endpoint` (``from tests.conftest import set_offline``) to change them
inside a test.

Tests marked ``slow`` read real data from ``../shared/data``; they should skip themselves (with a reason)
where that folder is absent: use the ``shared_data`` fixture, which does exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

_UNSET = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_ENDPOINT",
    "HF_TOKEN_PATH",
    "HUGGINGFACE_HUB_CACHE",
    "HF_ASSETS_CACHE",
    "HF_XET_CACHE",
    "HF_DATASETS_CACHE",
    "HUGGINGFACE_CO_STAGING",
    "HF_HUB_ENABLE_HF_TRANSFER",
    "HF_DATASETS_OFFLINE",
)


@dataclass(frozen=True)
class HFEnv:
    """The isolated folders of one test.

    Attributes:
        root: the test's ``tmp_path``.
        hf_home: ``HF_HOME``.
        hub_cache: ``HF_HUB_CACHE`` (``hf_home/hub``).
        hubmgr_home: ``HUBMGR_HOME``.
    """

    root: Path
    hf_home: Path
    hub_cache: Path
    hubmgr_home: Path


def _patch_hf_constants(
    monkeypatch: pytest.MonkeyPatch, *, endpoint: str | None, hf_home: Path, hub_cache: Path, offline: bool = False
) -> None:
    """Make huggingface_hub's import-time constants agree with the environment we set."""
    from huggingface_hub import constants

    ep = (endpoint or constants._HF_DEFAULT_ENDPOINT).rstrip("/")
    monkeypatch.setattr(constants, "ENDPOINT", ep)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", ep + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HUGGINGFACE_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(constants, "HF_ASSETS_CACHE", str(hf_home / "assets"))
    monkeypatch.setattr(constants, "HF_XET_CACHE", str(hf_home / "xet"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))
    for name, file in (
        ("AGENT_HARNESSES_PATH", ".agent_harnesses.json"),
        ("CHECK_FOR_UPDATE_DONE_PATH", ".check_for_update_done"),
        ("CHECK_FOR_SKILL_UPDATE_DONE_PATH", ".check_for_skill_update_done"),
    ):
        if hasattr(constants, name):
            monkeypatch.setattr(constants, name, str(hf_home / file))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_IMPLICIT_TOKEN", False)
    cfg = sys.modules.get("datasets.config")  # patched only when a test already imported datasets
    if cfg is not None:
        monkeypatch.setattr(cfg, "HF_ENDPOINT", ep)
        monkeypatch.setattr(cfg, "HUB_DATASETS_URL", ep + "/datasets/{repo_id}/resolve/{revision}/{path}")
        monkeypatch.setattr(cfg, "HF_CACHE_HOME", str(hf_home))
        monkeypatch.setattr(cfg, "HF_DATASETS_CACHE", hf_home / "datasets")
        monkeypatch.setattr(cfg, "HF_MODULES_CACHE", hf_home / "modules")
        monkeypatch.setattr(cfg, "DOWNLOADED_DATASETS_PATH", hf_home / "datasets" / "downloads")
        monkeypatch.setattr(cfg, "EXTRACTED_DATASETS_PATH", hf_home / "datasets" / "downloads" / "extracted")
        monkeypatch.setattr(cfg, "HF_HUB_OFFLINE", offline)
        monkeypatch.setattr(cfg, "HF_DATASETS_OFFLINE", offline)


def set_offline(monkeypatch: pytest.MonkeyPatch, offline: bool = True) -> None:
    """Switch offline mode on (or off) for this test: the env var and huggingface_hub's constant.

    Args:
        monkeypatch: the test's monkeypatch.
        offline: the new state.
    """
    from huggingface_hub import constants

    if offline:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)
    cfg = sys.modules.get("datasets.config")
    if cfg is not None:
        monkeypatch.setattr(cfg, "HF_HUB_OFFLINE", offline)
        monkeypatch.setattr(cfg, "HF_DATASETS_OFFLINE", offline)


def set_endpoint(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Point ``HF_ENDPOINT`` (and huggingface_hub's constants) at *url* for this test.

    Args:
        monkeypatch: the test's monkeypatch.
        url: the endpoint, e.g. ``hub_server.url`` or an unreachable ``http://127.0.0.1:9``.
    """
    from huggingface_hub import constants

    url = url.rstrip("/")
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    cfg = sys.modules.get("datasets.config")
    if cfg is not None:
        monkeypatch.setattr(cfg, "HF_ENDPOINT", url)
        monkeypatch.setattr(cfg, "HUB_DATASETS_URL", url + "/datasets/{repo_id}/resolve/{revision}/{path}")


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> HFEnv:
    """Isolate the test from the user's Hugging Face set-up.

    ``HF_HOME``, ``HF_HUB_CACHE`` and ``HUBMGR_HOME`` point into ``tmp_path``; tokens, offline mode and
    ``HF_ENDPOINT`` are unset; xet and telemetry are off. huggingface_hub's constants follow.

    Returns:
        :class:`HFEnv` with the folders.
    """
    hf_home = tmp_path / "hf_home"
    hub_cache = hf_home / "hub"
    hubmgr_home = tmp_path / "hubmgr_home"
    for p in (hub_cache, hubmgr_home):
        p.mkdir(parents=True, exist_ok=True)
    for name in _UNSET:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(hf_home / "datasets"))
    monkeypatch.setenv("HUBMGR_HOME", str(hubmgr_home))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_UPDATE_CHECK", "1")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    _patch_hf_constants(monkeypatch, endpoint=None, hf_home=hf_home, hub_cache=hub_cache)
    return HFEnv(root=tmp_path, hf_home=hf_home, hub_cache=hub_cache, hubmgr_home=hubmgr_home)


@pytest.fixture
def hub_server(hf_env: HFEnv, monkeypatch: pytest.MonkeyPatch):
    """A started Hub double with ``HF_ENDPOINT`` pointed at it; stopped after the test.

    Yields:
        :class:`hubmgr.testing.HubServer` (empty: add repos with ``add_repo`` / ``add_pretrained``).
    """
    from hubmgr.testing import HubServer

    server = HubServer()
    server.start()
    set_endpoint(monkeypatch, server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT folder (BertModel + word-level tokenizer, 2 labels), built once per session."""
    from hubmgr.testing.models import tiny_bert_dir

    return tiny_bert_dir(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random GPT-2 folder (GPT2LMHeadModel + tokenizer with chat template), built once per session."""
    from hubmgr.testing.models import tiny_gpt2_dir

    return tiny_gpt2_dir(tmp_path_factory.mktemp("tiny_gpt2"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama folder (LlamaForCausalLM + tokenizer with chat template), built once per session."""
    from hubmgr.testing.models import tiny_llama_dir

    return tiny_llama_dir(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ViT folder (ViTModel 32x32 + image processor, 3 labels), built once per session."""
    from hubmgr.testing.models import tiny_vit_dir

    return tiny_vit_dir(tmp_path_factory.mktemp("tiny_vit"))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real data sets for ``slow`` tests); skips the test where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def run_cli():
    """Run ``python -m hubmgr ARGS`` in a subprocess with the current environment.

    Returns:
        A function ``run(*args, input=None, env=None, timeout=120, cwd=None) -> CompletedProcess`` (text
        mode, stdout/stderr captured). ``env`` entries are added to ``os.environ`` (a value of ``None``
        removes the variable).
    """

    def run(
        *args: str,
        input: str | None = None,
        env: dict[str, str | None] | None = None,
        timeout: float = 120,
        cwd: str | Path | None = None,
    ) -> subprocess.CompletedProcess:
        full_env = dict(os.environ)
        full_env.setdefault("COLUMNS", "200")
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        return subprocess.run(
            [sys.executable, "-m", "hubmgr", *map(str, args)],
            input=input,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(cwd) if cwd else None,
        )

    return run


@pytest.fixture
def cli_runner():
    """Invoke the click group in-process.

    Returns:
        A function ``invoke(*args, input=None, env=None) -> click.testing.Result`` calling
        ``hubmgr.cli.cli`` through ``CliRunner`` (``catch_exceptions=False`` is *not* set, so a
        ``SystemExit`` code lands in ``result.exit_code``).
    """
    from click.testing import CliRunner

    from hubmgr.cli import cli

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None, **kw):
        return runner.invoke(cli, [str(a) for a in args], input=input, env=env, prog_name="hubmgr", **kw)

    invoke.runner = runner  # type: ignore[attr-defined]
    return invoke
