"""The download queue outlives the app: kept on disk, interrupted downloads resumed at the next launch,
downloads handed to a background ``hubmgr download`` process, incomplete snapshots marked on Local."""

from __future__ import annotations

import json
import os
import signal

import pytest
from textual.widgets import DataTable, Static

from hubmgr.tui import downloads as dl
from hubmgr.tui.app import HubmgrApp
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

SIZE = (100, 30)
REPO = "acme/big"


def _big_repo(hub_server, size: int = 4_000_000) -> bytes:
    big = os.urandom(size)
    hub_server.add_repo(REPO, {"config.json": "{}", "model.safetensors": big})
    return big


def _card_text(app: HubmgrApp, item: dl.DownloadItem, part: str) -> str:
    return plain_text(app.screen.query_one(f"#download-{item.id} {part}", Static))


# -- the queue file ------------------------------------------------------------------------------------
def test_queue_file_survives_a_corrupt_file_and_keeps_other_tuis_entries(tmp_path) -> None:
    path = tmp_path / "downloads.json"
    path.write_text("{not json")
    mine = dl.QueueFile(path)
    assert mine.claim() == []  # a corrupt file is set aside, not an error
    assert mine.set_aside is not None and mine.set_aside.read_text() == "{not json"

    # an entry held by another TUI that runs now (pid 1 stands in for it) is neither claimed nor lost
    other = {
        "uid": "other",
        "repo_id": "acme/theirs",
        "status": "running",
        "owner": {"pid": 1, "started": dl.process_started(1)},
    }
    gone = {"uid": "gone", "repo_id": "acme/gone", "status": "running", "owner": {"pid": 999_999_999, "started": 1.0}}
    path.write_text(json.dumps({"format_version": 1, "items": [other, gone]}))
    items = mine.claim()
    assert [(i.repo_id, i.status) for i in items] == [("acme/gone", dl.INTERRUPTED)]
    item = dl.DownloadItem("acme/mine", include=["*.json"], allow_pickle=True)
    mine.save([*items, item])
    data = json.loads(path.read_text())
    assert sorted(r["uid"] for r in data["items"]) == sorted(["other", "gone", item.uid])
    mine.save([item])  # removing an entry removes only ours
    assert sorted(r["uid"] for r in json.loads(path.read_text())["items"]) == sorted(["other", item.uid])
    assert not list(tmp_path.glob("*.tmp"))  # written through a rename


# -- interrupted at quit, resumed at the next launch -----------------------------------------------------
@pytest.mark.asyncio
async def test_a_download_stopped_at_quit_is_resumed_at_the_next_launch(hub_server, hf_env) -> None:
    big = _big_repo(hub_server)
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=500_000, times=None)
    app = HubmgrApp()
    async with app.run_test(size=SIZE) as pilot:
        item = app.enqueue_download(REPO, include=["*.json", "*.safetensors"])
        await wait_until(pilot, lambda: item.done_bytes > 300_000, timeout=60, what="bytes of the big file")
        assert app.active_downloads() == [item]
        app.stop_downloads()
        assert app.active_downloads() == []
        await wait_until(pilot, lambda: item.status != dl.RUNNING, timeout=30, what="the worker to stop")
        assert item.status == dl.INTERRUPTED
        app.exit()
    saved = json.loads((hf_env.hubmgr_home / "downloads.json").read_text())
    (entry,) = saved["items"]
    assert entry["repo_id"] == REPO and entry["status"] == "interrupted"
    assert entry["include"] == ["*.json", "*.safetensors"] and entry["total_bytes"] == len(big) + 2
    partials = list((hf_env.hub_cache / "models--acme--big" / "blobs").glob("*.incomplete"))
    assert partials and partials[0].stat().st_size > 0  # what was fetched is kept

    hub_server.clear_faults()
    again = HubmgrApp()
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await settle(again, pilot, rounds=1)
        (back,) = again.downloads
        assert (back.repo_id, back.status, back.include) == (REPO, dl.INTERRUPTED, ["*.json", "*.safetensors"])
        assert "interrupted" in _card_text(again, back, ".dl-title")
        assert again.screen.query_one(f"#download-{back.id} .dl-resume").display
        assert any("did not finish last time" in n.message for n in again._notifications)
        again.screen.query_one(f"#download-{back.id}").focus()
        await pilot.press("r")
        await wait_until(pilot, lambda: back.status not in (dl.QUEUED, dl.RUNNING), timeout=60, what="the resume")
        assert back.status == dl.DONE, back.error
        assert 0 < back.transferred_bytes < len(big)  # resumed, not fetched again
        assert open(os.path.join(back.path, "model.safetensors"), "rb").read() == big
        await pilot.press("X")  # a finished entry can be cleared, on disk too
        await pilot.pause(0.1)
        assert again.downloads == []
    assert json.loads((hf_env.hubmgr_home / "downloads.json").read_text())["items"] == []


