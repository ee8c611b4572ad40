"""valvereader.settings: round trip, defaults, and a corrupt file set aside."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from valvereader.settings import (
    MAX_RECENT_FILES,
    Settings,
    WindowPreset,
    config_dir,
    log_dir,
    settings_path,
)


def test_config_dir_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALVEREADER_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config_dir() == tmp_path / "cfg"
    assert settings_path().parent == tmp_path / "cfg"
    assert log_dir().is_dir() and log_dir().parent == tmp_path / "cfg"


def test_missing_file_gives_defaults() -> None:
    assert Settings.load() == Settings()


def test_settings_round_trip_through_the_config_folder() -> None:
    settings = Settings.load()
    settings.window_geometry = "AdnQywADAAAAAAAA"
    settings.heatmap_opacity = 0.7
    settings.show_corner_text = False
    settings.deidentify_exports = False
    settings.window_presets = [WindowPreset("Bone", 0.7, 0.4)]
    settings.last_folder = "/data/batch"
    settings.save()
    assert settings_path().exists()
    again = Settings.load()
    assert again == settings
    assert again.window_presets[0] == WindowPreset("Bone", 0.7, 0.4)


def test_recent_files_are_unique_newest_first_and_capped(tmp_path: Path) -> None:
    settings = Settings()
    for i in range(MAX_RECENT_FILES + 3):
        settings.add_recent_file(tmp_path / f"{i}.dcm")
    settings.add_recent_file(tmp_path / "5.dcm")
    assert len(settings.recent_files) == MAX_RECENT_FILES
    assert settings.recent_files[0].endswith("5.dcm")
    assert len(set(settings.recent_files)) == MAX_RECENT_FILES


def test_corrupt_settings_file_is_set_aside_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"heatmap_opacity": 0.3, "show_')
    with caplog.at_level(logging.WARNING, logger="valvereader.settings"):
        settings = Settings.load()
    assert settings == Settings()
    assert not path.exists()
    aside = list(path.parent.glob("settings.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"heatmap')
    assert any("corrupt" in r.getMessage() for r in caplog.records)
    settings.save()  # and the program can carry on saving
    assert Settings.load() == settings


def test_field_of_the_wrong_type_falls_back_to_its_default_only() -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"heatmap_opacity": "loud", "show_heatmap": False, "future_field": 1}))
    settings = Settings.load()
    assert settings.heatmap_opacity == Settings().heatmap_opacity
    assert settings.show_heatmap is False


def test_an_older_file_version_is_read_into_the_current_format(tmp_path) -> None:
    """Found by the settings fuzz test: a file saying "version": 0 loaded as version 0, was saved
    as the current version and so did not round-trip. Once read, settings are in the current
    format, whatever the file said."""
    path = tmp_path / "settings.json"
    path.write_text('{"heatmap_opacity": 0.3, "version": 0}', encoding="utf-8")
    loaded = Settings.load(path)
    assert loaded.version == Settings.FILE_VERSION
    assert loaded.heatmap_opacity == 0.3
    loaded.save()
    assert Settings.load(path) == loaded
