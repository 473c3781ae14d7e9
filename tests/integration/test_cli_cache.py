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
    return hub_server.add_repo(
        REPO, {"config.json": "{}", "model.safetensors": weights, "pytorch_model.bin": b"p" * 3000}
    )


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


def test_verify_repair(cli_runner, repo, hf_env, weights, monkeypatch):
    cli_runner("download", REPO)
    blob = hf_env.hub_cache / "models--acme--cli" / "blobs" / hashlib.sha256(weights).hexdigest()
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered" + weights[8:])
    res = cli_runner("verify", REPO)
    assert res.exit_code == 6 and f"`hubmgr verify {REPO} --repair` downloads them again" in res.stderr
    # offline: one sentence, nothing removed, damage remains
    set_offline(monkeypatch)
    res = cli_runner("verify", REPO, "--repair")
    assert res.exit_code == 5
    assert res.stderr.strip().splitlines()[-1] == (
        "error: Repairing acme/cli needs the Hub, but HF_HUB_OFFLINE is set; nothing was removed."
    )
    assert blob.read_bytes() != weights
    set_offline(monkeypatch, False)
    res = cli_runner("verify", REPO, "--repair")
    assert res.exit_code == 0, res.output
    assert "repaired 1 file(s) of acme/cli" in res.stderr and "Repaired all 1 damaged file(s)" in res.stderr
    assert blob.read_bytes() == weights
    res = cli_runner("verify", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["ok"] is True
    # --json, a missing file: repaired, and reported
    (hf_env.hub_cache / "models--acme--cli" / "snapshots" / repo / "config.json").unlink()
    res = cli_runner("verify", "--repair", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["ok"] is True and data["failed"] == 1 and data["remaining"] == 0
    assert [(f["path"], f["ok"]) for f in data["repaired"]] == [("config.json", True)]
    # nothing damaged: --repair only verifies
    res = cli_runner("verify", REPO, "--repair")
    assert res.exit_code == 0 and "All 2 cached file(s) verified." in res.stderr


def test_verify_repair_exits_non_zero_when_damage_remains(cli_runner, repo, hf_env, hub_server, weights):
    cli_runner("download", REPO)
    blob = hf_env.hub_cache / "models--acme--cli" / "blobs" / hashlib.sha256(weights).hexdigest()
    os.chmod(blob, 0o644)
    blob.write_bytes(b"tampered" + weights[8:])
    hub_server.add_repo(REPO, {"config.json": "{}"})  # main moves on; the cached commit stays listed
    # a file the Hub does not list at the commit cannot be repaired: it stays, and the exit code says so
    snap = hf_env.hub_cache / "models--acme--cli" / "snapshots" / repo
    (snap / "extra.safetensors").symlink_to("../../blobs/" + "0" * 64)
    res = cli_runner("verify", REPO, "--repair")
    assert res.exit_code == 6
    assert "cannot repair acme/cli extra.safetensors" in res.stderr
    assert "error: 1 damaged file(s) remain after the repair (listed above)." in res.stderr
    assert blob.read_bytes() == weights  # what could be repaired was


def test_prune(cli_runner, hub_server, repo, hf_env):
    res = cli_runner("prune", "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["deleted"] == []
    hub_server.add_repo(REPO, {"config.json": '{"v": 2}'})
    cli_runner("download", REPO, "--revision", repo)
    cli_runner("download", REPO)
    res = cli_runner("prune", "--dry-run", "--json")
    data = json.loads(res.stdout)
    assert {k: data[k] for k in ("deleted", "freed_bytes", "dry_run", "partials")} == {
        "deleted": [{"repo_id": REPO, "commit": repo}],
        "freed_bytes": 2,
        "dry_run": True,
        "partials": [],
    }
    res = cli_runner("prune")
    assert res.exit_code == 2 and "--yes" in res.stderr
    res = cli_runner("prune", "--yes", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["deleted"] == [{"repo_id": REPO, "commit": repo}]
    assert len(json.loads(cli_runner("ls", "--json").stdout)[0]["revisions"]) == 1


# ------------------------------------------------------------------------------------------------ faults
def _cancelled_download(hub_server, size=3_000_000):
    """acme/cli at a new commit with a big file, downloaded until 200 kB of it arrived, then cancelled."""
    import threading

    from hubmgr.hub import events as ev
    from hubmgr.hub.download import DownloadCancelled, download_repo

    big = os.urandom(size)
    sha = hub_server.add_repo(REPO, {"config.json": "{}", "model.safetensors": big}, replace=True)
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=2_000_000)
    cancel = threading.Event()

    def on_event(e):
        if isinstance(e, ev.FileProgress) and e.path == "model.safetensors" and e.done > 200_000:
            cancel.set()

    with pytest.raises(DownloadCancelled):
        download_repo(REPO, on_event=on_event, cancel=cancel)
    hub_server.clear_faults()
    return sha, big


def test_ls_verify_prune_with_an_interrupted_download(cli_runner, hub_server, hf_env):
    sha, big = _cancelled_download(hub_server)
    blobs = hf_env.hub_cache / "models--acme--cli" / "blobs"
    partial = blobs / f"{hashlib.sha256(big).hexdigest()}.incomplete"
    have = partial.stat().st_size
    orphan = blobs / f"{'1' * 64}.abcd1234.incomplete"
    orphan.write_bytes(b"o" * 1000)
    # ls: the revision is incomplete, the partial bytes are counted
    (entry,) = json.loads(cli_runner("ls", "--json").stdout)
    assert entry["partial_bytes"] == have + 1000 and entry["partial_files"] == 2
    (rev,) = entry["revisions"]
    assert rev["complete"] is False and rev["missing_files"] == ["model.safetensors"]
    assert rev["missing_bytes"] == len(big) and rev["resumable_bytes"] == have
    res = cli_runner("ls")
    header, row = res.stdout.strip().splitlines()
    assert header.split("\t")[3] == "PARTIAL"
    assert f"detached@{sha[:7]} (incomplete: 1 file(s), 3.0 MB missing" in row
    # verify: the missing file fails it
    res = cli_runner("verify", REPO)
    assert res.exit_code == 6
    assert "error: 1 file(s) of the revision are missing from the cache (model.safetensors)" in res.stderr
    assert "hubmgr download acme/cli" in res.stderr
    data = json.loads(cli_runner("verify", "--json").stdout)
    assert data["ok"] is False and data["missing"] == 1
    # prune: the partial download stays unless asked
    res = cli_runner("prune", "--yes", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["deleted"] == [] and data["freed_bytes"] == 0 and data["kept_partial_bytes"] == have + 1000
    assert data["kept_incomplete"] == [{"repo_id": REPO, "commit": sha}]
    res = cli_runner("prune", "--yes")
    assert "prune --incomplete" in res.stderr and partial.exists() and orphan.exists()
    res = cli_runner("prune", "--incomplete", "--yes")
    assert res.exit_code == 0, res.output
    freed = 2 + have + 1000
    assert f"deleted {REPO} {sha[:12]}" in res.stderr
    from hubmgr.cli.output import human_bytes

    assert f"Freed {human_bytes(freed)}, of which {human_bytes(have + 1000)} partial downloads." in res.stderr
    assert not (hf_env.hub_cache / "models--acme--cli").exists()


def test_rm_refuses_a_live_download(cli_runner, hub_server, hf_env):
    import threading

    from hubmgr.hub.download import download_repo

    big = os.urandom(4_000_000)
    hub_server.add_repo(REPO, {"config.json": "{}", "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=1_000_000)
    done = {}
    t = threading.Thread(target=lambda: done.setdefault("r", download_repo(REPO)))
    t.start()
    try:
        assert hub_server.wait_for_bytes(200_000, path="model.safetensors", timeout=30)
        res = cli_runner("rm", REPO, "--yes")
        assert res.exit_code == 1 and "being downloaded" in res.stderr and "Traceback" not in res.output
        res = cli_runner("prune", "--incomplete", "--yes")
        assert res.exit_code == 0 and f"left {REPO} alone" in res.stderr
        assert "(a download is running)" in cli_runner("ls").stdout
    finally:
        hub_server.release_stalls()
        t.join(timeout=60)
    assert (done["r"].path / "model.safetensors").read_bytes() == big  # the download was not harmed


def test_download_pickle_only_exits_non_zero(run_cli, hub_server, hf_env):
    hub_server.add_repo("acme/old", {"config.json": "{}", "pytorch_model.bin": b"w" * 5000})
    out = run_cli("download", "acme/old")
    assert out.returncode == 9 and out.stdout == ""
    assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1
    assert "pytorch_model.bin" in out.stderr and "--allow-pickle" in out.stderr
    out = run_cli("download", "acme/old", "--allow-pickle")
    assert out.returncode == 0 and os.path.isfile(os.path.join(out.stdout.strip(), "pytorch_model.bin"))


def test_hf_home_on_a_file(run_cli, repo, hf_env):
    bad = hf_env.root / "hf-home-file"
    bad.write_text("not a folder")
    env = {"HF_HOME": str(bad), "HF_HUB_CACHE": None}
    for args in (["download", REPO], ["ls"], ["verify"], ["prune", "--yes"], ["rm", REPO, "--yes"]):
        out = run_cli(*args, env=env)
        assert out.returncode == 12, (args, out.stderr)
        assert out.stderr.startswith("error: ") and len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert str(bad) in out.stderr and "HF_HOME" in out.stderr and "not a folder" in out.stderr


def test_read_only_hf_home(cli_runner, repo, hf_env, monkeypatch):
    import errno
    from pathlib import Path

    real_mkdir = Path.mkdir

    def read_only(self, *a, **kw):
        if str(self).startswith(str(hf_env.hf_home)) and not self.exists():
            raise PermissionError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", read_only)
    res = cli_runner("download", REPO)
    assert res.exit_code == 12, res.output
    assert res.stderr.startswith("error: The Hugging Face cache ") and "not writable" in res.stderr
    assert str(hf_env.hub_cache) in res.stderr and len(res.stderr.strip().splitlines()) == 1
    # deleting from a read-only cache: the same kind of error
    monkeypatch.setattr(Path, "mkdir", real_mkdir)
    assert cli_runner("download", REPO).exit_code == 0
    import shutil

    def no_rmtree(path, *a, **kw):
        raise PermissionError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(shutil, "rmtree", no_rmtree)
    res = cli_runner("rm", REPO, "--yes")
    assert res.exit_code == 12 and "not writable" in res.stderr and "Traceback" not in res.output


def test_piped_download_shows_retries_and_keeps_printing_progress(run_cli, hub_server, hf_env):
    big = os.urandom(1_500_000)
    hub_server.add_repo("acme/slow", {"model.safetensors": big})
    hub_server.inject("stall", path="model.safetensors", after_bytes=100_000, timeout=30)
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=500_000)
    out = run_cli(
        "download", "acme/slow", env={"HUBMGR_READ_TIMEOUT": "2", "HUBMGR_PROGRESS_INTERVAL": "0.5"}, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "retry model.safetensors: no data for 2 s, at 100000 of 1500000 bytes" in out.stderr
    progress = [line for line in out.stderr.splitlines() if " / 1.5 MB at " in line]
    assert len(progress) >= 3, out.stderr  # alive while stalled, and while slow
    assert any("no data for" in line for line in progress)


def test_rate_limited_download_says_so(run_cli, hub_server, hf_env):
    hub_server.add_repo("acme/lim", {"model.safetensors": os.urandom(5000)})
    hub_server.inject("rate_limit", path="model.safetensors", retry_after=3600, times=1)
    out = run_cli("download", "acme/lim", env={"HUBMGR_MAX_RETRY_AFTER": "0.5"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "retry model.safetensors: HTTP 429 (rate limited), Retry-After 3600 s, capped at 0.5 s" in out.stderr


def test_rm_and_prune_leave_another_process_download_alone(cli_runner, hub_server, hf_env):
    import subprocess
    import sys

    big = os.urandom(4_000_000)
    hub_server.add_repo(REPO, {"config.json": "{}", "model.safetensors": big})
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=1_000_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hubmgr", "download", REPO],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert hub_server.wait_for_bytes(200_000, path="model.safetensors", timeout=60)
        res = cli_runner("rm", REPO, "--yes")
        assert res.exit_code == 1 and "being downloaded" in res.stderr
        res = cli_runner("prune", "--incomplete", "--yes", "--json")
        assert res.exit_code == 0 and json.loads(res.stdout)["busy"] == [REPO]
        hub_server.release_stalls()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err  # not "has 0 bytes instead of 4000000"
    assert open(os.path.join(out.strip(), "model.safetensors"), "rb").read() == big


def test_json_download_still_shows_retries_on_stderr(run_cli, hub_server, hf_env):
    hub_server.add_repo("acme/lim", {"model.safetensors": os.urandom(5000)})
    hub_server.inject("error500", path="model.safetensors", times=1)
    out = run_cli("download", "acme/lim", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["files"] == ["model.safetensors"]
    assert "retry model.safetensors: HTTP 500" in out.stderr
