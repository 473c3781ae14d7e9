"""The fit estimate (pure arithmetic), device detection without a GPU driver, and the pure helpers of
the info module (card split, license, safetensors header parsing, error mapping)."""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest

from hubmgr.config import Settings
from hubmgr.errors import (
    AuthError,
    EntryNotFoundError,
    GatedRepoError,
    HubError,
    HubUnreachableError,
    ModelError,
    RateLimitedError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsupportedByMirrorError,
    UsageError,
)
from hubmgr.hub import fit
from hubmgr.hub.fit import DeviceFit, estimate_fit, estimate_fit_for_model, parse_param_count, verdict

GB = 1000**3
MiB = 1024**2


def _dev(free: int, total: int | None = None, name: str = "RAM", kind: str = "cpu") -> DeviceFit:
    return DeviceFit(name=name, kind=kind, total_bytes=total or free, free_bytes=free)


# --- fit arithmetic --------------------------------------------------------------------------------
def test_breakdown_with_known_shape_follows_the_documented_formula():
    params, hidden, layers, r, b, s = 110_000_000, 768, 12, 8, 8, 128
    report = estimate_fit(
        params, dtype="float32", lora_rank=r, batch_size=b, seq_len=s, hidden_size=hidden, num_layers=layers, devices=[]
    )
    # every linear layer of a block: q, k, v, o (h -> h) and the feed-forward pair (h -> 4h, 4h -> h)
    trainable = layers * r * (4 * (hidden + hidden) + (hidden + 4 * hidden) + (4 * hidden + hidden))
    assert report.trainable_params == trainable
    bd = report.breakdown
    assert bd["weights"] == params * 4
    assert bd["lora_weights"] == trainable * 4
    assert bd["gradients"] == trainable * 4
    assert bd["optimizer"] == trainable * 8
    assert bd["activations"] == b * s * hidden * layers * 4 * fit.ACTIVATION_FACTOR
    subtotal = sum(v for k, v in bd.items() if k != "overhead")
    assert bd["overhead"] == int(max(0.15 * subtotal, 500 * MiB))
    assert report.required_bytes == sum(bd.values())
    assert not report.estimated_shape
    assert (report.hidden_size, report.num_layers) == (hidden, layers)


def test_trainable_params_count_what_training_adapts_for_the_architecture():
    """Not only q, k, v, o: training adapts every linear layer of an encoder's blocks, q/v of a decoder's."""
    from hubmgr.hub.info import ModelDetails

    def trainable(config):
        details = ModelDetails(id="org/m", sha=None, revision="main", param_count=22_700_000, config=config)
        return estimate_fit_for_model(details, lora_rank=8, devices=[]).trainable_params

    # all-MiniLM-L6-v2: query, key, value, and `dense` = attention output 384->384, feed-forward 384->1536->384
    # (what peft reports for training's targets, pooler aside)
    minilm = {"model_type": "bert", "hidden_size": 384, "num_hidden_layers": 6, "intermediate_size": 1536}
    per_block = 3 * 8 * (384 + 384) + 8 * (384 + 384) + 8 * (384 + 1536) + 8 * (1536 + 384)
    assert trainable(minilm) == 6 * per_block == 331_776
    # a Llama-style decoder: training adapts q_proj and v_proj only
    llama = {"model_type": "llama", "hidden_size": 512, "num_hidden_layers": 4, "intermediate_size": 1376}
    assert trainable(llama) == 4 * 2 * 8 * (512 + 512)
    # an architecture training has no table for: every linear layer of a block, feed-forward 4 x hidden
    other = {"model_type": "something-new", "hidden_size": 256, "num_hidden_layers": 2}
    assert trainable(other) == 2 * 8 * (4 * 2 * 256 + 2 * (256 + 1024))
    assert trainable(other) > 2 * 4 * 2 * 8 * 256  # more than q, k, v, o alone


def test_unknown_shape_uses_half_a_percent_of_params_at_rank_8_and_scales_with_rank():
    r8 = estimate_fit(1_000_000_000, devices=[])
    r16 = estimate_fit(1_000_000_000, lora_rank=16, devices=[])
    assert r8.trainable_params == 5_000_000
    assert r16.trainable_params == 10_000_000
    assert r8.estimated_shape and r8.hidden_size and r8.num_layers


def test_half_precision_halves_the_weights_and_activations():
    f32 = estimate_fit(7_000_000_000, dtype="float32", devices=[])
    bf16 = estimate_fit(7_000_000_000, dtype="bf16", devices=[])
    int4 = estimate_fit(7_000_000_000, dtype="int4", devices=[])
    assert bf16.dtype == "bfloat16"
    assert bf16.breakdown["weights"] * 2 == f32.breakdown["weights"]
    assert bf16.breakdown["activations"] * 2 == f32.breakdown["activations"]
    assert int4.breakdown["weights"] * 4 == bf16.breakdown["weights"]
    assert f32.required_bytes > bf16.required_bytes > int4.required_bytes


