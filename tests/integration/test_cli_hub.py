"""``hubmgr search`` / ``info`` / ``fit`` on the command line: ``--json`` output, plain lines when piped,
one ``error:`` line and the right exit code (no traceback) for a user's mistake or an offline Hub."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.test_hub_search_info import (
    CARD,
    N_BF16,
    N_F32,
    WEIGHTS,
    add_models,
    put_in_cache,
    safetensors_bytes,
)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def assert_one_error(result, code: int, needle: str) -> str:
    """The process failed with ``code`` and exactly one ``error:`` line containing ``needle``, no traceback."""
    stderr = result.stderr
    assert result.returncode == code, (result.returncode, result.stdout, stderr)
    assert "Traceback" not in stderr
    lines = error_lines(stderr)
    assert len(lines) == 1, stderr
    assert needle in lines[0], lines[0]
    return lines[0]


# --- in-process (click runner) ---------------------------------------------------------------------
def test_search_json_and_paging(hub_server, cli_runner):
    add_models(hub_server)
    res = cli_runner("search", "bert", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert [m["id"] for m in data["results"]] == ["other/bert-large", "acme/bert-tiny", "other/bert-adapter"]
    first = data["results"][1]
    assert set(first) >= {"id", "task", "library", "downloads", "likes", "last_modified", "gated", "tags"}
    assert data["next_cursor"] is None

    res = cli_runner("search", "--limit", "2", "--sort", "likes", "--json")
    page1 = json.loads(res.stdout)
    assert len(page1["results"]) == 2 and page1["next_cursor"]
    res = cli_runner("search", "--cursor", page1["next_cursor"], "--json")
    page2 = json.loads(res.stdout)
    res = cli_runner("search", "--limit", "2", "--sort", "likes", "--page", "2", "--json")
    assert json.loads(res.stdout)["results"] == page2["results"]
    ids = [m["id"] for m in page1["results"] + page2["results"]]
    assert len(set(ids)) == 4

    res = cli_runner("search", "--limit", "2", "--page", "9")
    assert res.exit_code == 2 and "There is no page 9" in res.stderr


def test_search_filters_and_plain_table_when_piped(hub_server, cli_runner):
    add_models(hub_server)
    res = cli_runner("search", "--task", "text-classification", "--library", "peft")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0].split("\t") == ["model", "task", "library", "downloads", "likes", "modified", "gated"]
    assert [line.split("\t")[0] for line in lines[1:]] == ["other/bert-adapter"]
    res = cli_runner("search", "--author", "acme", "--json")
    assert {m["id"] for m in json.loads(res.stdout)["results"]} == {"acme/bert-tiny", "acme/gpt-small"}


def test_info_json_has_params_files_and_fit(hub_server, cli_runner):
    add_models(hub_server)
    res = cli_runner("info", "acme/bert-tiny", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["id"] == "acme/bert-tiny"
    assert data["param_count"] == N_F32 + N_BF16
    assert data["dtypes"] == {"F32": N_F32, "BF16": N_BF16}
    assert data["license"] == "apache-2.0" and data["gated"] is False
    assert {f["path"] for f in data["files"]} == {"README.md", "config.json", "model.safetensors"}
    assert data["total_size"] == sum(f["size"] for f in data["files"])
    assert data["card_data"]["pipeline_tag"] == "text-classification"
    assert data["fit"]["required_bytes"] > 0
    assert {d["verdict"] for d in data["fit"]["devices"]} <= {"fits", "tight", "won't fit"}
    assert "config" not in data  # internal, not part of the JSON

    res = cli_runner("info", "acme/bert-tiny", "--json", "--no-files")
    assert "files" not in json.loads(res.stdout)


def test_info_plain_output(hub_server, cli_runner):
    add_models(hub_server)
    res = cli_runner("info", "acme/bert-tiny")
    assert res.exit_code == 0, res.output
    rows = dict(line.split("\t", 1) for line in res.stdout.splitlines() if "\t" in line)
    assert rows["license"] == "apache-2.0"
    assert rows["parameters"].endswith(f"({N_F32 + N_BF16:,})")
    assert rows["card"] == "A tiny model for tests."
    assert "LoRA fit" in rows
    assert rows["model.safetensors"].split("\t")[0].endswith("MB")
    res = cli_runner("info", "acme/bert-tiny", "--no-files")
    assert "model.safetensors" not in res.stdout


def test_info_gated_repo_prints_what_to_do(hub_server, cli_runner):
    hub_server.add_repo(
        "acme/gated", {"README.md": CARD, "model.safetensors": safetensors_bytes(WEIGHTS)}, gated="manual"
    )
    res = cli_runner("info", "acme/gated")
    assert res.exit_code == 0, res.output
    assert "gated" in res.stderr and "hf auth login" in res.stderr and "HF_TOKEN" in res.stderr


def test_fit_with_params_and_with_a_repo(hub_server, cli_runner):
    add_models(hub_server)
    res = cli_runner("fit", "--params", "110M", "--dtype", "bfloat16", "--rank", "16", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["param_count"] == 110_000_000 and data["dtype"] == "bfloat16" and data["lora_rank"] == 16
    assert data["devices"][0]["kind"] == "cpu"
    assert data["best_verdict"] in ("fits", "tight", "won't fit")

    res = cli_runner("fit", "acme/bert-tiny", "--batch-size", "4", "--json")
    data = json.loads(res.stdout)
    assert data["param_count"] == N_F32 + N_BF16
    assert (data["hidden_size"], data["num_layers"]) == (256, 2)  # from config.json
    assert data["dtype"] == "float32"  # the dtype holding most weights

    res = cli_runner("fit", "--params", "7B")
    assert res.exit_code == 0
    assert "verdict" in res.stdout and "total" in res.stdout

    res = cli_runner("fit", "acme/bert-tiny", "--params", "7B")
    assert res.exit_code == 2 and "either a REPO or --params" in res.stderr
    res = cli_runner("fit", "other/bert-large")
    assert res.exit_code != 0 and "--params" in res.stderr


# --- subprocess: exit codes, no traceback ----------------------------------------------------------
def test_offline_search_is_one_line_and_exit_5(hf_env, run_cli):
    res = run_cli("search", "bert", env={"HF_HUB_OFFLINE": "1"})
    assert_one_error(res, 5, "HF_HUB_OFFLINE is set")
    assert res.stdout == ""


def test_unreachable_hub_is_one_line_and_exit_5(hf_env, run_cli):
    res = run_cli("info", "acme/x", env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    line = assert_one_error(res, 5, "The Hub at http://127.0.0.1:9 is unreachable")
    assert "not in the local cache" in line


def test_not_found_and_mirror_errors_exit_codes(hub_server, run_cli):
    add_models(hub_server)
    assert_one_error(run_cli("info", "acme/missing"), 3, "'acme/missing' was not found")
    assert_one_error(run_cli("info", "acme/bert-tiny", "--revision", "nope"), 3, "Revision 'nope'")
    hub_server.disable_api("search")
    assert_one_error(
        run_cli("search", "bert", "--json"),
        3,
        f"{hub_server.url} does not serve the search API (mirrors often serve files only)",
    )
    res = run_cli("search", "--sort", "stars")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_fit_of_a_gated_repo_without_a_param_count_explains_both(hub_server, run_cli):
    # Gated, no safetensors summary the Hub could give: the card is refused and nothing counts the parameters.
    hub_server.add_repo("acme/gated-bin", {"README.md": CARD, "pytorch_model.bin": b"\0" * 100}, gated="auto")
    res = run_cli("fit", "acme/gated-bin")
    assert_one_error(res, 9, "--params")
    assert "note: 'acme/gated-bin' is gated" in res.stderr and "hf auth login" in res.stderr


def test_offline_info_from_the_cache_via_subprocess(hf_env, run_cli):
    put_in_cache(hf_env.hub_cache, "acme/cached", {"README.md": CARD, "model.safetensors": safetensors_bytes(WEIGHTS)})
    res = run_cli("info", "acme/cached", "--json", env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["from_cache"] is True and data["param_count"] == N_F32 + N_BF16
    res = run_cli("info", "acme/cached", env={"HF_HUB_OFFLINE": "1"})
    assert res.returncode == 0
    assert "local cache" in res.stdout and "local cache" in res.stderr
    assert_one_error(
        run_cli("info", "acme/other", env={"HF_HUB_OFFLINE": "1"}),
        5,
        "HF_HUB_OFFLINE is set and 'acme/other' is not in the local cache",
    )


def test_help_does_not_import_heavy_libraries():
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hubmgr", "--help"], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0
    heavy = [
        line
        for line in res.stderr.splitlines()
        if "import time:" in line
        and any(m in line.split("|")[-1].strip().split(".")[0] for m in ("torch", "transformers", "peft"))
    ]
    assert heavy == []
    for cmd in ("search", "info", "fit"):
        assert cmd in res.stdout
