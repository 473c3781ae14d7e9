"""The Hub double speaks huggingface_hub's dialect: search, info, tree, downloads, errors and faults."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx2 as httpx  # huggingface_hub 2.x ships httpx2 (httpx API)
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from hubmgr.testing import HubServer

WEIGHTS = os.urandom(200_000)


def _safetensors(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    """A valid safetensors file with zeroed data: name -> (dtype, shape)."""
    sizes = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8}
    header, offset = {}, 0
    for name, (dtype, shape) in tensors.items():
        n = sizes[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


@pytest.fixture
def hub(hub_server: HubServer) -> HubServer:
    hub_server.add_repo(
        "acme/bert-tiny",
        {
            "config.json": json.dumps({"architectures": ["BertModel"], "model_type": "bert"}),
            "model.safetensors": _safetensors({"w": ("F32", [10, 3]), "b": ("F16", [4])}),
            "tokenizer/vocab.txt": "hello\nworld\n",
        },
        pipeline_tag="text-classification",
        library_name="transformers",
        tags=["en"],
        downloads=300,
        likes=3,
        card={"license": "apache-2.0", "language": "en"},
        last_modified="2024-01-03T00:00:00Z",
        created_at="2023-01-01T00:00:00Z",
    )
    hub_server.add_repo(
        "acme/gpt-tiny",
        {"config.json": "{}", "weights.bin": WEIGHTS},
        pipeline_tag="text-generation",
        library_name="transformers",
        downloads=100,
        likes=30,
        last_modified="2024-01-01T00:00:00Z",
        created_at="2023-06-01T00:00:00Z",
    )
    hub_server.add_repo(
        "other/vit-small",
        {"config.json": "{}"},
        pipeline_tag="image-classification",
        library_name="timm",
        downloads=200,
        likes=20,
        last_modified="2024-01-02T00:00:00Z",
        created_at="2023-03-01T00:00:00Z",
    )
    return hub_server


def api(hub: HubServer) -> HfApi:
    return HfApi(endpoint=hub.url)


# ---------------------------------------------------------------- search
def test_search_filters_and_sorts(hub: HubServer) -> None:
    ids = lambda **kw: [m.id for m in api(hub).list_models(**kw)]  # noqa: E731
    assert ids(search="tiny", sort="downloads") == ["acme/bert-tiny", "acme/gpt-tiny"]
    assert ids(filter="text-generation") == ["acme/gpt-tiny"]
    assert ids(filter="timm") == ["other/vit-small"]
    assert ids(filter=["transformers", "license:apache-2.0"]) == ["acme/bert-tiny"]
    assert ids(pipeline_tag="image-classification") == ["other/vit-small"]
    assert ids(author="acme", sort="likes") == ["acme/gpt-tiny", "acme/bert-tiny"]
    assert ids(sort="last_modified") == ["acme/bert-tiny", "other/vit-small", "acme/gpt-tiny"]
    assert ids(sort="created_at") == ["acme/gpt-tiny", "other/vit-small", "acme/bert-tiny"]
    assert ids(sort="trending_score") == ["acme/gpt-tiny", "other/vit-small", "acme/bert-tiny"]
    assert ids(sort="downloads", limit=2) == ["acme/bert-tiny", "other/vit-small"]
    assert ids(search="nothing-like-this") == []


def test_search_fields_follow_the_hub(hub: HubServer) -> None:
    (plain,) = api(hub).list_models(search="bert")
    assert plain.downloads == 300 and plain.likes == 3 and plain.pipeline_tag == "text-classification"
    assert plain.library_name == "transformers" and "en" in plain.tags
    assert plain.last_modified is None  # like the Hub: ask for it with expand or full
    (expanded,) = api(hub).list_models(search="bert", expand=["lastModified", "gated", "downloads"])
    assert expanded.last_modified == datetime(2024, 1, 3, tzinfo=timezone.utc)
    assert expanded.gated is False and expanded.downloads == 300 and expanded.likes is None
    (full,) = api(hub).list_models(search="bert", full=True)
    assert full.sha == hub.commit_sha("acme/bert-tiny") and full.last_modified is not None
    assert {s.rfilename for s in full.siblings} == {
        "config.json",
        "model.safetensors",
        "tokenizer/vocab.txt",
        "README.md",
    }


def test_search_pages_with_link_header(hf_env) -> None:
    with HubServer(page_size=2) as hub:
        for i in range(5):
            hub.add_repo(f"org/m{i}", {"a.txt": str(i)}, downloads=i)
        assert [m.id for m in HfApi(endpoint=hub.url).list_models(sort="downloads")] == [
            f"org/m{i}" for i in range(4, -1, -1)
        ]
        assert sum(r.route == "search" for r in hub.requests) == 3
        r = httpx.get(f"{hub.url}/api/models", params={"sort": "downloads", "limit": 2})
        assert [m["id"] for m in r.json()] == ["org/m4", "org/m3"]
        nxt = r.links["next"]["url"]
        assert "cursor=" in nxt and "limit=2" in nxt
        r2 = httpx.get(nxt)
        assert [m["id"] for m in r2.json()] == ["org/m2", "org/m1"]
        r3 = httpx.get(r2.links["next"]["url"])
        assert [m["id"] for m in r3.json()] == ["org/m0"] and "next" not in r3.links


# ---------------------------------------------------------------- info and tree
def test_model_info_with_files_metadata(hub: HubServer) -> None:
    info = api(hub).model_info("acme/bert-tiny", files_metadata=True)
    assert info.sha == hub.commit_sha("acme/bert-tiny") and len(info.sha) == 40
    assert info.pipeline_tag == "text-classification" and info.library_name == "transformers"
    assert info.card_data["license"] == "apache-2.0" and "license:apache-2.0" in info.tags
    assert info.safetensors.parameters == {"F32": 30, "F16": 4} and info.safetensors.total == 34
    assert info.gated is False and info.config == {"architectures": ["BertModel"], "model_type": "bert"}
    files = {s.rfilename: s for s in info.siblings}
    st = files["model.safetensors"]
    assert (
        st.lfs is not None
        and st.lfs.sha256 == hashlib.sha256(hub_file(hub, "acme/bert-tiny", "model.safetensors")).hexdigest()
    )
    assert files["config.json"].lfs is None and files["config.json"].size == len(
        json.dumps({"architectures": ["BertModel"], "model_type": "bert"})
    )
    assert (
        files["config.json"].blob_id
        == hashlib.sha1(
            b"blob %d\0" % files["config.json"].size + hub_file(hub, "acme/bert-tiny", "config.json")
        ).hexdigest()
    )


def hub_file(hub: HubServer, repo: str, path: str, rev: str = "main") -> bytes:
    return httpx.get(f"{hub.url}/{repo}/resolve/{rev}/{path}").content


def test_revisions_and_commit_shas(hub: HubServer) -> None:
    first = hub.commit_sha("acme/gpt-tiny")
    second = hub.add_repo("acme/gpt-tiny", {"config.json": '{"v": 2}'})
    branch = hub.add_repo("acme/gpt-tiny", {"extra.txt": "x"}, revision="dev", tag="v1")
    assert len({first, second, branch}) == 3
    a = api(hub)
    assert a.model_info("acme/gpt-tiny").sha == second
    assert a.model_info("acme/gpt-tiny", revision=first).sha == first
    assert a.model_info("acme/gpt-tiny", revision="dev").sha == branch
    assert a.model_info("acme/gpt-tiny", revision="v1").sha == branch
    assert {s.rfilename for s in a.model_info("acme/gpt-tiny", revision="dev").siblings} == {
        "config.json",
        "weights.bin",
        "extra.txt",
    }
    assert hub_file(hub, "acme/gpt-tiny", "config.json", first) == b"{}"
    assert hub_file(hub, "acme/gpt-tiny", "config.json") == b'{"v": 2}'
    refs = a.list_repo_refs("acme/gpt-tiny")
    assert {b.name: b.target_commit for b in refs.branches} == {"main": second, "dev": branch}
    assert [t.name for t in refs.tags] == ["v1"]
    assert [c.commit_id for c in a.list_repo_commits("acme/gpt-tiny")] == [second, first]


def test_list_repo_tree(hub: HubServer) -> None:
    a = api(hub)
    top = {(e.path, type(e).__name__) for e in a.list_repo_tree("acme/bert-tiny")}
    assert top == {
        ("README.md", "RepoFile"),
        ("config.json", "RepoFile"),
        ("model.safetensors", "RepoFile"),
        ("tokenizer", "RepoFolder"),
    }
    deep = {e.path: e for e in a.list_repo_tree("acme/bert-tiny", recursive=True)}
    assert deep["tokenizer/vocab.txt"].size == 12 and deep["model.safetensors"].lfs is not None
    assert [e.path for e in a.list_repo_tree("acme/bert-tiny", path_in_repo="tokenizer")] == ["tokenizer/vocab.txt"]
    with pytest.raises(EntryNotFoundError):
        list(a.list_repo_tree("acme/bert-tiny", path_in_repo="nope"))
    paths = a.get_paths_info("acme/bert-tiny", ["config.json", "tokenizer", "missing"])
    assert [p.path for p in paths] == ["config.json", "tokenizer"]


def test_tree_pages(hf_env) -> None:
    with HubServer(tree_page_size=2) as hub:
        hub.add_repo("org/many", {f"f{i}.txt": str(i) for i in range(5)})
        assert sorted(e.path for e in HfApi(endpoint=hub.url).list_repo_tree("org/many")) == [
            f"f{i}.txt" for i in range(5)
        ]
        assert sum(r.route == "tree" for r in hub.requests) == 3


# ---------------------------------------------------------------- downloads
def test_hf_hub_download_and_snapshot(hub: HubServer, hf_env) -> None:
    path = hf_hub_download("acme/gpt-tiny", "weights.bin")  # endpoint and cache from the fixtures
    assert Path(path).read_bytes() == WEIGHTS
    assert Path(path).is_relative_to(hf_env.hub_cache)
    assert hub.bytes_sent("acme/gpt-tiny", "weights.bin") == len(WEIGHTS)
    folder = Path(snapshot_download("acme/bert-tiny"))
    assert folder.name == hub.commit_sha("acme/bert-tiny")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer/vocab.txt",
    ]
    assert (folder / "model.safetensors").read_bytes() == hub_file(hub, "acme/bert-tiny", "model.safetensors")
    hub.reset_counters()
    snapshot_download("acme/bert-tiny")  # everything cached: nothing transferred
    assert hub.bytes_sent() == 0


def test_head_and_range_headers(hub: HubServer) -> None:
    url = f"{hub.url}/acme/gpt-tiny/resolve/main/weights.bin"
    sha = hub.commit_sha("acme/gpt-tiny")
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == sha
    digest = hashlib.sha256(WEIGHTS).hexdigest()
    assert head.headers["ETag"] == f'"{digest}"' and head.headers["X-Linked-Etag"] == f'"{digest}"'
    assert int(head.headers["Content-Length"]) == len(WEIGHTS) == int(head.headers["X-Linked-Size"])
    assert head.headers["Accept-Ranges"] == "bytes" and not any(k.lower().startswith("x-xet") for k in head.headers)
    small = httpx.head(f"{hub.url}/acme/gpt-tiny/resolve/{sha}/config.json")
    assert small.headers["ETag"] == '"%s"' % hashlib.sha1(b"blob 2\0{}").hexdigest()
    assert "X-Linked-Etag" not in small.headers
    part = httpx.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == WEIGHTS[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(WEIGHTS)}"
    assert httpx.get(url, headers={"Range": "bytes=199990-"}).content == WEIGHTS[199990:]
    assert httpx.get(url, headers={"Range": "bytes=-5"}).content == WEIGHTS[-5:]
    bad = httpx.get(url, headers={"Range": f"bytes={len(WEIGHTS)}-"})
    assert bad.status_code == 416 and bad.headers["Content-Range"] == f"bytes */{len(WEIGHTS)}"


def test_files_from_disk_stream(hf_env, tmp_path: Path) -> None:
    big = tmp_path / "big.safetensors"
    data = os.urandom(3 << 20)
    big.write_bytes(data)
    with HubServer() as hub:
        hub.add_repo("org/big", {"big.safetensors": big})
        assert hub._repos[("model", "org/big")].head.files["big.safetensors"].data is None  # not in memory
        p = hf_hub_download("org/big", "big.safetensors", endpoint=hub.url, cache_dir=hf_env.hub_cache)
        assert Path(p).read_bytes() == data
        mid = httpx.get(f"{hub.url}/org/big/resolve/main/big.safetensors", headers={"Range": "bytes=1000000-1000009"})
        assert mid.content == data[1000000:1000010]


def test_folder_and_add_pretrained(hub_server: HubServer, tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "config.json").write_text("{}")
    (tmp_path / "m" / "sub" / "x.txt").write_text("x")
    hub_server.add_pretrained("org/folder", tmp_path / "m", pipeline_tag="fill-mask")
    info = HfApi(endpoint=hub_server.url).model_info("org/folder")
    assert {s.rfilename for s in info.siblings} == {"config.json", "sub/x.txt"}
    assert info.library_name == "transformers" and info.pipeline_tag == "fill-mask"


# ---------------------------------------------------------------- errors
def test_error_codes_map_to_huggingface_hub_errors(hub: HubServer) -> None:
    a = api(hub)
    with pytest.raises(RepositoryNotFoundError):
        a.model_info("acme/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/missing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        a.model_info("acme/gpt-tiny", revision="nope")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("acme/gpt-tiny", "config.json", revision="nope")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("acme/gpt-tiny", "missing.json")
    r = httpx.get(f"{hub.url}/acme/gpt-tiny/resolve/main/missing.json")
    assert r.status_code == 404 and r.headers["X-Error-Code"] == "EntryNotFound"
    assert r.headers["X-Repo-Commit"] == hub.commit_sha("acme/gpt-tiny") and "error" in r.json()


def test_gated_repo(hub: HubServer) -> None:
    hub.add_repo("acme/gated", {"config.json": "{}"}, gated=True)
    assert api(hub).model_info("acme/gated").gated == "auto"  # metadata stays public
    url = f"{hub.url}/acme/gated/resolve/main/config.json"
    anon = httpx.get(url)
    assert anon.status_code == 401 and anon.headers["X-Error-Code"] == "GatedRepo"
    with pytest.raises(GatedRepoError):
        hf_hub_download("acme/gated", "config.json")
    wrong = httpx.get(url, headers={"Authorization": "Bearer hf_wrong"})
    assert wrong.status_code == 403 and wrong.headers["X-Error-Code"] == "GatedRepo"
    with pytest.raises(GatedRepoError):
        hf_hub_download("acme/gated", "config.json", token="hf_wrong")
    hub.grant("acme/gated", "hf_good")
    assert Path(hf_hub_download("acme/gated", "config.json", token="hf_good")).read_text() == "{}"
    assert api(hub).whoami(token="hf_good")["name"] == "tester"
    assert not any(r.authorized for r in hub.requests if r.status == 401)


def test_private_repo_needs_a_token(hub: HubServer) -> None:
    hub.add_repo("acme/secret", {"a.txt": "a"}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        api(hub).model_info("acme/secret")
    assert "acme/secret" not in [m.id for m in api(hub).list_models()]
    hub.grant("acme/secret", "hf_tok")
    assert api(hub).model_info("acme/secret", token="hf_tok").private is True


def test_disabled_api_looks_like_a_plain_file_server(hub: HubServer) -> None:
    hub.disable_api("search", "model_info")
    r = httpx.get(f"{hub.url}/api/models")
    assert (
        r.status_code == 404 and "X-Error-Code" not in r.headers and r.headers["Content-Type"].startswith("text/html")
    )
    with pytest.raises(HfHubHTTPError) as info:
        list(api(hub).list_models())
    assert info.value.response.status_code == 404
    with pytest.raises(HfHubHTTPError):
        api(hub).model_info("acme/gpt-tiny")
    assert Path(hf_hub_download("acme/gpt-tiny", "config.json")).read_text() == "{}"  # files still served
    hub.enable_api()
    assert api(hub).model_info("acme/gpt-tiny").id == "acme/gpt-tiny"


# ---------------------------------------------------------------- faults
URL = "{}/acme/gpt-tiny/resolve/main/weights.bin"


def test_drop_and_truncate_cut_the_body(hub: HubServer) -> None:
    for kind in ("drop", "truncate"):
        hub.reset_counters()
        hub.inject(kind, path="weights.bin", after_bytes=1000)
        with pytest.raises(httpx.TransportError):
            with httpx.Client() as c:
                c.get(URL.format(hub.url))
        assert hub.bytes_sent("acme/gpt-tiny", "weights.bin") == 1000
        assert httpx.get(URL.format(hub.url)).content == WEIGHTS  # only once
    # huggingface_hub retries a cut download itself
    hub.inject("drop", path="weights.bin", after_bytes=5000)
    assert Path(hf_hub_download("acme/gpt-tiny", "weights.bin")).read_bytes() == WEIGHTS


def test_error500_rate_limit_and_corrupt(hub: HubServer) -> None:
    url = URL.format(hub.url)
    hub.inject("error500", path="weights.bin", times=2)
    assert [httpx.get(url).status_code for _ in range(3)] == [500, 500, 200]
    hub.inject("rate_limit", retry_after=7)
    r = httpx.get(url)
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert httpx.get(url).status_code == 200
    hub.inject("corrupt", offset=10, count=3)
    bad = httpx.get(url).content
    assert len(bad) == len(WEIGHTS) and bad != WEIGHTS
    assert [i for i in range(len(bad)) if bad[i] != WEIGHTS[i]] == [10, 11, 12]
    assert httpx.get(url).content == WEIGHTS
    hub.inject("error500", route="search")
    assert httpx.get(f"{hub.url}/api/models").status_code == 500
    assert httpx.get(f"{hub.url}/api/models").status_code == 200
    assert hub.pending_faults() == 0


def test_status_fault_and_slow_corrupt(hub: HubServer) -> None:
    url = URL.format(hub.url)
    hub.inject("status", path="weights.bin", status=418)
    r = httpx.get(url)
    assert r.status_code == 418 and r.headers["X-Error-Message"] == "I'm a teapot"
    assert "X-Error-Code" not in r.headers
    hub.inject("status", route="tree")
    assert httpx.get(f"{hub.url}/api/models/acme/gpt-tiny/tree/main").status_code == 410
    assert httpx.get(url).status_code == 200
    hub.inject("corrupt", path="weights.bin", offset=5, bytes_per_sec=200_000)  # wrong bytes, slowly (~1 s)
    t0 = time.monotonic()
    bad = httpx.get(url).content
    assert time.monotonic() - t0 > 0.5
    assert [i for i in range(len(bad)) if bad[i] != WEIGHTS[i]] == [5]
    assert hub.pending_faults() == 0


def test_faults_are_scoped(hub: HubServer) -> None:
    hub.inject("error500", repo_id="acme/bert-tiny", path="*.json")
    assert httpx.get(f"{hub.url}/acme/gpt-tiny/resolve/main/config.json").status_code == 200
    assert httpx.head(f"{hub.url}/acme/bert-tiny/resolve/main/config.json").status_code == 200  # GET only
    assert httpx.get(f"{hub.url}/acme/bert-tiny/resolve/main/config.json").status_code == 500


def test_stall_holds_the_body_until_released(hub: HubServer) -> None:
    hub.inject("stall", path="weights.bin", after_bytes=4096, timeout=10)
    result: dict = {}

    def fetch() -> None:
        try:
            httpx.get(URL.format(hub.url), timeout=20)
        except httpx.TransportError as exc:
            result["error"] = exc

    t = threading.Thread(target=fetch)
    t.start()
    assert hub.wait_for_bytes(4096, path="weights.bin", timeout=5)
    assert t.is_alive()
    hub.release_stalls()
    t.join(5)
    assert not t.is_alive() and "error" in result
    assert hub.bytes_sent(path="weights.bin") == 4096
    hub.inject("stall", path="weights.bin", after_bytes=0)  # stalls again after a release
    t = threading.Thread(target=fetch)
    t.start()
    t.join(0.3)
    assert t.is_alive()
    hub.release_stalls()
    t.join(5)
    assert not t.is_alive()


def test_slow_throttles_and_release_speeds_up(hub: HubServer) -> None:
    hub.inject("slow", path="weights.bin", bytes_per_sec=100_000)  # 2 s for the whole file
    t0 = time.monotonic()
    threading.Timer(0.5, hub.release_stalls).start()
    assert httpx.get(URL.format(hub.url)).content == WEIGHTS
    assert 0.4 < time.monotonic() - t0 < 1.5


def test_concurrent_downloads_and_counters(hub: HubServer, hf_env) -> None:
    url = URL.format(hub.url)
    bodies: list[bytes] = []

    def fetch() -> None:
        bodies.append(httpx.get(url).content)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(bodies) == 8 and all(b == WEIGHTS for b in bodies)
    assert hub.bytes_sent("acme/gpt-tiny") == 8 * len(WEIGHTS) == hub.bytes_sent(path="weights.bin")
    assert hub.bytes_sent("acme/bert-tiny") == 0
    hub.reset_counters()
    assert hub.bytes_sent() == 0 and hub.requests == []


def test_stop_refuses_connections(hf_env) -> None:
    hub = HubServer().start()
    hub.add_repo("org/x", {"a.txt": "a"})
    url = hub.url
    with httpx.Client() as client:
        assert client.get(f"{url}/org/x/resolve/main/a.txt").content == b"a"
        hub.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"{url}/org/x/resolve/main/a.txt")  # a kept-alive connection is closed too


def test_dataset_repos(hub: HubServer, hf_env) -> None:
    hub.add_repo("acme/data", {"train.csv": "text,label\nhi,1\n"}, repo_type="dataset")
    p = hf_hub_download("acme/data", "train.csv", repo_type="dataset")
    assert Path(p).read_text().startswith("text,label")
    assert HfApi(endpoint=hub.url).dataset_info("acme/data").id == "acme/data"
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("acme/data", "train.csv")  # not a model repo


def test_datasets_load_from_the_double(hub: HubServer) -> None:
    import datasets

    hub.add_repo(
        "acme/csv", {"train.csv": "text,label\nhi,1\nbye,0\n", "test.csv": "text,label\nyo,1\n"}, repo_type="dataset"
    )
    ds = datasets.load_dataset("acme/csv")
    assert ds["train"]["text"] == ["hi", "bye"] and ds["test"].num_rows == 1


def test_tiny_model_round_trip(hub_server: HubServer, tiny_bert: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    hub_server.add_pretrained("acme/tiny-bert", tiny_bert, pipeline_tag="text-classification")
    info = HfApi(endpoint=hub_server.url).model_info("acme/tiny-bert")
    assert info.safetensors is not None and info.safetensors.total > 1000
    config = AutoConfig.from_pretrained("acme/tiny-bert")  # transformers resolves through the double
    assert config.architectures == ["BertModel"] and config.num_labels == 2
    tok = AutoTokenizer.from_pretrained("acme/tiny-bert")
    assert tok.convert_ids_to_tokens(tok("the movie was great")["input_ids"]) == [
        "[CLS]",
        "the",
        "movie",
        "was",
        "great",
        "[SEP]",
    ]
