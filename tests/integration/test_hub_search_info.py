"""search_models / get_model_info against the Hub double: filters, sort, paging, parameters read from
safetensors headers by HTTP range, error messages (not found, gated, mirror without API, unreachable,
offline) and the cache fallback."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from hubmgr.config import get_settings
from hubmgr.errors import (
    GatedRepoError,
    HubError,
    HubUnreachableError,
    RateLimitedError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsupportedByMirrorError,
    UsageError,
)
from hubmgr.hub.info import get_model_info
from hubmgr.hub.search import search_models
from tests.conftest import set_endpoint, set_offline

CARD = """---
license: apache-2.0
pipeline_tag: text-classification
tags:
- tiny
---
# Tiny model

A tiny model for tests.
"""


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], *, fill: bytes = b"\x01") -> bytes:
    """A valid safetensors file: 8-byte length, JSON header, then the tensor bytes."""
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        nbytes = n * {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + fill * offset


# 1024*256 + 256 F32 values = ~1 MB of weights, + 1000 BF16
WEIGHTS = {"layer.weight": ("F32", [1024, 256]), "layer.bias": ("F32", [256]), "emb": ("BF16", [10, 100])}
N_F32, N_BF16 = 1024 * 256 + 256, 1000


def add_models(server) -> dict[str, str]:
    """A handful of repos for search and info tests; returns repo_id -> commit sha."""
    shas = {}
    shas["acme/bert-tiny"] = server.add_repo(
        "acme/bert-tiny",
        {
            "README.md": CARD,
            "config.json": json.dumps({"hidden_size": 256, "num_hidden_layers": 2}),
            "model.safetensors": safetensors_bytes(WEIGHTS),
        },
        pipeline_tag="text-classification",
        library_name="transformers",
        tags=("tiny", "license:apache-2.0"),
        author="acme",
        downloads=500,
        likes=3,
    )
    shas["acme/gpt-small"] = server.add_repo(
        "acme/gpt-small",
        {"config.json": "{}", "model.safetensors": safetensors_bytes({"w": ("F16", [64, 64])})},
        pipeline_tag="text-generation",
        library_name="transformers",
        author="acme",
        downloads=100,
        likes=50,
    )
    shas["other/bert-large"] = server.add_repo(
        "other/bert-large",
        {"README.md": "# no yaml\n\ntext", "pytorch_model.bin": b"\0" * 1000},
        pipeline_tag="fill-mask",
        library_name="transformers",
        author="other",
        downloads=900,
        likes=1,
    )
    shas["other/vit-mini"] = server.add_repo(
        "other/vit-mini",
        {"model.safetensors": safetensors_bytes({"p": ("F32", [8])})},
        pipeline_tag="image-classification",
        library_name="timm",
        author="other",
        downloads=10,
        likes=10,
    )
    shas["other/bert-adapter"] = server.add_repo(
        "other/bert-adapter",
        {"adapter_config.json": "{}", "adapter_model.safetensors": safetensors_bytes({"a": ("F32", [4, 4])})},
        pipeline_tag="text-classification",
        library_name="peft",
        author="other",
        downloads=0,
        likes=0,
    )
    return shas


# --- search ----------------------------------------------------------------------------------------
def test_search_free_text_and_fields(hub_server):
    add_models(hub_server)
    page = search_models("bert")
    ids = [m.id for m in page.results]
    assert set(ids) == {"acme/bert-tiny", "other/bert-large", "other/bert-adapter"}
    assert ids == ["other/bert-large", "acme/bert-tiny", "other/bert-adapter"]  # downloads, descending
    tiny = next(m for m in page.results if m.id == "acme/bert-tiny")
    assert (tiny.task, tiny.library, tiny.downloads, tiny.likes) == ("text-classification", "transformers", 500, 3)
    assert tiny.gated is False
    assert "tiny" in tiny.tags
    assert page.next_cursor is None


def test_search_filters(hub_server):
    add_models(hub_server)
    assert {m.id for m in search_models(task="text-classification").results} == {"acme/bert-tiny", "other/bert-adapter"}
    assert {m.id for m in search_models(library="peft").results} == {"other/bert-adapter"}
    assert {m.id for m in search_models(author="acme").results} == {"acme/bert-tiny", "acme/gpt-small"}
    assert [m.id for m in search_models("bert", author="other", task="fill-mask").results] == ["other/bert-large"]
    assert search_models("no-such-thing").results == []


def test_search_sort_keys(hub_server):
    add_models(hub_server)
    by_likes = [m.id for m in search_models(sort="likes").results]
    assert by_likes[:2] == ["acme/gpt-small", "other/vit-mini"]
    by_downloads = [m.id for m in search_models(sort="downloads").results]
    assert by_downloads[0] == "other/bert-large"
    recent = search_models(sort="last_modified").results
    assert len(recent) == 5
    assert all(m.last_modified is not None for m in recent)
    assert [m.last_modified for m in recent] == sorted((m.last_modified for m in recent), reverse=True)
    assert len(search_models(sort="trending").results) == 5
    with pytest.raises(UsageError):
        search_models(sort="stars")


def test_search_paging_with_cursor(hub_server):
    add_models(hub_server)
    seen: list[str] = []
    page = search_models(limit=2)
    pages = 1
    while True:
        assert len(page.results) <= 2
        seen += [m.id for m in page.results]
        if page.next_cursor is None:
            break
        page = search_models(cursor=page.next_cursor)  # a later call, as the TUI's "load more" does
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 5
    assert seen == [m.id for m in search_models(limit=10).results]


def test_search_on_a_mirror_without_the_api(hub_server):
    add_models(hub_server)
    hub_server.disable_api("search")
    with pytest.raises(UnsupportedByMirrorError) as info:
        search_models("bert")
    assert str(info.value) == f"{hub_server.url} does not serve the search API (mirrors often serve files only)."


def test_search_rate_limited_then_ok_and_exhausted(hub_server):
    add_models(hub_server)
    hub_server.inject("rate_limit", route="search", times=1, retry_after=1)
    assert len(search_models().results) == 5
    hub_server.inject("rate_limit", route="search", times=10, retry_after=0)
    with pytest.raises(RateLimitedError, match="rate-limiting"):
        search_models()


def test_search_unreachable_and_offline(hf_env, monkeypatch):
    set_endpoint(monkeypatch, "http://127.0.0.1:9")
    with pytest.raises(HubUnreachableError) as info:
        search_models("bert")
    assert str(info.value) == "The Hub at http://127.0.0.1:9 is unreachable."
    set_offline(monkeypatch)
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE is set"):
        search_models("bert")


# --- info ------------------------------------------------------------------------------------------
def test_info_reads_params_from_headers_without_downloading_weights(hub_server):
    shas = add_models(hub_server)
    weights = safetensors_bytes(WEIGHTS)
    hub_server.reset_counters()
    d = get_model_info("acme/bert-tiny")
    assert d.sha == shas["acme/bert-tiny"]
    assert d.revision == "main"
    assert d.param_count == N_F32 + N_BF16
    assert d.dtypes == {"F32": N_F32, "BF16": N_BF16}
    sent = hub_server.bytes_sent("acme/bert-tiny", "model.safetensors")
    assert 8 < sent < len(weights) / 50, sent
    files = {f.path: f for f in d.files}
    assert set(files) == {"README.md", "config.json", "model.safetensors"}
    assert files["model.safetensors"].size == len(weights)
    if files["model.safetensors"].lfs_sha256 is not None:
        assert files["model.safetensors"].lfs_sha256 == hashlib.sha256(weights).hexdigest()
    assert d.total_size == sum(f.size for f in d.files)
    assert d.card_data["license"] == "apache-2.0"
    assert d.card_text.startswith("# Tiny model")
    assert d.license == "apache-2.0"
    assert d.pipeline_tag == "text-classification" and d.library == "transformers"
    assert d.config == {"hidden_size": 256, "num_hidden_layers": 2}
    assert d.gated is False and not d.from_cache and d.warnings == []


def test_info_sharded_checkpoint_reads_every_shard_header(hub_server):
    s1 = safetensors_bytes({"a": ("F32", [100, 100])})
    s2 = safetensors_bytes({"b": ("F32", [50, 10]), "c": ("F16", [7])})
    index = {
        "metadata": {"total_size": 1},
        "weight_map": {
            "a": "model-00001-of-00002.safetensors",
            "b": "model-00002-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors",
        },
    }
    hub_server.add_repo(
        "acme/sharded",
        {
            "model.safetensors.index.json": json.dumps(index),
            "model-00001-of-00002.safetensors": s1,
            "model-00002-of-00002.safetensors": s2,
        },
    )
    d = get_model_info("acme/sharded")
    assert d.param_count == 10000 + 500 + 7
    assert d.dtypes == {"F32": 10500, "F16": 7}
    assert hub_server.bytes_sent("acme/sharded", "model-00001-of-00002.safetensors") < len(s1) / 10


def test_info_without_safetensors_has_no_param_count(hub_server):
    add_models(hub_server)
    d = get_model_info("other/bert-large")
    assert d.param_count is None and d.dtypes == {}
    assert d.card_data == {} and d.card_text.startswith("# no yaml")
    assert [f.path for f in d.files] == ["README.md", "pytorch_model.bin"]
    assert d.license is None


def test_info_of_a_real_save_pretrained_folder(hub_server, tiny_bert):
    hub_server.add_repo("acme/real-bert", folder=tiny_bert)
    import math

    from safetensors import safe_open

    with safe_open(str(tiny_bert / "model.safetensors"), "np") as fh:
        expected = sum(math.prod(fh.get_slice(k).get_shape()) for k in fh.keys())
    d = get_model_info("acme/real-bert")
    assert d.param_count == expected
    assert d.config.get("hidden_size")


def test_info_at_a_revision_and_missing_revision(hub_server):
    add_models(hub_server)
    v1 = hub_server.add_repo(
        "acme/bert-tiny", {"model.safetensors": safetensors_bytes({"x": ("F32", [3])})}, revision="v1"
    )
    d = get_model_info("acme/bert-tiny", revision="v1")
    assert d.sha == v1 and d.revision == "v1" and d.param_count == 3
    with pytest.raises(RevisionNotFoundError) as info:
        get_model_info("acme/bert-tiny", revision="nope")
    assert "Revision 'nope'" in str(info.value) and "acme/bert-tiny" in str(info.value)


def test_info_repo_not_found_and_bad_id(hub_server):
    with pytest.raises(RepoNotFoundError) as info:
        get_model_info("acme/missing")
    assert "'acme/missing' was not found" in str(info.value)
    assert "HF_TOKEN" in str(info.value)
    with pytest.raises(UsageError):
        get_model_info("../etc/passwd")


def test_info_gated_repo_says_what_to_do_and_works_with_a_granted_token(hub_server, monkeypatch):
    hub_server.add_repo(
        "acme/gated", {"README.md": CARD, "model.safetensors": safetensors_bytes(WEIGHTS)}, gated="manual"
    )
    try:
        d = get_model_info("acme/gated")
    except GatedRepoError as exc:  # a Hub that refuses even the metadata
        message = str(exc)
    else:  # the real Hub shows the metadata of a gated repo and refuses the files
        assert d.gated == "manual"
        assert d.card_text == ""  # README.md is one of the guarded files
        # the parameter count may still come from the Hub's own safetensors summary
        assert d.param_count in (None, N_F32 + N_BF16)
        message = " ".join(d.warnings)
    assert "gated" in message
    assert f"{hub_server.url}/acme/gated" in message
    assert "HF_TOKEN" in message and "hf auth login" in message

    hub_server.grant("acme/gated", "hf_granted_token")
    monkeypatch.setenv("HF_TOKEN", "hf_granted_token")
    d = get_model_info("acme/gated")
    assert d.param_count == N_F32 + N_BF16
    assert d.gated
    assert "hf_granted_token" not in repr(d)


def test_info_retries_a_server_error(hub_server):
    add_models(hub_server)
    hub_server.inject("error500", route="model_info", times=1)
    assert get_model_info("acme/bert-tiny").param_count == N_F32 + N_BF16
    hub_server.inject("error500", route="model_info", times=None)
    with pytest.raises(HubError, match="HTTP 500"):
        get_model_info("acme/bert-tiny")
    hub_server.clear_faults()


def test_info_on_a_mirror_without_the_info_api(hub_server):
    add_models(hub_server)
    hub_server.disable_api("model_info")
    with pytest.raises(UnsupportedByMirrorError) as info:
        get_model_info("acme/bert-tiny")
    assert f"{hub_server.url} does not serve the model info API" in str(info.value)


# --- cache fallback --------------------------------------------------------------------------------
def put_in_cache(
    cache: Path, repo_id: str, files: dict[str, bytes | str], *, commit: str = "a" * 40, ref: str = "main"
) -> Path:
    """Lay files out the way huggingface_hub does: blobs/, snapshots/<commit>/ symlinks, refs/<ref>."""
    folder = cache / ("models--" + repo_id.replace("/", "--"))
    snap = folder / "snapshots" / commit
    for path, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        blob_name = (
            hashlib.sha256(data).hexdigest() if path.endswith(".safetensors") else hashlib.sha1(data).hexdigest()
        )
        blob = folder / "blobs" / blob_name
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snap / path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(commit)
    return snap


def test_offline_info_comes_from_the_cache(hf_env, monkeypatch):
    weights = safetensors_bytes(WEIGHTS)
    put_in_cache(
        hf_env.hub_cache,
        "acme/cached",
        {"README.md": CARD, "config.json": '{"hidden_size": 8}', "model.safetensors": weights},
    )
    set_offline(monkeypatch)
    d = get_model_info("acme/cached")
    assert d.from_cache and d.sha == "a" * 40
    assert d.param_count == N_F32 + N_BF16
    assert d.license == "apache-2.0" and d.pipeline_tag == "text-classification"
    assert {f.path: f.size for f in d.files}["model.safetensors"] == len(weights)
    st = next(f for f in d.files if f.path == "model.safetensors")
    assert st.lfs_sha256 == hashlib.sha256(weights).hexdigest()
    assert any("local cache" in w and "HF_HUB_OFFLINE" in w for w in d.warnings)
    with pytest.raises(HubUnreachableError) as info:
        get_model_info("acme/not-cached")
    assert str(info.value) == "HF_HUB_OFFLINE is set and 'acme/not-cached' is not in the local cache."


def test_unreachable_hub_falls_back_to_the_cache(hf_env, monkeypatch):
    put_in_cache(
        hf_env.hub_cache, "acme/cached", {"model.safetensors": safetensors_bytes({"x": ("F32", [5])})}, commit="b" * 40
    )
    set_endpoint(monkeypatch, "http://127.0.0.1:9")
    d = get_model_info("acme/cached")
    assert d.from_cache and d.param_count == 5 and d.sha == "b" * 40
    assert any("unreachable" in w for w in d.warnings)
    assert get_model_info("acme/cached", revision="b" * 40).sha == "b" * 40
    with pytest.raises(HubUnreachableError) as info:
        get_model_info("acme/cached", revision="v2")
    assert "http://127.0.0.1:9 is unreachable" in str(info.value) and "not in the local cache" in str(info.value)
    assert get_settings().offline is False


def test_offline_info_describes_the_snapshot_train_loads(hf_env, monkeypatch):
    from hubmgr.errors import NotCachedError
    from hubmgr.hub.cache import resolve_local

    put_in_cache(
        hf_env.hub_cache,
        "acme/two",
        {"model.safetensors": safetensors_bytes({"x": ("F32", [3])})},
        commit="1" * 40,
        ref="v1",
    )
    put_in_cache(
        hf_env.hub_cache,
        "acme/two",
        {"model.safetensors": safetensors_bytes({"x": ("F32", [7])})},
        commit="2" * 40,
        ref="v2",
    )
    set_offline(monkeypatch)
    # no main and two snapshots: neither is the default, for info as for train (info used to pick the newest)
    with pytest.raises(HubUnreachableError, match="not in the local cache"):
        get_model_info("acme/two")
    with pytest.raises(NotCachedError):
        resolve_local("acme/two")
    # a tag and a commit prefix name the same snapshot for both
    for revision in ("v1", "1111"):
        d = get_model_info("acme/two", revision=revision)
        assert d.sha == "1" * 40 and d.param_count == 3
        assert resolve_local("acme/two", revision=revision).name == d.sha