def test_overhead_is_at_least_500_mib_and_15_percent_for_big_models():
    tiny = estimate_fit(1000, devices=[])
    assert tiny.breakdown["overhead"] == 500 * MiB
    big = estimate_fit(70_000_000_000, devices=[])
    others = sum(v for k, v in big.breakdown.items() if k != "overhead")
    assert big.breakdown["overhead"] == int(0.15 * others)


def test_the_estimate_describes_the_training_defaults():
    from hubmgr.train.budget import BATCH_SIZES
    from hubmgr.train.config import TrainConfig

    report = estimate_fit(1_000_000_000, devices=[])
    train = TrainConfig()
    assert (report.lora_rank, report.seq_len) == (train.lora_r, train.max_length)
    assert report.batch_size == max(BATCH_SIZES), "the largest batch training may choose by itself"


def test_bigger_batch_and_longer_sequences_need_more():
    base = estimate_fit(1_000_000_000, devices=[])
    assert estimate_fit(1_000_000_000, batch_size=64, devices=[]).required_bytes > base.required_bytes
    assert estimate_fit(1_000_000_000, seq_len=2048, devices=[]).required_bytes > base.required_bytes


@pytest.mark.parametrize(
    ("required", "free", "expected"),
    [(79, 100, "fits"), (80, 100, "tight"), (99, 100, "tight"), (100, 100, "won't fit"), (500, 100, "won't fit")],
)
def test_verdict_thresholds(required, free, expected):
    assert verdict(required, free) == expected


