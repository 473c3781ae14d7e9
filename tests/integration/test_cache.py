"""The cache functions on a cache filled by download_repo from the Hub double: list, delete a repo or a
revision (shared blobs survive), prune detached revisions, verify (re-hash), resolve_local."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from hubmgr.errors import NotCachedError
from hubmgr.hub import cache
from hubmgr.hub import events as ev
from hubmgr.hub.download import download_repo, git_blob_sha1

REPO = "acme/m"
CONFIG_A = '{"version": "a"}'
CONFIG_B = '{"version": "b", "more": true}'


@pytest.fixture
def two_revisions(hub_server, hf_env):
    """rev1 (detached: downloaded by commit) and main=rev2; both share the weights blob."""
    weights = os.urandom(200_000)
    rev1 = hub_server.add_repo(REPO, {"config.json": CONFIG_A, "model.safetensors": weights})
    rev2 = hub_server.add_repo(REPO, {"config.json": CONFIG_B})
    download_repo(REPO, revision=rev1)
    download_repo(REPO)
    return rev1, rev2, weights


def blob_of(hf_env, name: str) -> Path:
    return hf_env.hub_cache / "models--acme--m" / "blobs" / name


def test_empty_or_absent_cache(hf_env, tmp_path):
    assert cache.list_cached() == []
    from hubmgr.config import get_settings

    assert cache.list_cached(get_settings().with_(hub_cache=tmp_path / "nowhere")) == []
    assert cache.verify() == []
    assert cache.prune() == 0


def test_list_cached(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    (repo,) = cache.list_cached()
    assert repo.repo_id == REPO and repo.repo_type == "model"
    assert repo.path == hf_env.hub_cache / "models--acme--m"
    assert repo.size_on_disk == len(weights) + len(CONFIG_A) + len(CONFIG_B)  # shared blob once
    assert {r.commit for r in repo.revisions} == {rev1, rev2}
    assert repo.refs == {"main": rev2}
    by = {r.commit: r for r in repo.revisions}
    assert by[rev1].refs == [] and by[rev2].refs == ["main"]
    assert by[rev2].path == repo.path / "snapshots" / rev2 and by[rev2].nb_files == 2
    assert by[rev2].size_on_disk == len(weights) + len(CONFIG_B)
    assert repo.last_accessed is not None and repo.last_modified is not None
    assert repo.last_modified.tzinfo is not None


def test_delete_revision_keeps_shared_blobs(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    freed = cache.delete_revision(REPO, rev1[:10])
    assert freed == len(CONFIG_A)
    snap2 = hf_env.hub_cache / "models--acme--m" / "snapshots" / rev2
    assert (snap2 / "model.safetensors").read_bytes() == weights
    assert not (hf_env.hub_cache / "models--acme--m" / "snapshots" / rev1).exists()
    assert not blob_of(hf_env, git_blob_sha1(CONFIG_A.encode())).exists()
    assert all(v.ok for v in cache.verify(REPO))
    with pytest.raises(NotCachedError):
        cache.delete_revision(REPO, rev1)
    # deleting the last revision by ref name removes the repo
    assert cache.delete_revision(REPO, "main") == len(weights) + len(CONFIG_B)
    assert cache.list_cached() == []


def test_prune_detached(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    size, pairs = cache.prune_detailed(dry_run=True)
    assert pairs == [(REPO, rev1)] and size == len(CONFIG_A)
    assert len(cache.list_cached()[0].revisions) == 2  # dry run deleted nothing
    assert cache.prune() == len(CONFIG_A)
    (repo,) = cache.list_cached()
    assert [r.commit for r in repo.revisions] == [rev2]
    assert blob_of(hf_env, hashlib.sha256(weights).hexdigest()).exists()
    assert cache.prune() == 0


def test_delete_repo(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    freed = cache.delete_repo(REPO)
    assert freed == len(weights) + len(CONFIG_A) + len(CONFIG_B)
    assert not (hf_env.hub_cache / "models--acme--m").exists()
    with pytest.raises(NotCachedError, match="acme/m"):
        cache.delete_repo(REPO)


def test_verify_detects_tampering(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    events = []
    results = cache.verify(REPO, on_event=events.append)
    assert len(results) == 4 and all(r.ok for r in results)
    assert len(events) == 4 and all(isinstance(e, ev.VerifyProgress) for e in events)

    lfs_blob = blob_of(hf_env, hashlib.sha256(weights).hexdigest())
    os.chmod(lfs_blob, 0o644)
    data = bytearray(lfs_blob.read_bytes())
    data[1000] ^= 0xFF
    lfs_blob.write_bytes(bytes(data))
    small = blob_of(hf_env, git_blob_sha1(CONFIG_B.encode()))
    small.write_text('{"version": "x", "more": true}')

    results = cache.verify(REPO)
    bad = sorted((r.commit, r.path) for r in results if not r.ok)
    assert bad == sorted([(rev1, "model.safetensors"), (rev2, "model.safetensors"), (rev2, "config.json")])
    detail = next(r.detail for r in results if r.path == "model.safetensors" and not r.ok)
    assert "sha256 mismatch" in detail
    assert all(r.ok for r in results if r.path == "config.json" and r.commit == rev1)
    # whole-cache verify finds the same
    assert len([r for r in cache.verify() if not r.ok]) == 3

    small.unlink()  # a broken symlink
    results = cache.verify(REPO)
    assert any(not r.ok and "missing" in r.detail for r in results)


def test_verify_unknown_repo(hf_env):
    with pytest.raises(NotCachedError):
        cache.verify("acme/none")


def test_resolve_local(two_revisions, hf_env, tmp_path):
    rev1, rev2, weights = two_revisions
    root = hf_env.hub_cache / "models--acme--m" / "snapshots"
    assert cache.resolve_local(REPO) == root / rev2
    assert cache.resolve_local(REPO, revision=rev1) == root / rev1
    assert cache.resolve_local(REPO, revision=rev1[:8]) == root / rev1
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert cache.resolve_local(str(folder)) == folder
    assert cache.resolve_local(folder) == folder
    with pytest.raises(NotCachedError, match=r"acme/absent is not downloaded; run `hubmgr download acme/absent`"):
        cache.resolve_local("acme/absent")
    with pytest.raises(NotCachedError, match="--revision v2"):
        cache.resolve_local(REPO, revision="v2")
    with pytest.raises(NotCachedError):
        cache.resolve_local(str(tmp_path / "missing-folder"))


def test_resolve_local_single_snapshot_without_main(hub_server, hf_env):
    sha = hub_server.add_repo("acme/one", {"config.json": "{}"})
    download_repo("acme/one", revision=sha)
    assert cache.resolve_local("acme/one").name == sha


# ------------------------------------------------------------------------------------------------ incomplete
def _interrupted(hub_server, repo_id: str, big: bytes):
    """A download of config.json + a big file cancelled mid-way: a detached, incomplete snapshot."""
    import threading

    sha = hub_server.add_repo(repo_id, {"config.json": CONFIG_A, "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=2_000_000)
    cancel = threading.Event()

    def on_event(e):
        if isinstance(e, ev.FileProgress) and e.path == "model.safetensors" and e.done > 200_000:
            cancel.set()

    from hubmgr.hub.download import DownloadCancelled

    with pytest.raises(DownloadCancelled):
        download_repo(repo_id, on_event=on_event, cancel=cancel)
    hub_server.clear_faults()
    return sha


def test_incomplete_snapshot_is_marked_with_what_is_missing(hub_server, hf_env):
    big = os.urandom(3_000_000)
    sha = _interrupted(hub_server, REPO, big)
    partial = blob_of(hf_env, hashlib.sha256(big).hexdigest() + ".incomplete")
    have = partial.stat().st_size
    (repo,) = cache.list_cached()
    (rev,) = repo.revisions
    assert rev.commit == sha and rev.refs == [] and not rev.complete and not repo.complete
    assert rev.missing_files == ["model.safetensors"]
    assert rev.missing_bytes == len(big) and rev.resumable_bytes == have
    assert repo.partial_bytes == have and repo.partial_files == 1 and not repo.downloading
    # the function the TUI uses
    status = cache.snapshot_status(REPO, sha)
    assert status.source == "hubmgr" and status.expected_files == 2 and not status.complete
    assert (status.missing_files, status.missing_bytes, status.resumable_bytes) == (
        ["model.safetensors"],
        len(big),
        have,
    )
    # verify fails on the missing file
    results = cache.verify(REPO)
    (bad,) = [r for r in results if not r.ok]
    assert bad.path == "model.safetensors" and bad.missing and "missing" in bad.detail and str(have) in bad.detail
    # it is no model folder yet: resolve_local says so (and train then downloads the rest)
    with pytest.raises(NotCachedError, match="only partly downloaded .model.safetensors missing.*hubmgr download"):
        cache.resolve_local(REPO)
    # finishing the download makes it complete
    download_repo(REPO)
    assert cache.resolve_local(REPO).name == sha
    (repo,) = cache.list_cached()
    assert repo.complete and repo.revisions[0].refs == ["main"] and repo.partial_bytes == 0
    assert all(r.ok for r in cache.verify(REPO))


def test_include_download_is_complete_for_what_it_asked(hub_server, hf_env):
    hub_server.add_repo("acme/sub", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    download_repo("acme/sub", include=["*.json"])
    repo = next(r for r in cache.list_cached() if r.repo_id == "acme/sub")
    assert repo.complete
    assert all(r.ok for r in cache.verify("acme/sub"))


def test_verify_asks_the_hub_when_nothing_is_recorded(hub_server, hf_env, monkeypatch):
    sha = hub_server.add_repo("acme/v", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    r = download_repo("acme/v")
    storage = hf_env.hub_cache / "models--acme--v"
    (r.path / "model.safetensors").unlink()  # lost, and no record of what the snapshot should hold
    (storage / "trees" / f"{sha}.json").unlink()
    (storage / "hubmgr" / f"{sha}.json").unlink()
    from tests.conftest import set_offline

    set_offline(monkeypatch)
    assert all(v.ok for v in cache.verify("acme/v"))  # offline: nothing tells what is missing
    set_offline(monkeypatch, False)
    hub_server.reset_counters()
    results = cache.verify("acme/v")
    assert [(v.path, v.missing) for v in results if not v.ok] == [("model.safetensors", True)]
    assert any(q.route == "tree" for q in hub_server.requests)
    # the listing it got is kept: offline now knows too
    set_offline(monkeypatch)
    assert [v.path for v in cache.verify("acme/v") if not v.ok] == ["model.safetensors"]


def test_prune_keeps_partial_downloads_unless_asked(hub_server, hf_env):
    big = os.urandom(3_000_000)
    sha = _interrupted(hub_server, REPO, big)
    blobs = hf_env.hub_cache / "models--acme--m" / "blobs"
    partial = blobs / f"{hashlib.sha256(big).hexdigest()}.incomplete"
    orphan = blobs / f"{hashlib.sha256(b'x').hexdigest()}.1a2b3c4d.incomplete"  # as huggingface_hub leaves them
    orphan.write_bytes(b"o" * 1000)
    have = partial.stat().st_size
    result = cache.prune_cache()
    assert result.revisions == [] and result.freed_bytes == 0
    assert result.kept_incomplete == [(REPO, sha)] and result.kept_partial_bytes == have + 1000
    assert partial.stat().st_size == have and orphan.exists()
    # asked: the incomplete revision and every partial file go, and the bytes are counted
    plan = cache.prune_cache(dry_run=True, incomplete=True)
    assert plan.revisions == [(REPO, sha)] and sorted(p.path.name for p in plan.partials) == sorted(
        [partial.name, orphan.name]
    )
    assert plan.freed_bytes == len(CONFIG_A) + have + 1000 and partial.exists()
    done = cache.prune_cache(incomplete=True)
    assert done.freed_bytes == plan.freed_bytes and done.partial_bytes == have + 1000
    assert not (hf_env.hub_cache / "models--acme--m").exists()
    assert cache.list_cached() == []


def test_prune_of_the_last_detached_revision_keeps_partials(hub_server, hf_env):
    rev1 = hub_server.add_repo(REPO, {"config.json": CONFIG_A})
    download_repo(REPO, revision=rev1)
    orphan = blob_of(hf_env, "0" * 64 + ".incomplete")
    orphan.write_bytes(b"p" * 2000)
    result = cache.prune_cache()
    assert result.revisions == [(REPO, rev1)] and result.freed_bytes == len(CONFIG_A)
    assert result.kept_partial_bytes == 2000 and orphan.exists()
    (repo,) = cache.list_cached()  # still listed, with its partial bytes
    assert repo.revisions == [] and repo.partial_bytes == 2000
    assert cache.delete_repo(REPO) == 2000
    assert cache.list_cached() == []


def test_live_download_is_never_deleted(hub_server, hf_env):
    import threading

    from hubmgr.errors import CacheError

    big = os.urandom(4_000_000)
    hub_server.add_repo(REPO, {"config.json": CONFIG_A, "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=1_000_000)
    outcome = {}

    def run():
        try:
            outcome["result"] = download_repo(REPO)
        except BaseException as exc:  # noqa: BLE001
            outcome["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    try:
        assert hub_server.wait_for_bytes(200_000, path="model.safetensors", timeout=30)
        (repo,) = cache.list_cached()
        assert repo.downloading
        with pytest.raises(CacheError, match="being downloaded"):
            cache.delete_repo(REPO)
        with pytest.raises(CacheError, match="being downloaded"):
            cache.delete_revision(REPO, repo.revisions[0].commit)
        result = cache.prune_cache(incomplete=True)
        assert result.busy == [REPO] and result.freed_bytes == 0 and result.revisions == []
    finally:
        hub_server.release_stalls()
        t.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert (outcome["result"].path / "model.safetensors").read_bytes() == big
    assert not cache.list_cached()[0].downloading
    assert cache.delete_repo(REPO) == len(big) + len(CONFIG_A)


# --- repair ----------------------------------------------------------------------------------------
def _corrupt(path: Path) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_repair_refetches_a_shared_damaged_blob_once_and_verifies_ok(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    lfs_blob = blob_of(hf_env, hashlib.sha256(weights).hexdigest())
    _corrupt(lfs_blob)
    small = blob_of(hf_env, git_blob_sha1(CONFIG_B.encode()))
    small.unlink()  # rev2's config.json: a dangling link
    bad = [r for r in cache.verify(REPO) if not r.ok]
    assert len(bad) == 3
    # only rev2's results are given: rev1's link to the shared blob is refetched too (never left dangling)
    only_rev2 = [r for r in bad if r.commit == rev2]
    events = []
    result = cache.repair(REPO, only_rev2, on_event=events.append)
    assert result.ok, result.results
    assert result.plan.removed_blobs == [lfs_blob]
    assert result.plan.files == {rev1: ["model.safetensors"], rev2: ["config.json", "model.safetensors"]}
    assert result.transferred_bytes == len(weights) + len(CONFIG_B)  # the shared blob crossed the network once
    assert lfs_blob.read_bytes() == weights
    assert any(isinstance(e, ev.DownloadFinished) for e in events)
    assert all(r.ok for r in cache.verify(REPO))
    assert cache.list_cached()[0].complete


def test_repair_relinks_a_pointer_to_the_wrong_blob_and_keeps_that_blob(two_revisions, hf_env):
    rev1, rev2, weights = two_revisions
    snap2 = hf_env.hub_cache / "models--acme--m" / "snapshots" / rev2
    other = blob_of(hf_env, git_blob_sha1(CONFIG_A.encode()))  # rev1's config: intact, still used by rev1
    link = snap2 / "config.json"
    link.unlink()
    link.symlink_to(os.path.relpath(other, link.parent))
    bad = [r for r in cache.verify(REPO) if not r.ok]
    assert [(r.commit, r.path) for r in bad] == [(rev2, "config.json")]
    result = cache.repair(REPO, bad)
    assert result.ok and result.plan.removed_blobs == [] and result.plan.removed_links == [link]
    assert other.exists() and link.read_text() == CONFIG_B
    assert all(r.ok for r in cache.verify(REPO))


def test_repair_of_a_missing_file(hub_server, hf_env):
    hub_server.add_repo("acme/v", {"config.json": "{}", "model.safetensors": os.urandom(5000)})
    r = download_repo("acme/v")
    (r.path / "model.safetensors").unlink()
    bad = [v for v in cache.verify("acme/v") if not v.ok]
    assert [v.missing for v in bad] == [True]
    result = cache.repair("acme/v", bad)
    assert result.ok and result.plan.files == {r.commit: ["model.safetensors"]}
    assert all(v.ok for v in cache.verify("acme/v"))


def test_repair_needs_the_hub_and_removes_nothing_without_it(two_revisions, hf_env, monkeypatch):
    from hubmgr.errors import HubUnreachableError
    from tests.conftest import set_endpoint, set_offline

    rev1, rev2, weights = two_revisions
    lfs_blob = blob_of(hf_env, hashlib.sha256(weights).hexdigest())
    _corrupt(lfs_blob)
    bad = [r for r in cache.verify(REPO) if not r.ok]
    set_offline(monkeypatch)
    with pytest.raises(HubUnreachableError, match="needs the Hub, but HF_HUB_OFFLINE is set; nothing was removed"):
        cache.repair(REPO, bad)
    assert lfs_blob.exists()
    set_offline(monkeypatch, False)
    set_endpoint(monkeypatch, "http://127.0.0.1:9")
    with pytest.raises(HubUnreachableError, match="needs the Hub, which is unreachable .*nothing was removed"):
        cache.prepare_repair(REPO, bad)
    assert lfs_blob.exists()
    assert len([r for r in cache.verify(REPO) if not r.ok]) == 2  # as it was


def test_repair_with_nothing_damaged_does_nothing(two_revisions, hf_env):
    results = cache.verify(REPO)
    plan = cache.prepare_repair(REPO, results)
    assert plan.files == {} and plan.count == 0
    with pytest.raises(NotCachedError):
        cache.prepare_repair("acme/none", [])