@pytest.mark.asyncio
async def test_queued_and_cancelled_downloads_come_back_and_a_bad_queue_file_is_one_warning(
    fake: FakeBackend, hf_env
) -> None:
    import threading

    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        running = app.enqueue_download("acme/model-001")
        app.enqueue_download("acme/model-002", revision="v1", exclude=["*.bin"])
        cancelled = app.enqueue_download("acme/model-003")
        app.cancel_download(cancelled.id)
        await wait_until(pilot, lambda: running.total_bytes > 0, what="progress")
        app.exit()  # no stop_downloads(): the queue on disk still says what did not finish
    fake.download_gate.set()
    again = HubmgrApp(fake)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot, rounds=1)
        assert [(i.repo_id, i.status) for i in again.downloads] == [
            ("acme/model-001", dl.INTERRUPTED),
            ("acme/model-002", dl.INTERRUPTED),
            ("acme/model-003", dl.CANCELLED),
        ]
        assert again.downloads[1].revision == "v1" and again.downloads[1].exclude == ["*.bin"]
        assert again.downloads[0].total_bytes == 2000
        again.exit()

    (hf_env.hubmgr_home / "downloads.json").write_text("]]")
    third = HubmgrApp(fake)
    async with third.run_test(size=SIZE) as pilot:
        await settle(third, pilot, rounds=1)
        assert third.downloads == []
        warnings = [n for n in third._notifications if n.severity == "warning"]
        assert len(warnings) == 1 and "unreadable" in warnings[0].message
        item = third.enqueue_download("acme/model-004")
        await settle(third, pilot)
        assert item.status == dl.DONE  # and the queue works on


# -- handed to a background process ------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_downloads_handed_to_the_background_finish_after_the_app_exits(hub_server, hf_env) -> None:
    big = _big_repo(hub_server)
    hub_server.inject("slow", path="model.safetensors", bytes_per_sec=400_000, times=None)
    app = HubmgrApp()
    pid = None
    try:
        async with app.run_test(size=SIZE) as pilot:
            item = app.enqueue_download(REPO)
            queued = app.enqueue_download("acme/missing")  # queued: handed over too (and fails there)
            await wait_until(pilot, lambda: item.done_bytes > 200_000, timeout=60, what="bytes of the big file")
            assert app.downloads_to_background() == 2
            pid = item.pid
            assert pid and queued.pid and queued.status == dl.BACKGROUND
            await wait_until(
                pilot, lambda: item.status != dl.RUNNING, timeout=30, what="the in-process download to stop"
            )
            assert item.status == dl.BACKGROUND
            app.exit()
        entry = {e["repo_id"]: e for e in json.loads((hf_env.hubmgr_home / "downloads.json").read_text())["items"]}
        assert entry[REPO]["status"] == "background" and entry[REPO]["pid"] == pid
        assert dl.process_alive(pid, entry[REPO]["pid_started"])  # still going after the app has ended

        again = HubmgrApp()
        async with again.run_test(size=SIZE) as pilot:
            await pilot.press("2")
            await settle(again, pilot, rounds=1)
            back = next(i for i in again.downloads if i.repo_id == REPO)
            assert back.status == dl.BACKGROUND
            assert f"downloading in the background (pid {pid})" in _card_text(again, back, ".dl-title")
            failed = next(i for i in again.downloads if i.repo_id == "acme/missing")
            await wait_until(
                pilot,
                lambda: back.status == dl.DONE and failed.status != dl.BACKGROUND,
                timeout=90,
                what="the background download to finish",
            )
            assert open(os.path.join(back.path, "model.safetensors"), "rb").read() == big
            assert failed.status == dl.INTERRUPTED and "acme/missing" in (failed.error or "")
            assert failed.resumable and again.screen.query_one(f"#download-{failed.id} .dl-resume").display
            log = hf_env.hubmgr_home / "launch" / f"download-{back.uid[:12]}.log"
            assert log.is_file()
            assert "Traceback" not in log.read_text()
    finally:
        if pid and dl.process_started(pid) is not None:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.asyncio