def test_devices_get_a_verdict_each_and_best_verdict():
    need = estimate_fit(110_000_000, devices=[]).required_bytes
    report = estimate_fit(
        110_000_000,
        devices=[
            _dev(need // 2),
            _dev(need * 2, name="cuda:0 Big", kind="cuda"),
            _dev(int(need * 1.1), name="cuda:1 Mid", kind="cuda"),
        ],
    )
    assert [d.verdict for d in report.devices] == ["won't fit", "fits", "tight"]
    assert report.best_verdict == "fits"
    assert estimate_fit(110_000_000, devices=[]).best_verdict == "won't fit"


def test_7b_in_fp32_does_not_fit_in_16_gb_but_a_small_bert_does():
    ram16 = [_dev(16 * GB)]
    assert estimate_fit(7_000_000_000, dtype="float32", devices=ram16).devices[0].verdict == "won't fit"
    assert estimate_fit(110_000_000, dtype="float32", devices=ram16).devices[0].verdict == "fits"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7B", 7_000_000_000),
        ("110M", 110_000_000),
        ("1.5e9", 1_500_000_000),
        ("4_385_920", 4_385_920),
        ("125,000", 125_000),
        ("2k", 2000),
        (42, 42),
    ],
)
def test_parse_param_count(text, expected):
    assert parse_param_count(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-5", "0", "7X"])
def test_parse_param_count_rejects_garbage(text):
    with pytest.raises(UsageError):
        parse_param_count(text)


def test_bad_numbers_and_dtypes_are_usage_errors():
    with pytest.raises(UsageError, match="dtype"):
        estimate_fit(1000, dtype="float8", devices=[])
    with pytest.raises(UsageError, match="batch size"):
        estimate_fit(1000, batch_size=0, devices=[])
    with pytest.raises(UsageError):
        estimate_fit(0, devices=[])


def test_detect_devices_has_ram_and_survives_a_missing_nvml(monkeypatch):
    import pynvml

    def boom():
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.setattr(pynvml, "nvmlInit", boom)
    devices = fit.detect_devices()
    assert devices[0].kind == "cpu" and devices[0].total_bytes > 0
    assert 0 < devices[0].free_bytes <= devices[0].total_bytes
    assert [d for d in devices if d.kind == "cuda"] == []


def test_cuda_devices_read_from_nvml(monkeypatch):
    import types

    class Mem:
        total, free = 80 * GB, 70 * GB

    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"Fake GPU",
        nvmlDeviceGetMemoryInfo=lambda h: Mem(),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    devs = fit.cuda_devices()
    assert [(d.name, d.kind, d.free_bytes) for d in devs] == [
        ("cuda:0 Fake GPU", "cuda", 70 * GB),
        ("cuda:1 Fake GPU", "cuda", 70 * GB),
    ]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert len(fit.cuda_devices()) == 1
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert fit.cuda_devices() == []


def test_estimate_for_model_uses_config_and_dominant_dtype():
    from hubmgr.hub.info import ModelDetails

    details = ModelDetails(
        id="org/m",
        sha=None,
        revision="main",
        param_count=4_000_000,
        dtypes={"BF16": 3_900_000, "F32": 100_000},
        config={"n_embd": 64, "n_layer": 4},
    )
    report = estimate_fit_for_model(details, devices=[])
    assert report.dtype == "bfloat16"
    assert (report.hidden_size, report.num_layers) == (64, 4)
    assert not report.estimated_shape
    assert estimate_fit_for_model(details, dtype="float32", devices=[]).dtype == "float32"
    with pytest.raises(ModelError, match="--params"):
        estimate_fit_for_model(ModelDetails(id="org/none", sha=None, revision="main"), devices=[])


# --- info helpers ----------------------------------------------------------------------------------
def test_split_card_and_license():
    from hubmgr.hub.info import license_of, split_card

    meta, body = split_card("---\nlicense: apache-2.0\ntags:\n- a\n---\n# Title\n\nHello.\n")
    assert meta == {"license": "apache-2.0", "tags": ["a"]}
    assert body == "# Title\n\nHello."
    assert split_card("no yaml here") == ({}, "no yaml here")
    assert split_card("---\n: [bad\n---\nbody")[1] == "body"
    assert license_of(meta) == "apache-2.0"
    assert license_of({}, ["x", "license:mit"]) == "mit"
    assert license_of({"license": "other", "license_name": "acme"}) == "other (acme)"
    assert license_of({}, []) is None


def _st_bytes(tensors: dict[str, tuple[str, list[int]]]) -> bytes:
    header: dict = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        n = 1
        for d in shape:
            n *= d
        nbytes = n * {"F32": 4, "F16": 2, "BF16": 2}[dtype]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\0" * offset


def test_parse_header_counts_per_dtype_and_local_read(tmp_path: Path):
    from hubmgr.hub.info import header_length, parse_safetensors_header, read_local_header

    data = _st_bytes({"a": ("F32", [4, 8]), "b": ("F16", [10]), "c": ("F32", [3])})
    n = header_length(data[:8])
    assert parse_safetensors_header(data[8 : 8 + n]) == {"F32": 35, "F16": 10}
    p = tmp_path / "m.safetensors"
    p.write_bytes(data)
    assert read_local_header(p) == {"F32": 35, "F16": 10}
    with pytest.raises(HubError):
        parse_safetensors_header(b"not json")
    with pytest.raises(HubError):
        header_length(struct.pack("<Q", 10**12))
    with pytest.raises(HubError):
        header_length(b"abc")


def test_select_safetensors():
    from hubmgr.hub.files import select_safetensors, shards_from_index

    assert select_safetensors(["config.json", "model.safetensors", "model.fp16.safetensors"]) == (
        None,
        ["model.safetensors"],
    )
    assert select_safetensors(["model.safetensors.index.json", "model-00001-of-00002.safetensors"]) == (
        "model.safetensors.index.json",
        [],
    )
    assert select_safetensors(["pytorch_model.bin"]) == (None, [])
    assert select_safetensors(["adapter_model.safetensors"]) == (None, ["adapter_model.safetensors"])
    assert select_safetensors(["unet/a.safetensors", "vae/b.safetensors"]) == (
        None,
        ["unet/a.safetensors", "vae/b.safetensors"],
    )
    idx = {"weight_map": {"x": "s1.safetensors", "y": "s2.safetensors", "z": "s1.safetensors"}}
    assert shards_from_index("model.safetensors.index.json", idx) == ["s1.safetensors", "s2.safetensors"]
    assert shards_from_index("sub/model.safetensors.index.json", idx) == ["sub/s1.safetensors", "sub/s2.safetensors"]


# --- error mapping -------------------------------------------------------------------------------
S = Settings(endpoint="http://hub.test", token=None)
ST = Settings(endpoint="http://hub.test", token="hf_secret_value")


@pytest.mark.parametrize(
    ("status", "headers", "url", "kw", "cls", "needle"),
    [
        (
            404,
            {"X-Error-Code": "RepoNotFound"},
            "http://hub.test/api/models/o/r",
            {"repo_id": "o/r"},
            RepoNotFoundError,
            "'o/r' was not found",
        ),
        (
            404,
            {"X-Error-Code": "RevisionNotFound"},
            "http://hub.test/api/models/o/r/revision/v9",
            {"repo_id": "o/r", "revision": "v9"},
            RevisionNotFoundError,
            "Revision 'v9'",
        ),
        (
            404,
            {"X-Error-Code": "EntryNotFound"},
            "http://hub.test/o/r/resolve/main/x.bin",
            {"repo_id": "o/r", "filename": "x.bin"},
            EntryNotFoundError,
            "'x.bin' is not in",
        ),
        (
            401,
            {"X-Error-Code": "GatedRepo"},
            "http://hub.test/o/r/resolve/main/x",
            {"repo_id": "o/r"},
            GatedRepoError,
            "hf auth login",
        ),
        (
            403,
            {"X-Error-Code": "GatedRepo"},
            "http://hub.test/o/r/resolve/main/x",
            {"repo_id": "o/r"},
            GatedRepoError,
            "accept the conditions on http://hub.test/o/r",
        ),
        (
            401,
            {"X-Error-Message": "Invalid credentials in Authorization header"},
            "http://hub.test/api/models",
            {},
            AuthError,
            "rejected your token",
        ),
        (403, {}, "http://hub.test/o/r/resolve/main/x", {"repo_id": "o/r"}, AuthError, "refused"),
        (
            404,
            {},
            "http://hub.test/api/models",
            {},
            UnsupportedByMirrorError,
            "http://hub.test does not serve the search API (mirrors often serve files only)",
        ),
        (404, {}, "http://hub.test/api/models/o/r", {"repo_id": "o/r"}, UnsupportedByMirrorError, "model info API"),
        (
            404,
            {},
            "http://hub.test/o/r/resolve/main/f.txt",
            {"repo_id": "o/r", "filename": "f.txt"},
            EntryNotFoundError,
            "'f.txt'",
        ),
        (429, {"Retry-After": "3"}, "http://hub.test/api/models", {}, RateLimitedError, "retry after 3"),
        (503, {}, "http://hub.test/api/models", {}, HubError, "HTTP 503"),
    ],
)
def test_error_for_status(status, headers, url, kw, cls, needle):
    from hubmgr.hub.client import error_for_status

    err = error_for_status(status, headers, settings=S, url=url, **kw)
    assert type(err) is cls
    assert needle in str(err)
    assert "\n" not in str(err)


def test_error_for_status_success_is_none_and_token_never_in_messages():
    from hubmgr.hub.client import error_for_status

    assert error_for_status(200, {}, settings=S) is None
    for status, headers in ((401, {"X-Error-Code": "GatedRepo"}), (403, {}), (401, {}), (404, {})):
        err = error_for_status(
            status, headers, settings=ST, url="http://hub.test/o/r/resolve/main/f", repo_id="o/r", filename="f"
        )
        assert "hf_secret_value" not in str(err)
    gated = error_for_status(403, {"X-Error-Code": "GatedRepo"}, settings=ST, repo_id="o/r")
    assert "not been granted" in str(gated)


def test_translate_network_and_offline_errors():
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled

    from hubmgr.hub.client import translate_error

    err = translate_error(httpx2.ConnectError("refused"), settings=S)
    assert isinstance(err, HubUnreachableError)
    assert str(err) == "The Hub at http://hub.test is unreachable."
    assert isinstance(translate_error(httpx2.ReadTimeout("slow"), settings=S), HubUnreachableError)
    off = translate_error(OfflineModeIsEnabled("x"), settings=S)
    assert isinstance(off, HubUnreachableError) and "HF_HUB_OFFLINE is set" in str(off)
    assert translate_error(KeyError("bug"), settings=S) is None


def test_offline_settings_stop_search_before_the_network():
    from hubmgr.hub.search import search_models

    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE is set"):
        search_models("bert", settings=Settings(endpoint="http://127.0.0.1:9", offline=True))
    with pytest.raises(UsageError, match="sort"):
        search_models("bert", sort="stars", settings=S)


def test_summary_from_api_item():
    from hubmgr.hub.search import summary_from_api

    m = summary_from_api(
        {
            "id": "o/r",
            "pipeline_tag": "fill-mask",
            "library_name": "transformers",
            "downloads": 5,
            "likes": 2,
            "lastModified": "2024-01-02T03:04:05.000Z",
            "gated": "manual",
            "tags": ["a"],
        }
    )
    assert (m.id, m.task, m.library, m.downloads, m.likes, m.gated, m.tags) == (
        "o/r",
        "fill-mask",
        "transformers",
        5,
        2,
        "manual",
        ["a"],
    )
    assert m.last_modified is not None and m.last_modified.year == 2024 and m.last_modified.tzinfo
    bare = summary_from_api({"id": "o/s"})
    assert (bare.task, bare.downloads, bare.gated, bare.last_modified, bare.tags) == (None, 0, False, None, [])
