"""hubmgr.hub.layout: the cache folder names, the repo-id rule and which snapshot a revision names."""

from __future__ import annotations

from pathlib import Path

import pytest

from hubmgr.config import Settings
from hubmgr.errors import UsageError
from hubmgr.hub import layout

A = "a" * 40
B = "abcde" + "1" * 35
C = "abcde" + "2" * 35


def make_repo(tmp_path: Path, commits: list[str], refs: dict[str, str] | None = None) -> Path:
    storage = tmp_path / "models--acme--m"
    for commit in commits:
        (storage / "snapshots" / commit).mkdir(parents=True)
    for name, commit in (refs or {}).items():
        ref = storage / "refs" / name
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.write_text(commit)
    return storage


@pytest.mark.parametrize("repo_id", ["bert-base-uncased", "acme/tiny", "acme/tiny.v2_x-1", " acme/tiny ", "a/b"])
def test_valid_repo_ids(repo_id):
    assert layout.validate_repo_id(repo_id) == repo_id.strip()


@pytest.mark.parametrize(
    "repo_id",
    [
        "",
        "a/b/c",
        "../etc/passwd",
        "acme/.hidden",
        "acme/x-",
        "-acme/x",
        "acme--x/y",
        "acme/a..b",
        "not a repo",
        "acme/",
        "/x",
        "a" * 97,
    ],
)
def test_invalid_repo_ids(repo_id):
    with pytest.raises(UsageError, match="is not a valid repo id; expected 'name' or 'org/name'"):
        layout.validate_repo_id(repo_id)


def test_folder_names_round_trip(tmp_path):
    assert layout.repo_folder_name("acme/tiny") == "models--acme--tiny"
    assert layout.repo_folder_name("acme/data", "dataset") == "datasets--acme--data"
    assert layout.repo_dir(Settings(hub_cache=tmp_path), "acme/tiny") == tmp_path / "models--acme--tiny"
    for name in ("models--acme--tiny", "datasets--acme--data", "spaces--solo", "not-a-repo", "xs--a--b"):
        (tmp_path / name).mkdir()
    assert layout.repo_folders(tmp_path) == [
        ("dataset", "acme/data", tmp_path / "datasets--acme--data"),
        ("model", "acme/tiny", tmp_path / "models--acme--tiny"),
        ("space", "solo", tmp_path / "spaces--solo"),
    ]
    assert layout.split_repo_type("dataset/acme/data") == ("dataset", "acme/data")
    assert layout.split_repo_type("models/acme/tiny") == ("model", "acme/tiny")
    assert layout.split_repo_type("acme/tiny") == ("model", "acme/tiny")
    assert layout.repo_label("dataset", "acme/data") == "dataset/acme/data"


def test_cached_commit_by_commit_ref_and_prefix(tmp_path):
    storage = make_repo(tmp_path, [A, B, C], refs={"main": B, "v1": A, "gone": "f" * 40, "junk": "not a commit"})
    assert layout.cached_commit(storage) == B
    assert layout.cached_commit(storage, "main") == B
    assert layout.cached_commit(storage, "v1") == A
    assert layout.cached_commit(storage, C) == C
    assert layout.cached_commit(storage, "abcde1") == B
    assert layout.cached_commit(storage, "aaaa") == A
    assert layout.cached_commit(storage, "f" * 40) is None  # no such snapshot
    assert layout.cached_commit(storage, "gone") is None  # the ref's snapshot was deleted
    assert layout.cached_commit(storage, "junk") is None
    assert layout.cached_commit(storage, "aaa") is None  # shorter than a prefix may be
    assert layout.cached_commit(storage, "../../etc/passwd") is None
    with pytest.raises(UsageError, match="'abcde' matches 2 cached revisions of acme/m; give more characters"):
        layout.cached_commit(storage, "abcde")


def test_without_main_only_a_single_snapshot_is_the_default(tmp_path):
    storage = make_repo(tmp_path / "one", [A])
    assert layout.cached_commit(storage) == A
    assert layout.cached_commit(storage, "main") is None  # asked for by name: no such branch
    storage = make_repo(tmp_path / "two", [A, B])
    assert layout.cached_commit(storage) is None  # which one? none is picked behind the user's back
    assert layout.cached_commit(tmp_path / "absent") is None


def test_write_ref_stays_inside_refs(tmp_path):
    storage = make_repo(tmp_path, [A])
    layout.write_ref(storage, "pr/1", A)
    assert layout.read_ref(storage, "pr/1") == A
    layout.write_ref(storage, A, A)  # a commit gets no ref
    assert not (storage / "refs" / A).exists()
    with pytest.raises(UsageError, match="not a valid revision name"):
        layout.write_ref(storage, "../../evil", A)
