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
