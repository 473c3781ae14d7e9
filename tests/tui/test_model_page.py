"""The Model page when things go wrong: a repo that cannot be loaded, a cached repo with no Hub, a download
that the cache answers, and a download that gets going again after the connection kept failing."""

from __future__ import annotations

import threading

import pytest
from textual.widgets import Static

from hubmgr.errors import HubError, HubUnreachableError
from hubmgr.hub import events as hev
from hubmgr.tui import downloads as dl
from hubmgr.tui.app import HubmgrApp
from hubmgr.tui.screens.model import ModelScreen
from tests.tui.fakes import FakeBackend, plain_text, settle, wait_until

pytestmark = pytest.mark.asyncio

SIZE = (80, 24)


class FailingInfo(FakeBackend):
    """``model_info`` raises ``error`` while it is set."""

    error: BaseException | None = None

    def model_info(self, repo_id, *, revision=None):
        if self.error is not None:
            raise self.error
        return super().model_info(repo_id, revision=revision)


async def _open(app: HubmgrApp, pilot, repo_id: str) -> ModelScreen:
    await settle(app, pilot)
    app.push_screen(ModelScreen(repo_id))
    await settle(app, pilot)
    screen = app.screen
    assert isinstance(screen, ModelScreen)
    await wait_until(
        pilot, lambda: screen.details is not None or screen.failure is not None, what="the model page to settle"
    )
    await settle(app, pilot)
    return screen


async def test_a_page_that_failed_says_why_on_the_page_and_r_tries_again(tmp_path) -> None:
    fake = FailingInfo(tmp=tmp_path)
    fake.error = HubError("Repository acme/model-001 was not found on http://hub.invalid.")
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "acme/model-001")
        panel = screen.query_one("#model-failure", Static)
        assert panel.display
        text = plain_text(panel)
        assert "Could not load this model." in text and "was not found" in text and "Press r" in text
        # the page says it: no notification on top, no banner for the other screens
        assert list(app._notifications) == []
        assert app.hub_offline == ""
        # d and t do nothing on a page without details (no download queued, no jump to Train)
        assert not screen.check_action("download", ()) and not screen.check_action("train", ())
        await pilot.press("d", "t")
        await settle(app, pilot)
        assert app.screen is screen and app.downloads == [] and fake.downloads == []
        assert screen.check_action("retry", ())
        # r loads it again once the Hub answers
        fake.error = None
        await pilot.press("r")
        await wait_until(pilot, lambda: screen.details is not None, what="the details after a retry")
        await settle(app, pilot)
        assert not panel.display and screen.failure is None
        assert screen.query_one("#model-tabs").display
        assert not screen.check_action("retry", ())


async def test_an_unreachable_hub_on_one_page_is_no_banner_elsewhere(tmp_path) -> None:
    fake = FailingInfo(tmp=tmp_path)
    fake.error = HubUnreachableError(
        "The Hub at http://hub.invalid is unreachable (timed out) and 'acme/model-002' is not in the local cache."
    )
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "acme/model-002")
        assert "is unreachable (timed out)" in plain_text(screen.query_one("#model-failure", Static))
        await pilot.press("escape", "3")
        await settle(app, pilot)
        assert not app.screen.query_one("OfflineBanner").display


async def test_a_cached_model_offline_has_nothing_to_fetch(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, offline=True)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "acme/tiny-bert")
        assert screen.details is not None and screen.details.from_cache
        preview = plain_text(screen.query_one("#download-preview", Static))
        assert "are in the cache already; nothing to fetch" in preview and "Will fetch" not in preview
        await pilot.press("d")
        await settle(app, pilot)
        assert app.downloads == []  # nothing queued: no "finished" card next to an "offline" one
        assert any("in the cache already: nothing to fetch" in n.message for n in app._notifications)


async def test_the_preview_counts_only_the_files_not_cached_yet(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path)
    fake.incomplete["acme/tiny-bert"] = (["model.safetensors"], 17_600_000, 0)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        screen = await _open(app, pilot, "acme/tiny-bert")
        preview = plain_text(screen.query_one("#download-preview", Static))
        assert "Will fetch 1 of 5 files, about 17.6 MB (3 chosen in the cache already)." in preview
        fresh = await _open(app, pilot, "acme/model-009")
        assert "Will fetch 4 of 5 files, about 18.1 MB." in plain_text(fresh.query_one("#download-preview", Static))


async def test_a_download_the_cache_answers_says_so_and_keeps_the_banner(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path, unreachable=True)
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert "unreachable" in app.hub_offline
        app.enqueue_download("acme/tiny-bert")
        await wait_until(pilot, lambda: app.downloads and app.downloads[0].status == dl.DONE, what="the download")
        await settle(app, pilot)
        item = app.downloads[0]
        assert item.from_cache
        assert any("in the cache already; the Hub could not be asked" in n.message for n in app._notifications)
        assert not any("Downloaded acme/tiny-bert" in n.message for n in app._notifications)
        assert "unreachable" in app.hub_offline  # the cache answering says nothing of the Hub
        await pilot.press("2")
        await settle(app, pilot)
        card_text = " ".join(plain_text(s) for s in app.screen.query(".dl-detail").results(Static))
        assert "In the cache already; the Hub was not asked." in card_text


async def test_a_resumed_download_that_gets_going_drops_the_kept_failing_banner(tmp_path) -> None:
    fake = FakeBackend(tmp=tmp_path)
    fake.download_gate = threading.Event()
    app = HubmgrApp(fake)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.hub_offline = "The connection to http://hub.invalid kept failing while downloading 'model.safetensors'."
        app.enqueue_download("acme/model-004")
        # the Hub listed the files (the download started): the banner goes while the bytes still flow
        await wait_until(pilot, lambda: app.hub_offline == "", what="the banner to go")
        assert app.downloads[0].status == dl.RUNNING
        fake.download_gate.set()
        await wait_until(pilot, lambda: app.downloads[0].status == dl.DONE, what="the download")


async def test_a_retry_shows_on_the_item_until_bytes_flow_again() -> None:
    item = dl.DownloadItem("acme/x")
    item.mark_running()
    item.apply(
        hev.DownloadRetry(path="model.safetensors", reason="No data for 10 s.", attempt=2, max_attempts=5, wait=4)
    )
    assert item.retry == "No data for 10 s; retry 2 of 5 of model.safetensors in 4 s."
    item.apply(hev.FileProgress("model.safetensors", 10, 100))
    assert item.retry is None
    item.apply(hev.DownloadRetry(path="", reason="HTTP 503", attempt=1, max_attempts=5, wait=1))
    assert "of the file list" in (item.retry or "")
    item.mark_finished(dl.FAILED, error="gave up")
    assert item.retry is None
