"""Take the TUI screenshots of the documentation: SVG files in docs/img/, made by Textual itself.

The app runs headless (``App.run_test``) at 120 x 36 against hubmgr's Hub double (``hubmgr.testing.
HubServer``) with example repos and a tiny random BERT, in a scratch HF cache and hubmgr data folder
(``$TMPDIR/hubmgr-screenshots``, removed afterwards): no network, nothing of yours is read or written.
Two short, real training runs of the tiny model (about a minute on a laptop CPU) fill the Runs screens.

    python docs/make_screenshots.py            # all screenshots
    python docs/make_screenshots.py browse     # only some: browse model local train runs run try plugins

Writes docs/img/tui-<name>.svg.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "img"
SIZE = (120, 36)
SHOTS = ("browse", "model", "local", "train", "runs", "run", "try", "plugins")
#: A fixed scratch folder (emptied first), so that paths shown on screen are the same on every run.
SCRATCH = Path(tempfile.gettempdir()) / "hubmgr-screenshots"

#: (repo id, pipeline tag, library, downloads, likes, gated, last modified)
EXAMPLE_REPOS = [
    ("example/minilm-l6-sentiment", "text-classification", "transformers", 2_450_113, 412, False, "2025-02-11"),
    ("example/bert-base-ner", "token-classification", "transformers", 1_203_554, 388, False, "2025-01-29"),
    ("example/distilroberta-topics", "text-classification", "transformers", 845_020, 97, False, "2024-12-02"),
    ("example/qwen-0.5b-instruct", "text-generation", "transformers", 612_877, 1_204, False, "2025-03-01"),
    ("example/vit-small-food", "image-classification", "transformers", 301_446, 55, False, "2024-11-19"),
    ("example/llama-1b-chat", "text-generation", "transformers", 288_310, 2_031, "manual", "2025-02-20"),
    ("example/e5-small-v2", "feature-extraction", "sentence-transformers", 190_002, 144, False, "2024-10-07"),
    ("example/deberta-v3-nli", "zero-shot-classification", "transformers", 120_775, 63, False, "2024-09-30"),
    ("example/roberta-base-squad", "question-answering", "transformers", 98_120, 40, False, "2024-08-14"),
    ("example/whisper-tiny-en", "automatic-speech-recognition", "transformers", 87_342, 310, False, "2025-01-05"),
    ("example/bge-small-en", "feature-extraction", "sentence-transformers", 80_004, 77, False, "2024-12-19"),
    ("example/gpt2-poetry", "text-generation", "transformers", 41_876, 12, False, "2024-07-22"),
    ("example/electra-small-spam", "text-classification", "transformers", 30_551, 9, False, "2024-06-30"),
    ("example/convnext-tiny-birds", "image-classification", "timm", 22_410, 18, False, "2024-11-02"),
    ("example/t5-small-summarize", "summarization", "transformers", 18_003, 26, False, "2024-05-17"),
    ("example/mistral-7b-lora-sql", "text-generation", "peft", 15_902, 88, False, "2025-02-02"),
    ("example/xlm-r-langid", "text-classification", "transformers", 9_870, 5, False, "2024-04-11"),
    ("example/layoutlm-invoices", "token-classification", "transformers", 4_115, 7, "auto", "2024-03-08"),
]
#: Example repos also put in the cache, so that the Local screen has something to show.
CACHED = ("example/minilm-l6-sentiment", "example/bert-base-ner", "example/e5-small-v2", "example/gpt2-poetry")
TINY = "example/tiny-bert"
CARD = """---
license: apache-2.0
pipeline_tag: text-classification
---
# tiny-bert

