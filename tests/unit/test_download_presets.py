"""The TUI's download presets mean what their labels say, through the core's file selection."""

from hubmgr.hub.files import select_files
from hubmgr.tui.downloads import preset_filters

PATHS = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "tokenizer.json"]


def _select(preset: str) -> list[str]:
    include, exclude, allow_pickle = preset_filters(preset)
    selected, _ = select_files(PATHS, include=include, exclude=exclude, allow_pickle=allow_pickle)
    return sorted(selected)


def test_safetensors_only_preset_leaves_other_weights_out():
    assert _select("safetensors") == ["config.json", "model.safetensors", "tokenizer.json"]


def test_everything_preset_takes_pickle_copies_too():
    assert _select("everything") == sorted(PATHS)


def test_custom_preset_reads_the_glob_fields():
    include, exclude, allow_pickle = preset_filters("custom", "*.json, *.safetensors", "tokenizer*")
    selected, _ = select_files(PATHS, include=include, exclude=exclude, allow_pickle=allow_pickle)
    assert sorted(selected) == ["config.json", "model.safetensors"]
