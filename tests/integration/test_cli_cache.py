"""``hubmgr download | ls | rm | verify | prune`` against the Hub double: --json output parsed, plain lines
when piped, confirmation rules, exit codes and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.conftest import set_offline

REPO = "acme/cli"


@pytest.fixture
def weights() -> bytes:
    return os.urandom(100_000)


@pytest.fixture
def repo(hub_server, weights):
    return hub_server.add_repo(REPO, {"config.json": "{}", "model.safetensors": weights,
                                      "pytorch_model.bin": b"p" * 3000})


def test_download_json(cli_runner, repo, hf_env, weights):
    res = cli_runner("download", REPO, "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["repo_id"] == REPO and data["commit"] == repo
    assert data["files"] == ["config.json", "model.safetensors"]
    assert data["skipped"] == ["pytorch_model.bin"]
    assert data["transferred_bytes"] == len(weights) + 2
    assert (hf_env.hub_cache / "models--acme--cli" / "snapshots" / repo / "model.safetensors").read_bytes() == weights
    assert data["path"] == str(hf_env.hub_cache / "models--acme--cli" / "snapshots" / repo)


def test_download_plain_prints_path(cli_runner, repo, hf_env):
    res = cli_runner("download", REPO, "--include", "*.json", "--workers", "2")
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().splitlines()[-1] == str(hf_env.hub_cache / "models--acme--cli" / "snapshots" / repo)
    assert "config.json" in res.stderr


def test_download_subprocess_piped(run_cli, repo, hf_env):
    out = run_cli("download", REPO, "--allow-pickle", "--include", "pytorch_model.bin")
    assert out.returncode == 0, out.stderr
    path = out.stdout.strip().splitlines()[-1]
    assert os.path.isfile(os.path.join(path, "pytorch_model.bin"))
    assert "Traceback" not in out.stderr and "done pytorch_model.bin" in out.stderr


def test_download_errors_are_one_line(run_cli, hub_server, hf_env, weights):
    out = run_cli("download", "acme/missing")
    assert out.returncode == 3
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "acme/missing" in out.stderr
    hub_server.add_repo("acme/gated", {"model.safetensors": weights}, gated=True)
    out = run_cli("download", "acme/gated", env={"HF_TOKEN": "hf_dont_print_me"})
    assert out.returncode == 4 and "hf_dont_print_me" not in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
    out = run_cli("download", "bad id!")
    assert out.returncode == 2 and out.stderr.startswith("error: ")


def test_download_offline_from_cache(cli_runner, repo, hf_env, monkeypatch):
    assert cli_runner("download", REPO).exit_code == 0
    set_offline(monkeypatch)
    res = cli_runner("download", REPO, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["from_cache"] is True
    res = cli_runner("download", "acme/other")
    assert res.exit_code == 5 and "HF_HUB_OFFLINE" in res.stderr


def test_ls(cli_runner, repo, hf_env):
    res = cli_runner("ls", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = cli_runner("ls")
    assert res.exit_code == 0 and "empty" in res.stderr
    cli_runner("download", REPO)
    data = json.loads(cli_runner("ls", "--json").stdout)
    (entry,) = data
    assert entry["repo_id"] == REPO and entry["size_on_disk"] > 100_000
    assert entry["revisions"][0]["commit"] == repo and entry["revisions"][0]["refs"] == ["main"]
    res = cli_runner("ls")
    assert res.exit_code == 0
    header, row = res.stdout.strip().splitlines()
    assert header.split("\t")[0] == "REPO" and row.split("\t")[0] == REPO
    assert f"main@{repo[:7]}" in row


def test_rm_needs_confirmation(cli_runner, repo, hf_env):
    cli_runner("download", REPO)
    res = cli_runner("rm", REPO)  # no terminal, nothing on stdin
    assert res.exit_code == 2 and "--yes" in res.stderr
    assert (hf_env.hub_cache / "models--acme--cli").exists()
    res = cli_runner("rm", REPO, input="n\n")
    assert res.exit_code == 1 and (hf_env.hub_cache / "models--acme--cli").exists()
    res = cli_runner("rm", REPO, input="y\n")
    assert res.exit_code == 0, res.output
    assert not (hf_env.hub_cache / "models--acme--cli").exists()
    res = cli_runner("rm", REPO, "--yes")
    assert res.exit_code == 1 and "not in the cache" in res.stderr


def test_rm_revision_json(cli_runner, hub_server, repo, hf_env):
    rev2 = hub_server.add_repo(REPO, {"config.json": '{"v": 2}'})
    cli_runner("download", REPO, "--revision", repo)
    cli_runner("download", REPO)
    res = cli_runner("rm", REPO, "--revision", repo[:8], "--yes", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["freed_bytes"] == 2  # only the old config.json; the weights are shared
    revs = json.loads(cli_runner("ls", "--json").stdout)[0]["revisions"]
    assert [r["commit"] for r in revs] == [rev2]
    res = cli_runner("rm", REPO, "--revision", "ffffffff", "--yes")
    assert res.exit_code == 1 and "not in the cache" in res.stderr


def test_verify(cli_runner, repo, hf_env, weights):
    cli_runner("download", REPO)
    res = cli_runner("verify", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] is True and data["checked"] == 2 and data["failed"] == 0
    res = cli_runner("verify", REPO)
    assert res.exit_code == 0 and "verified" in res.stderr

    blob = hf_env.hub_cache / "models--acme--cli" / "blobs" / hashlib.sha256(weights).hexdigest()
    blob.write_bytes(b"tampered" + weights[8:])
    res = cli_runner("verify", "--json")
    assert res.exit_code == 6
    data = json.loads(res.stdout)
    assert data["ok"] is False and data["failed"] == 1
    (bad,) = [f for f in data["files"] if not f["ok"]]
    assert bad["path"] == "model.safetensors" and "mismatch" in bad["detail"]
    res = cli_runner("verify", REPO)
    assert res.exit_code == 6 and "error: 1 of 2 cached file(s) failed verification" in res.stderr
    res = cli_runner("verify", "acme/none")
    assert res.exit_code == 1 and "not in the cache" in res.stderr


def test_prune(cli_runner, hub_server, repo, hf_env):
    res = cli_runner("prune", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["deleted"] == []
    hub_server.add_repo(REPO, {"config.json": '{"v": 2}'})
    cli_runner("download", REPO, "--revision", repo)
    cli_runner("download", REPO)
    res = cli_runner("prune", "--dry-run", "--json")
    assert json.loads(res.stdout) == {"deleted": [{"repo_id": REPO, "commit": repo}], "freed_bytes": 2,
                                      "dry_run": True}
    res = cli_runner("prune")
    assert res.exit_code == 2 and "--yes" in res.stderr
    res = cli_runner("prune", "--yes", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["deleted"] == [{"repo_id": REPO, "commit": repo}]
    assert len(json.loads(cli_runner("ls", "--json").stdout)[0]["revisions"]) == 1
