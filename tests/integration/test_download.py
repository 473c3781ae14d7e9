"""download_repo against the Hub double: the shared cache layout (read back by huggingface_hub and
transformers), globs and weight rules, unsafe names, integrity, retries, resume after SIGKILL, two processes
at once, offline mode, gated repos, mirrors without an API route, disk full, cancel and progress events."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hubmgr.errors import (
    DiskFullError,
    GatedRepoError,
    HubUnreachableError,
    IntegrityError,
    ModelError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafePathError,
    UnsupportedByMirrorError,
    UsageError,
)
from hubmgr.hub import client
from hubmgr.hub import download as dl
from hubmgr.hub import events as ev
from hubmgr.hub import files
from hubmgr.hub import layout
from hubmgr.hub.download import DownloadCancelled, download_repo
from tests.conftest import set_endpoint, set_offline

REPO = "acme/tiny"


def storage(hf_env) -> Path:
    return hf_env.hub_cache / "models--acme--tiny"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def weights() -> bytes:
    return os.urandom(300_000)


@pytest.fixture
def tiny_repo(hub_server, weights):
    """A repo with a config, LFS weights, a nested small file and a pickle copy of the weights."""
    sha = hub_server.add_repo(
        REPO,
        {
            "config.json": '{"model_type": "bert"}',
            "model.safetensors": weights,
            "pytorch_model.bin": b"pickle" * 1000,
            "docs/notes.txt": "hello",
        },
    )
    return sha


def read(path: Path) -> bytes:
    return path.read_bytes()


# ------------------------------------------------------------------------------------------------ layout
def test_layout_matches_huggingface_hub(hub_server, hf_env, tiny_repo, weights):
    result = download_repo(REPO)
    st = storage(hf_env)
    snap = st / "snapshots" / tiny_repo
    assert result.commit == tiny_repo
    assert result.path == snap
    assert result.files == ["config.json", "docs/notes.txt", "model.safetensors"]
    assert result.skipped == ["pytorch_model.bin"]
    assert "--allow-pickle" in result.skip_reasons["pytorch_model.bin"]
    assert (st / "refs" / "main").read_text() == tiny_repo
    # LFS blob named by sha256, small files by git blob sha1; relative symlinks
    assert (st / "blobs" / sha256(weights)).read_bytes() == weights
    link = snap / "model.safetensors"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert os.readlink(link) == f"../../blobs/{sha256(weights)}"
    assert os.readlink(snap / "docs" / "notes.txt") == f"../../../blobs/{dl.git_blob_sha1(b'hello')}"
    assert read(snap / "docs" / "notes.txt") == b"hello"
    assert not list(st.glob("blobs/*.incomplete"))
    assert (hf_env.hub_cache / ".locks" / "models--acme--tiny").is_dir()

    import huggingface_hub as hh

    assert hh.try_to_load_from_cache(REPO, "model.safetensors", cache_dir=hf_env.hub_cache) == str(link)
    assert hh.hf_hub_download(REPO, "config.json", local_files_only=True) == str(snap / "config.json")
    info = hh.scan_cache_dir(hf_env.hub_cache)
    assert not info.warnings
    (repo,) = info.repos
    assert repo.repo_id == REPO and {r.commit_hash for r in repo.revisions} == {tiny_repo}
    # huggingface_hub online: same blob names -> it finds the file and transfers nothing
    hub_server.reset_counters()
    assert hh.hf_hub_download(REPO, "model.safetensors") == str(link)
    assert hub_server.bytes_sent() == 0
    # its offline snapshot check reads our tree listing and finds the selection complete
    assert hh.snapshot_download(REPO, local_files_only=True, ignore_patterns=["*.bin"]) == str(snap)


def test_transformers_reads_the_download(hub_server, hf_env, tiny_bert):
    sha = hub_server.add_repo("acme/bert", folder=tiny_bert)
    result = download_repo("acme/bert")
    assert result.commit == sha and "config.json" in result.files
    code = (
        "from transformers import AutoConfig, AutoTokenizer\n"
        "c = AutoConfig.from_pretrained('acme/bert', local_files_only=True)\n"
        "t = AutoTokenizer.from_pretrained('acme/bert', local_files_only=True)\n"
        "print(c.model_type, type(t).__name__)\n"
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hf_env.hub_cache))
    env.pop("HF_ENDPOINT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "bert"


def test_second_download_transfers_nothing(hub_server, hf_env, tiny_repo):
    download_repo(REPO)
    hub_server.reset_counters()
    events = []
    result = download_repo(REPO, on_event=events.append)
    assert result.transferred_bytes == 0 and hub_server.bytes_sent() == 0
    done = [e for e in events if isinstance(e, ev.FileDone)]
    assert done and all(e.cached for e in done)
    started = next(e for e in events if isinstance(e, ev.DownloadStarted))
    assert started.bytes_cached == started.total_bytes


# ------------------------------------------------------------------------------------------------ selection
def test_include_exclude(hub_server, hf_env, tiny_repo):
    r = download_repo(REPO, include=["*.json", "docs/"])
    assert r.files == ["config.json", "docs/notes.txt"]
    assert not (r.path / "model.safetensors").exists()
    r = download_repo(REPO, exclude=["docs/*", "*.json"])
    assert r.files == ["model.safetensors"]
    with pytest.raises(UsageError, match="No file"):
        download_repo(REPO, include=["*.gguf"])


def test_pickle_rules(hub_server, hf_env, tiny_repo):
    # safetensors present: even with --allow-pickle the pickle copy is skipped ...
    r = download_repo(REPO, allow_pickle=True)
    assert "pytorch_model.bin" in r.skipped and "safetensors" in r.skip_reasons["pytorch_model.bin"]
    assert not (r.path / "pytorch_model.bin").exists()
    # ... unless an include pattern names it
    r = download_repo(REPO, allow_pickle=True, include=["pytorch_model.bin", "*.json"])
    assert (r.path / "pytorch_model.bin").read_bytes() == b"pickle" * 1000
    # a pickle-only repo: refused by default (a folder without weights is no model), nothing written ...
    hub_server.add_repo("acme/old", {"config.json": "{}", "pytorch_model.bin": b"w" * 5000})
    with pytest.raises(ModelError) as info:
        download_repo("acme/old")
    assert "pytorch_model.bin" in str(info.value) and "--allow-pickle" in str(info.value)
    assert info.value.exit_code == 9
    assert not (hf_env.hub_cache / "models--acme--old").exists()
    # ... the config alone when the globs ask for it, everything with allow_pickle
    r = download_repo("acme/old", include=["*.json"])
    assert r.files == ["config.json"] and r.skipped == []
    r = download_repo("acme/old", allow_pickle=True)
    assert r.files == ["config.json", "pytorch_model.bin"] and not r.skipped


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs/evil.txt", "dir\\evil.txt", "a/../../evil.txt"])
def test_unsafe_names_refused_before_writing(hub_server, hf_env, bad):
    hub_server.add_repo("acme/evil", {"config.json": "{}", bad: b"x" * 10})
    with pytest.raises(UnsafePathError) as info:
        download_repo("acme/evil")
    assert repr(bad)[1:-1] in str(info.value) or bad in str(info.value)
    repo_dir = hf_env.hub_cache / "models--acme--evil"
    assert not (repo_dir / "blobs").exists() and not (repo_dir / "snapshots").exists()
    assert not list(hf_env.root.rglob("evil.txt")) and not list(hf_env.root.rglob("escape.txt"))
    # leaving it out with --exclude downloads the rest
    r = download_repo("acme/evil", include=["config.json"])
    assert r.files == ["config.json"]


def test_select_files_rules():
    paths = ["config.json", "model.safetensors", "pytorch_model.bin", "sub/a.txt", "sub/b/c.txt", "opt.pt"]
    sel, skipped = files.select_files(paths)
    assert sel == ["config.json", "model.safetensors", "sub/a.txt", "sub/b/c.txt"]
    assert set(skipped) == {"pytorch_model.bin", "opt.pt"}
    assert files.select_files(paths, include=["sub/"])[0] == ["sub/a.txt", "sub/b/c.txt"]
    assert files.select_files(paths, include="*.json", exclude=["config*"]) == ([], {})
    sel, skipped = files.select_files(["config.json", "pytorch_model.bin"], allow_pickle=True)
    assert sel == ["config.json", "pytorch_model.bin"] and not skipped


@pytest.mark.parametrize(
    "name", ["..", "../x", "a/../../x", "/etc/passwd", "C:/x", "a\\..\\x", "", "a//b", "./a", "nul\x00byte"]
)
def test_check_safe_name_refuses(tmp_path, name):
    with pytest.raises(UnsafePathError):
        layout.check_safe_name(name, tmp_path)


def test_check_safe_name_accepts(tmp_path):
    assert layout.check_safe_name("a/b/c.json", tmp_path) == tmp_path / "a" / "b" / "c.json"
    assert layout.check_safe_name("..hidden", tmp_path) == tmp_path / "..hidden"


def test_bad_repo_id_and_workers(hf_env):
    with pytest.raises(UsageError):
        download_repo("not a repo")
    with pytest.raises(UsageError):
        download_repo("a/b/c")
    with pytest.raises(UsageError):
        download_repo("acme/x", max_workers=0)
    # one rule for every command: what `info` refuses, `download` refuses too
    from hubmgr.hub.info import get_model_info

    for bad in ("acme-/x", "acme/.x"):
        for call in (download_repo, get_model_info):
            with pytest.raises(UsageError, match="not a valid repo id"):
                call(bad)


# ------------------------------------------------------------------------------------------------ errors
def test_not_found_errors(hub_server, hf_env, tiny_repo):
    with pytest.raises(RepoNotFoundError, match="acme/nope"):
        download_repo("acme/nope")
    with pytest.raises(RevisionNotFoundError, match="v9"):
        download_repo(REPO, revision="v9")


def test_gated_repo(hub_server, hf_env, monkeypatch, weights):
    hub_server.add_repo("acme/gated", {"config.json": "{}", "model.safetensors": weights}, gated=True)
    with pytest.raises(GatedRepoError) as info:
        download_repo("acme/gated")
    msg = str(info.value)
    assert "HF_TOKEN" in msg and "hf auth login" in msg and info.value.exit_code == 4
    assert not (hf_env.hub_cache / "models--acme--gated" / "refs").exists()
    from hubmgr.hub.cache import list_cached

    assert "acme/gated" not in {repo.repo_id for repo in list_cached()}  # no empty revision left behind
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_123")
    with pytest.raises(GatedRepoError) as info:
        download_repo("acme/gated")
    assert "hf_secret_token_123" not in str(info.value)
    hub_server.grant("acme/gated", "hf_secret_token_123")
    r = download_repo("acme/gated")
    assert (r.path / "model.safetensors").read_bytes() == weights


def test_mirror_without_tree_or_info(hub_server, hf_env, tiny_repo, weights):
    hub_server.disable_api("tree")
    r = download_repo(REPO)  # falls back to the model info's siblings (blobs=true)
    assert (r.path / "model.safetensors").read_bytes() == weights
    hub_server.enable_api()
    hub_server.disable_api("model_info")
    r = download_repo(REPO, revision="main")  # tree + X-Repo-Commit
    assert r.commit == tiny_repo
    hub_server.disable_api("tree")
    with pytest.raises(UnsupportedByMirrorError, match="does not serve|serves neither"):
        download_repo(REPO)


# ------------------------------------------------------------------------------------------------ integrity
@pytest.mark.parametrize("path", ["model.safetensors", "config.json"])
def test_corrupt_bytes_never_placed(hub_server, hf_env, tiny_repo, weights, path):
    hub_server.inject("corrupt", path=path)
    with pytest.raises(IntegrityError) as info:
        download_repo(REPO)
    assert path in str(info.value)
    st = storage(hf_env)
    snap = st / "snapshots" / tiny_repo
    assert not (snap / path).exists() and not (snap / path).is_symlink()
    blob = sha256(weights) if path == "model.safetensors" else dl.git_blob_sha1(b'{"model_type": "bert"}')
    assert not (st / "blobs" / f"{blob}.incomplete").exists()
    if path == "model.safetensors":
        assert not (st / "blobs" / sha256(weights)).exists()
    assert not (st / "refs" / "main").exists()
    r = download_repo(REPO)  # the fault is spent: the next try succeeds
    assert (r.path / "model.safetensors").read_bytes() == weights


def test_retries_truncate_drop_500(hub_server, hf_env, tiny_repo, weights):
    hub_server.inject("truncate", path="model.safetensors", after_bytes=1000)
    hub_server.inject("drop", path="model.safetensors", after_bytes=50_000)
    hub_server.inject("error500", path="config.json", times=2)
    hub_server.inject("drop", path="docs/notes.txt", after_bytes=0)
    r = download_repo(REPO)
    assert (r.path / "model.safetensors").read_bytes() == weights
    assert (r.path / "config.json").read_bytes() == b'{"model_type": "bert"}'
    assert (r.path / "docs/notes.txt").read_bytes() == b"hello"
    assert hub_server.pending_faults() == 0
    # resumed with Range after the cuts: nothing sent twice
    assert hub_server.bytes_sent(REPO, "model.safetensors") == len(weights)
    ranges = [q.range for q in hub_server.requests if q.file == "model.safetensors" and q.method == "GET"]
    assert ranges[0] is None and ranges[1:] == ["bytes=1000-", "bytes=51000-"]


def test_rate_limit_honours_retry_after(hub_server, hf_env, tiny_repo, weights):
    hub_server.inject("rate_limit", path="model.safetensors", retry_after=1)
    t0 = time.monotonic()
    r = download_repo(REPO)
    assert time.monotonic() - t0 >= 0.95
    assert (r.path / "model.safetensors").read_bytes() == weights


def test_server_ignoring_range_restarts_from_zero(hub_server, hf_env, tiny_repo, weights, monkeypatch):
    st = storage(hf_env)
    (st / "blobs").mkdir(parents=True)
    (st / "blobs" / f"{sha256(weights)}.incomplete").write_bytes(weights[:100_000])
    real = dl._Http.request

    def no_range(self, method, url, **kw):
        headers = dict(kw.pop("headers", None) or {})
        headers.pop("Range", None)
        return real(self, method, url, headers=headers, **kw)

    monkeypatch.setattr(dl._Http, "request", no_range)
    r = download_repo(REPO, include=["model.safetensors"])
    assert (r.path / "model.safetensors").read_bytes() == weights
    assert hub_server.bytes_sent(REPO, "model.safetensors") == len(weights)


def test_stale_partial_with_wrong_bytes_is_caught(hub_server, hf_env, tiny_repo, weights):
    st = storage(hf_env)
    (st / "blobs").mkdir(parents=True)
    (st / "blobs" / f"{sha256(weights)}.incomplete").write_bytes(b"\0" * 1000)
    with pytest.raises(IntegrityError, match="model.safetensors"):
        download_repo(REPO, include=["model.safetensors"])
    assert not list(st.glob("blobs/*.incomplete"))
    r = download_repo(REPO, include=["model.safetensors"])
    assert (r.path / "model.safetensors").read_bytes() == weights


# ------------------------------------------------------------------------------------------------ resume
def test_cancel_keeps_partial_and_resume_sends_only_the_rest(hub_server, hf_env, tiny_repo):
    big = os.urandom(3_000_000)
    hub_server.add_repo(REPO, {"model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=2_000_000)
    cancel = threading.Event()

    def on_event(e):
        if isinstance(e, ev.FileProgress) and e.path == "model.safetensors" and e.done > 200_000:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="run it again to resume"):
        download_repo(REPO, include=["model.safetensors"], on_event=on_event, cancel=cancel)
    st = storage(hf_env)
    (partial,) = st.glob("blobs/*.incomplete")
    have = partial.stat().st_size
    assert 0 < have < len(big)
    assert not list(st.glob("snapshots/*/model.safetensors"))

    hub_server.clear_faults()
    hub_server.reset_counters()
    events = []
    r = download_repo(REPO, include=["model.safetensors"], on_event=events.append)
    assert (r.path / "model.safetensors").read_bytes() == big
    ranges = [q.range for q in hub_server.requests if q.file == "model.safetensors" and q.method == "GET"]
    assert ranges == [f"bytes={have}-"]
    # (the cancelled response's server thread may still settle its count: allow one chunk either way)
    assert abs(hub_server.bytes_sent(REPO, "model.safetensors") - (len(big) - have)) <= 128 * 1024
    started = next(e for e in events if isinstance(e, ev.FileStarted))
    assert started.resumed_from == have
    assert r.transferred_bytes == len(big) - have


def _popen_download(repo: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hubmgr", "download", repo, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_sigkill_mid_file_then_resume(hub_server, hf_env):
    size = 24_000_000
    big = os.urandom(size)
    hub_server.add_repo("acme/big", {"config.json": "{}", "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=3_000_000)
    proc = _popen_download("acme/big")
    st = hf_env.hub_cache / "models--acme--big"
    partial = st / "blobs" / f"{sha256(big)}.incomplete"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size > 2_000_000:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        else:
            pytest.fail("the download never got going")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    hub_server.clear_faults()
    have = partial.stat().st_size
    assert 0 < have < size
    assert not (st / "blobs" / sha256(big)).exists()
    assert not list(st.glob("snapshots/*/model.safetensors"))

    time.sleep(0.5)  # let the server thread of the killed connection notice and settle its byte count
    hub_server.reset_counters()
    r = download_repo("acme/big")
    sent = hub_server.bytes_sent("acme/big", "model.safetensors")
    assert sent <= size - have + 128 * 1024, (sent, size - have)
    ranges = [q.range for q in hub_server.requests if q.file == "model.safetensors" and q.method == "GET"]
    assert ranges == [f"bytes={have}-"]
    assert (r.path / "model.safetensors").read_bytes() == big


def test_two_processes_download_one_repo(hub_server, hf_env):
    size = 16_000_000
    big = os.urandom(size)
    sha = hub_server.add_repo("acme/big", {"config.json": "{}", "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=4_000_000, times=1)
    snap = hf_env.hub_cache / "models--acme--big" / "snapshots" / sha
    first = _popen_download("acme/big", "--json")
    assert hub_server.wait_for_bytes(1, repo_id="acme/big", path="model.safetensors", timeout=60)
    second = _popen_download("acme/big", "--json")
    seen_bad = []
    try:
        while first.poll() is None or second.poll() is None:
            # a reader never sees an incomplete or corrupt file in the snapshot
            link = snap / "model.safetensors"
            if link.exists():
                n = link.stat().st_size
                if n != size:
                    seen_bad.append(n)
            time.sleep(0.02)
    finally:
        outs = [p.communicate(timeout=120) for p in (first, second)]
    assert first.returncode == 0, outs[0][1]
    assert second.returncode == 0, outs[1][1]
    assert not seen_bad
    import json

    results = [json.loads(o[0]) for o in outs]
    assert all(res["path"] == str(snap) for res in results)
    # the blob crossed the network once: the second process waited for the lock and found it complete
    assert hub_server.bytes_sent("acme/big", "model.safetensors") == size
    assert sorted(res["transferred_bytes"] for res in results)[0] <= 2  # config.json at most
    assert (snap / "model.safetensors").read_bytes() == big
    from hubmgr.hub.cache import verify

    assert all(v.ok for v in verify("acme/big"))


# ------------------------------------------------------------------------------------------------ offline
def test_offline_uses_the_cache(hub_server, hf_env, tiny_repo, monkeypatch):
    first = download_repo(REPO)
    hub_server.add_repo("acme/other", {"config.json": "{}"})
    set_offline(monkeypatch)
    hub_server.reset_counters()
    r = download_repo(REPO)
    assert r.from_cache and r.path == first.path and r.files == first.files
    assert hub_server.requests == []
    r = download_repo(REPO, revision=tiny_repo, include=["*.json"])
    assert r.files == ["config.json"]
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE.*acme/other"):
        download_repo("acme/other")
    # a revision that is only partly cached is not "fully in the cache"
    with pytest.raises(HubUnreachableError, match="not fully in the cache"):
        download_repo(REPO, allow_pickle=True, include=["pytorch_model.bin"])


def test_partial_download_is_not_complete_offline(hub_server, hf_env, tiny_repo, monkeypatch):
    download_repo(REPO, include=["config.json"])
    set_offline(monkeypatch)
    assert download_repo(REPO, include=["config.json"]).from_cache
    with pytest.raises(HubUnreachableError):
        download_repo(REPO)


def test_unreachable_endpoint(hub_server, hf_env, tiny_repo, monkeypatch):
    download_repo(REPO)
    hub_server.stop()
    set_endpoint(monkeypatch, "http://127.0.0.1:9")
    r = download_repo(REPO)
    assert r.from_cache
    with pytest.raises(HubUnreachableError, match="unreachable.*acme/other"):
        download_repo("acme/other")


# ------------------------------------------------------------------------------------------------ disk full
def test_disk_full_before_start(hub_server, hf_env, tiny_repo, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9 - 10, 10))
    with pytest.raises(DiskFullError, match="disk space"):
        download_repo(REPO)


def test_disk_full_mid_file(hub_server, hf_env, tiny_repo, weights, monkeypatch):
    import builtins

    state = {"full": True}

    class Full:
        def __init__(self, f):
            self._f = f
            self.written = 0

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

        def write(self, data):
            if state["full"] and self.written + len(data) > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def fake_open(path, mode="r", *a, **kw):
        f = builtins.open(path, mode, *a, **kw)
        return Full(f) if mode == "ab" else f

    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    with pytest.raises(DiskFullError):
        download_repo(REPO, include=["model.safetensors"])
    st = storage(hf_env)
    assert not (st / "blobs" / sha256(weights)).exists()
    assert not list(st.glob("snapshots/*/model.safetensors"))
    partial = st / "blobs" / f"{sha256(weights)}.incomplete"
    assert 0 < partial.stat().st_size <= 100_000  # kept: space freed, the next run resumes
    state["full"] = False
    r = download_repo(REPO, include=["model.safetensors"])
    assert (r.path / "model.safetensors").read_bytes() == weights


# ------------------------------------------------------------------------------------------------ events
def test_events_are_typed_serialized_and_consistent(hub_server, hf_env, tiny_repo, weights):
    events = []
    busy = threading.Lock()
    overlaps = []

    def on_event(e):
        if not busy.acquire(blocking=False):
            overlaps.append(e)
            return
        try:
            events.append(e)
            time.sleep(0.001)
        finally:
            busy.release()

    r = download_repo(REPO, on_event=on_event, max_workers=4)
    assert not overlaps
    assert isinstance(events[0], ev.DownloadStarted) and isinstance(events[-1], ev.DownloadFinished)
    started = events[0]
    assert started.commit == r.commit and started.total_files == 3
    assert started.total_bytes == len(weights) + len('{"model_type": "bert"}') + 5
    done = [e for e in events if isinstance(e, ev.FileDone)]
    assert sorted(e.path for e in done) == r.files
    last = [e for e in events if isinstance(e, ev.DownloadProgress)][-1]
    assert last.done_bytes == last.total_bytes == started.total_bytes and last.files_done == 3
    assert events[-1].transferred_bytes == r.transferred_bytes == started.total_bytes
    assert all(e.done <= e.size for e in events if isinstance(e, ev.FileProgress))


# ------------------------------------------------------------------------------------------------ stalls, 429
def _retries(events):
    return [e for e in events if isinstance(e, ev.DownloadRetry)]


def test_stalled_answer_times_out_and_resumes_visibly(hub_server, hf_env, tiny_repo, weights, monkeypatch):
    # headers, 100 kB, then nothing: the read timeout ends the wait, the retry is announced, Range resumes
    monkeypatch.setattr(dl, "READ_TIMEOUT", 1.0)
    hub_server.inject("stall", path="model.safetensors", after_bytes=100_000, timeout=30)
    events = []
    t0 = time.monotonic()
    r = download_repo(REPO, on_event=events.append)
    assert time.monotonic() - t0 < 15
    assert (r.path / "model.safetensors").read_bytes() == weights
    retry = _retries(events)[0]
    assert retry.path == "model.safetensors" and "no data for 1 s, at 100000 of 300000 bytes" in retry.reason
    assert retry.max_attempts == client.RETRY.max_tries and retry.attempt == 1
    ranges = [q.range for q in hub_server.requests if q.file == "model.safetensors" and q.method == "GET"]
    assert ranges[:2] == [None, "bytes=100000-"]
    assert hub_server.bytes_sent(REPO, "model.safetensors") == len(weights)  # nothing sent twice


def test_stall_that_never_ends_gives_up_with_one_clear_error(hub_server, hf_env, tiny_repo, monkeypatch):
    monkeypatch.setattr(dl, "READ_TIMEOUT", 0.3)
    monkeypatch.setattr(client, "RETRY", dataclasses.replace(client.RETRY, backoff_base=0.01))
    hub_server.inject("stall", path="model.safetensors", after_bytes=0, timeout=30, times=None)
    events = []
    t0 = time.monotonic()
    with pytest.raises(HubUnreachableError) as info:
        download_repo(REPO, on_event=events.append)
    assert time.monotonic() - t0 < 15
    msg = str(info.value)
    assert "model.safetensors" in msg and "no data for 0.3 s" in msg and "resume" in msg
    assert len(_retries(events)) == client.RETRY.max_tries - 1
    # progress kept coming while nothing arrived, saying so
    assert any(isinstance(e, ev.DownloadProgress) and e.stalled_for >= 1 for e in events)


def test_rate_limit_retry_after_is_capped_and_announced(hub_server, hf_env, tiny_repo, weights, monkeypatch):
    monkeypatch.setattr(client, "RETRY", dataclasses.replace(client.RETRY, max_retry_after=0.2))
    hub_server.inject("rate_limit", path="model.safetensors", retry_after=3600, times=2)
    events = []
    t0 = time.monotonic()
    r = download_repo(REPO, on_event=events.append)
    assert time.monotonic() - t0 < 5
    assert (r.path / "model.safetensors").read_bytes() == weights
    retries = _retries(events)
    assert len(retries) == 2 and all(e.wait == 0.2 for e in retries)
    assert "Retry-After 3600 s, capped at 0.2 s" in retries[0].reason
    # a Hub that never stops answering 429 ends in one error naming the file
    hub_server.add_repo(REPO, {"model.safetensors": os.urandom(5000)})
    hub_server.inject("rate_limit", path="model.safetensors", retry_after=3600, times=None)
    with pytest.raises(dl.RateLimitedError, match="model.safetensors.*3600"):
        download_repo(REPO, include=["model.safetensors"])


@pytest.mark.parametrize("status", [410, 418])
def test_http_errors_name_the_file(hub_server, hf_env, tiny_repo, status):
    hub_server.inject("status", path="model.safetensors", status=status)
    with pytest.raises(dl.HubError) as info:
        download_repo(REPO)
    assert f"HTTP {status}" in str(info.value) and "'model.safetensors'" in str(info.value)
    assert info.value.exit_code == 3


# ------------------------------------------------------------------------------------------------ listings
def test_listing_with_a_file_and_a_folder_of_that_name_is_refused(hub_server, hf_env, weights):
    hub_server.add_repo(
        "acme/clash", {"config.json": "{}", "model.safetensors": weights, "model.safetensors/extra.txt": "x"}
    )
    with pytest.raises(IntegrityError) as info:
        download_repo("acme/clash")
    assert info.value.exit_code == 6
    assert "'model.safetensors'" in str(info.value) and "model.safetensors/extra.txt" in str(info.value)
    repo_dir = hf_env.hub_cache / "models--acme--clash"
    assert not (repo_dir / "blobs").exists() and not (repo_dir / "snapshots").exists()


# ------------------------------------------------------------------------------------------------ poisoning
def test_integrity_failure_does_not_poison_the_next_run(hub_server, hf_env):
    # the server sends wrong bytes for both files; the first to finish fails its sha256 while the other is
    # still in flight: what that one received must not be resumed by the next run
    a, b = os.urandom(300_000), os.urandom(3_000_000)
    hub_server.add_repo("acme/two", {"a.safetensors": a, "b.safetensors": b})
    hub_server.inject("corrupt", path="a.safetensors", offset=10, bytes_per_sec=600_000)
    hub_server.inject("corrupt", path="b.safetensors", offset=10, bytes_per_sec=1_000_000)
    with pytest.raises(IntegrityError, match="a.safetensors"):
        download_repo("acme/two")
    blobs = hf_env.hub_cache / "models--acme--two" / "blobs"
    assert hub_server.bytes_sent("acme/two", "b.safetensors") > 0  # b was in flight
    assert not (blobs / f"{sha256(b)}.incomplete").exists()
    hub_server.clear_faults()
    time.sleep(0.3)
    hub_server.reset_counters()
    r = download_repo("acme/two")  # a good server: the next run succeeds at once
    assert (r.path / "b.safetensors").read_bytes() == b and (r.path / "a.safetensors").read_bytes() == a
    # (a response of the failed run may still settle its count: allow one chunk)
    assert hub_server.bytes_sent("acme/two") <= len(a) + len(b) + 128 * 1024


def test_poisoned_run_keeps_what_an_earlier_run_left(hub_server, hf_env):
    a, b = os.urandom(300_000), os.urandom(3_000_000)
    hub_server.add_repo("acme/two", {"a.safetensors": a, "b.safetensors": b})
    blobs = hf_env.hub_cache / "models--acme--two" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{sha256(b)}.incomplete").write_bytes(b[:500_000])  # a good partial from an earlier run
    hub_server.inject("corrupt", path="a.safetensors", offset=10, bytes_per_sec=600_000)
    hub_server.inject("slow", path="b.safetensors", bytes_per_sec=1_000_000)
    with pytest.raises(IntegrityError, match="a.safetensors"):
        download_repo("acme/two")
    assert (blobs / f"{sha256(b)}.incomplete").stat().st_size == 500_000  # back to what it was
    hub_server.clear_faults()
    r = download_repo("acme/two")
    assert (r.path / "b.safetensors").read_bytes() == b


# ------------------------------------------------------------------------------------------------ the cache root
def test_hf_home_on_a_file_is_one_clear_error(hub_server, hf_env, tiny_repo, monkeypatch):
    from hubmgr.errors import LocalPathError

    bad = hf_env.root / "not-a-folder"
    bad.write_text("x")
    monkeypatch.setenv("HF_HOME", str(bad))
    monkeypatch.delenv("HF_HUB_CACHE")
    with pytest.raises(LocalPathError) as info:
        download_repo(REPO)
    msg = str(info.value)
    assert str(bad) in msg and "HF_HOME" in msg and "a file, not a folder" in msg
    assert info.value.exit_code == 12


def test_read_only_cache_is_one_clear_error(hub_server, hf_env, tiny_repo, monkeypatch):
    from hubmgr.errors import LocalPathError

    real_mkdir = Path.mkdir

    def read_only(self, *a, **kw):
        if str(self).startswith(str(hf_env.hub_cache)) and not self.exists():
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(LocalPathError) as info:
        download_repo(REPO)
    assert str(hf_env.hub_cache) in str(info.value) and "not writable" in str(info.value)
    assert info.value.exit_code == 12


def test_train_allow_pickle_fetches_the_weights_a_cached_snapshot_lacks(hub_server, hf_env):
    """A pickle-only repo cached without its weights (a config-only download): train names the flag, and
    train --allow-pickle fetches the .bin instead of failing the same way."""
    from hubmgr.config import get_settings
    from hubmgr.train.config import TrainConfig
    from hubmgr.train.runner import check_model_folder, resolve_model

    hub_server.add_repo("acme/old", {"config.json": "{}", "pytorch_model.bin": b"w" * 5000})
    download_repo("acme/old", include=["*.json"])
    plain = TrainConfig(task="text-classification", model="acme/old", data="x.csv")
    with pytest.raises(ModelError) as info:
        folder, _ = resolve_model(plain, settings=get_settings())
        check_model_folder(folder, plain)
    assert "--allow-pickle" in str(info.value)
    allowed = TrainConfig(task="text-classification", model="acme/old", data="x.csv", allow_pickle=True)
    folder, commit = resolve_model(allowed, settings=get_settings())
    assert (folder / "pytorch_model.bin").read_bytes() == b"w" * 5000 and commit
    assert check_model_folder(folder, allowed) is False  # usable: pickle weights, allowed