A tiny random BERT (two layers, a 32-wide hidden state) for trying hubmgr without a big download.
Fine-tune it with `hubmgr train text-classification --model example/tiny-bert --data train.csv`.
"""


def _date(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)


def _serve(tmp: Path):
    from hubmgr.testing import HubServer, tiny_bert_dir

    hub = HubServer().start()
    for repo_id, tag, library, downloads, likes, gated, modified in EXAMPLE_REPOS:
        hub.add_repo(repo_id, {"config.json": "{}", "README.md": f"# {repo_id}\n"}, pipeline_tag=tag,
                     library_name=library, downloads=downloads, likes=likes, gated=gated, last_modified=_date(modified))
    hub.add_pretrained(TINY, tiny_bert_dir(tmp / "tiny-bert"), pipeline_tag="text-classification",
                       downloads=98_765, likes=21, card=CARD, last_modified=_date("2025-03-10"))
    return hub


def _write_data(tmp: Path) -> tuple[Path, Path]:
    import random

    rng = random.Random(0)
    pos, neg = ["good", "great", "fun", "wonderful", "loved"], ["bad", "awful", "boring", "terrible", "hated"]

    def table(n: int) -> str:
        rows = ["text,label"]
        for _ in range(n):
            label = rng.choice(["positive", "negative"])
            words = pos if label == "positive" else neg
            rows.append(" ".join(rng.choice(words + ["the", "movie", "plot"]) for _ in range(6)) + f",{label}")
        return "\n".join(rows) + "\n"

    train, dev = tmp / "reviews-train.csv", tmp / "reviews-dev.csv"
    train.write_text(table(160))
    dev.write_text(table(40))
    return train, dev


async def _settle(app, pilot, rounds: int = 4) -> None:
    for _ in range(rounds):
        await pilot.pause(0.1)
        await app.workers.wait_for_complete()
    await pilot.pause(0.3)


async def _shoot(names: list[str], backend, tmp: Path) -> list[Path]:
    from hubmgr.tui.app import HubmgrApp

    OUT.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    async def save(app, pilot, name: str) -> None:
        await _settle(app, pilot)
        path = OUT / f"tui-{name}.svg"
        app.save_screenshot(filename=path.name, path=str(path.parent))
        written.append(path)

    app = HubmgrApp(backend)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, pilot)
        if "browse" in names:
            await save(app, pilot, "browse")
        if "model" in names:
            app.open_model(TINY)
            await save(app, pilot, "model")
            await pilot.press("escape")
        if "local" in names:
            await pilot.press("3")
            await save(app, pilot, "local")
        if "train" in names:
            await pilot.press("4")
            await save(app, pilot, "train")
        if "runs" in names or "run" in names or "try" in names:
            await pilot.press("5")
            await _settle(app, pilot)
            if "runs" in names:
                await save(app, pilot, "runs")
            if "run" in names:  # one run's loss and eval curves
                await pilot.press("enter")
                await _settle(app, pilot)
                from textual.widgets import TabbedContent

                app.screen.query_one(TabbedContent).active = "tab-run-curves"
                await save(app, pilot, "run")
                await pilot.press("escape")
            if "try" in names:  # the same run's adapter on two inputs, beside the base model
                await pilot.press("enter")
                await _settle(app, pilot)
                from textual.widgets import Input, TabbedContent

                app.screen.query_one(TabbedContent).active = "tab-run-try"
                box = app.screen.query_one("#try-input", Input)
                for text in ("a wonderful movie, loved the plot", "boring and awful plot"):
                    box.value = text
                    await box.action_submit()
                    for _ in range(600):
                        await _settle(app, pilot, rounds=1)
                        if not box.value:
                            break
                await save(app, pilot, "try")
                await pilot.press("escape")
        if "plugins" in names:
            await pilot.press("6")
            await save(app, pilot, "plugins")
    return written


def main(argv: list[str]) -> int:
    names = argv or list(SHOTS)
    unknown = sorted(set(names) - set(SHOTS))
    if unknown:
        print(f"unknown screenshot(s): {', '.join(unknown)}; choose from {', '.join(SHOTS)}", file=sys.stderr)
        return 2
    shutil.rmtree(SCRATCH, ignore_errors=True)
    SCRATCH.mkdir(parents=True)
    try:
        tmp = SCRATCH
        # An isolated environment: the Hub double, a temporary cache and data folder, fixed time zone.
        for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HUBMGR_LOAD_PLUGINS"):
            os.environ.pop(var, None)
        os.environ.update({"HF_HOME": str(tmp / "hf"), "HUBMGR_HOME": str(tmp / "hubmgr"), "TZ": "UTC",
                           "HF_HUB_DISABLE_XET": "1", "TOKENIZERS_PARALLELISM": "false"})
        hub = _serve(tmp)
        try:
            os.environ["HF_ENDPOINT"] = hub.url
            from hubmgr.config import get_settings
            from hubmgr.hub.download import download_repo
            from hubmgr.tui.backend import Backend

            settings = get_settings()
            for repo_id in (TINY, *CACHED):  # something in the Local screen
                download_repo(repo_id, settings=settings)
            if {"runs", "run", "try"} & set(names):  # two short, real runs for the Runs screens
                from hubmgr.train.config import TrainConfig
                from hubmgr.train.runner import train

                train_csv, dev_csv = _write_data(tmp)
                for rank, lr in ((4, 3e-3), (8, 2e-2)):  # the last one is the run the "run" shot shows
                    train(TrainConfig(task="text-classification", model=TINY, data=str(train_csv),
                                      eval_data=str(dev_csv), epochs=5, batch_size=16, logging_steps=2,
                                      eval_strategy="steps", eval_steps=5, lora_r=rank, learning_rate=lr),
                          settings=settings)
            written = asyncio.run(_shoot(names, Backend(settings), tmp))
        finally:
            hub.stop()
    finally:
        shutil.rmtree(SCRATCH, ignore_errors=True)
    for path in written:
        print(path.relative_to(HERE.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