async def test_background_downloads_are_listed_and_settled_with_the_fake_backend(fake: FakeBackend) -> None:
    import threading

    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        item = app.enqueue_download("acme/model-001", include=["*.json"], allow_pickle=True)
        await wait_until(pilot, lambda: item.total_bytes > 0, what="progress")
        assert app.downloads_to_background() == 1
        assert fake.background == [
            {
                "repo_id": "acme/model-001",
                "revision": None,
                "include": ["*.json"],
                "exclude": None,
                "allow_pickle": True,
                "name": f"download-{item.uid[:12]}",
            }
        ]
        assert app.active_downloads() == []
        await wait_until(pilot, lambda: item.status == dl.BACKGROUND, what="the hand-over")
        await pilot.press("2")
        await settle(app, pilot, rounds=1)
        assert f"(pid {os.getpid()})" in _card_text(app, item, ".dl-title")
        assert not app.screen.query_one(f"#download-{item.id} .dl-remove").display
        # "the process" ends (a pid that is gone), the cache has it: done
        item.pid, item.pid_started = 999_999_999, 1.0
        fake.cached.append("acme/model-001")
        await wait_until(pilot, lambda: item.status == dl.DONE, timeout=10, what="done")


# -- Local: incomplete snapshots --------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_local_marks_an_incomplete_snapshot_and_resumes_its_download(fake: FakeBackend) -> None:
    fake.incomplete["acme/tiny-bert"] = (["model.safetensors", "weights[1].bin"], 3 * 2**20, 2**20)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("3")
        await settle(app, pilot)
        screen = app.screen
        table = screen.query_one("#cache-table", DataTable)
        keys = [str(table.coordinate_to_cell_key((i, 0)).row_key.value) for i in range(table.row_count)]
        row = keys.index("acme/tiny-bert")
        assert "incomplete" in str(table.get_row_at(row)[0])
        assert "incomplete" not in str(table.get_row_at(keys.index("acme/tiny-gpt2"))[0])
        assert "1 incomplete" in plain_text(screen.query_one("#cache-summary", Static))
        panel = screen.query_one("#incomplete-panel", Static)
        table.focus()
        table.move_cursor(row=keys.index("acme/tiny-gpt2"))
        await pilot.pause(0.1)
        assert not panel.display and screen.check_action("resume_download", ()) is False
        table.move_cursor(row=row)
        await pilot.pause(0.1)
        assert panel.display
        text = plain_text(panel)
        assert f"detached@{'0' * 7} (incomplete: 2 files, 3.1 MB missing, 1.0 MB resumable)" in text
        assert "Press R to resume" in text
        await pilot.press("R")
        await settle(app, pilot)
        (item,) = app.downloads
        assert item.repo_id == "acme/tiny-bert" and item.revision == "0" * 40
        assert item.include == ["model.safetensors", "weights[[]1].bin"] and item.allow_pickle
        assert item.status == dl.DONE
        assert fake.downloads == ["acme/tiny-bert"]


@pytest.mark.asyncio
async def test_quitting_during_a_download_asks_and_hands_it_to_the_background(fake: FakeBackend) -> None:
    import threading

    from hubmgr.tui.screens.dialogs import QuitDialog

    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        item = app.enqueue_download("acme/model-001")
        await wait_until(pilot, lambda: item.total_bytes > 0, what="progress")
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        assert isinstance(app.screen, QuitDialog)
        assert "download of acme/model-001" in str(app.screen.query_one(".dialog-text").render())
        await pilot.press("k")
        await pilot.pause(0.3)
    assert [b["repo_id"] for b in fake.background] == ["acme/model-001"]


@pytest.mark.asyncio
async def test_quitting_during_a_download_can_stop_it_for_the_next_launch(fake: FakeBackend) -> None:
    import threading

    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        item = app.enqueue_download("acme/model-001")
        await wait_until(pilot, lambda: item.total_bytes > 0, what="progress")
        await pilot.press("ctrl+q")
        await pilot.pause(0.2)
        await pilot.press("s")
        await wait_until(pilot, lambda: not app.is_running or item.status != dl.RUNNING, what="the stop")
    assert fake.background == [] and item.status in (dl.INTERRUPTED, dl.CANCELLED)
    again = HubmgrApp(fake)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot, rounds=1)
        (back,) = again.downloads
        assert back.repo_id == "acme/model-001" and back.resumable
