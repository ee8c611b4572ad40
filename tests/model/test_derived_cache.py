"""model.derived: the open-set whitener is derived once and kept on disk; a cache file is used
only when it is exactly what the computation gives, and never needed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from valvereader.model import derived

SHA = "ab" * 32


def _arrays(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(40, 30)).astype(np.float32), "b": rng.normal(size=(8, 30))}


def _counting(arrays: dict[str, np.ndarray]):
    calls: list[int] = []

    def build():
        calls.append(1)
        return {name: value.copy() for name, value in arrays.items()}

    return build, calls


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for name, value in a.items():
        assert value.dtype == b[name].dtype and np.array_equal(value, b[name]), name


def test_the_second_run_reads_what_the_first_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(derived, "MIN_FEATURES", 16)
    build, calls = _counting(_arrays())
    first = derived.cached("whitener", SHA, 30, build)
    second = derived.cached("whitener", SHA, 30, build)
    assert calls == [1]
    _same(first, second)
    _same(second, _arrays())
    assert (derived.cache_dir() / f"whitener-{SHA}.safetensors").is_file()


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "other_source", "other_version"])
def test_a_damaged_or_foreign_cache_file_is_recomputed_and_replaced(monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    monkeypatch.setattr(derived, "MIN_FEATURES", 16)
    build, calls = _counting(_arrays())
    derived.cached("whitener", SHA, 30, build)
    path = derived.cache_dir() / f"whitener-{SHA}.safetensors"
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-5] ^= 0x40  # inside the last array's bytes: only the checksum can tell
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(b"not a safetensors file at all")
    else:
        from safetensors.numpy import save

        meta = {"version": derived.VERSION, "source": "cd" * 32, "digest": derived.digest(_arrays(1))}
        if damage == "other_version":
            meta = {"version": "0", "source": SHA, "digest": derived.digest(_arrays(1))}
        data = bytearray(save(_arrays(1), metadata=meta))  # self-consistent, but not this source's
    path.write_bytes(bytes(data))
    again = derived.cached("whitener", SHA, 30, build)
    assert calls == [1, 1]
    _same(again, _arrays())
    _same(derived.cached("whitener", SHA, 30, build), _arrays())  # the file was replaced
    assert calls == [1, 1]


def test_without_a_writable_cache_the_arrays_are_computed_each_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(derived, "MIN_FEATURES", 16)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("VALVEREADER_CACHE_DIR", str(blocker / "cache"))
    build, calls = _counting(_arrays())
    _same(derived.cached("whitener", SHA, 30, build), _arrays())
    _same(derived.cached("whitener", SHA, 30, build), _arrays())
    assert calls == [1, 1]


def test_small_statistics_and_unusable_names_are_not_cached() -> None:
    build, calls = _counting(_arrays())
    derived.cached("whitener", SHA, derived.MIN_FEATURES - 1, build)
    derived.cached("whitener", "../../etc/passwd" + "0" * 48, 4096, build)
    derived.cached("whitener", "", 4096, build)
    assert calls == [1, 1, 1]
    assert not derived.cache_dir().exists() or not any(derived.cache_dir().iterdir())


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VALVEREADER_CACHE_DIR", str(tmp_path / "mine"))
    assert derived.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("VALVEREADER_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert derived.cache_dir() == tmp_path / "xdg" / "valvereader"


def _card_with_statistics(folder: Path, features: int, seed: int = 5) -> Path:
    """A copy of a tiny model folder whose identifier card has Mahalanobis statistics of
    ``features`` channels (as many as its feature map has)."""
    from safetensors.numpy import save_file

    from valvereader.model.card import sha256_of

    rng = np.random.default_rng(seed)
    a = rng.normal(size=(features, features))
    save_file({"class_means": rng.normal(0, 1, (8, features)).astype(np.float32),
               "precision": (a @ a.T / features + np.eye(features)).astype(np.float32)}, str(folder / "stats.safetensors"))
    card_path = folder / "identifier.json"
    card = json.loads(card_path.read_text())
    card["files"]["openset"] = {"path": "stats.safetensors", "sha256": sha256_of(folder / "stats.safetensors")}
    card["openset"] = {"method": "mahalanobis", "normalise": "l2"}
    card_path.write_text(json.dumps(card))
    return card_path


def test_a_scorer_from_the_cache_gives_the_same_bits_as_one_computed_afresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tiny_model import write_tiny_weights

    from valvereader.inference import open_set as predict
    from valvereader.model.card import ModelCard

    write_tiny_weights(tmp_path, size=48)
    from safetensors.numpy import load_file

    card_json = json.loads((tmp_path / "identifier.json").read_text())
    features = load_file(str(tmp_path / card_json["files"]["safetensors"]["path"]))["classifier.weight"].shape[1]
    monkeypatch.setattr(derived, "MIN_FEATURES", min(features, 16))
    card_path = _card_with_statistics(tmp_path, features)
    computed: list[int] = []
    real = predict._projection
    monkeypatch.setattr(predict, "_projection", lambda arrays: computed.append(1) or real(arrays))
    fresh = predict.OpenSetScorer(ModelCard.load(card_path))
    from_cache = predict.OpenSetScorer(ModelCard.load(card_path))
    assert computed == [1]
    assert [(a, b) for a, b, _ in fresh._blocks] == [(a, b) for a, b, _ in from_cache._blocks]
    assert all(block.flags.f_contiguous for _, _, block in from_cache._blocks)
    pooled = np.random.default_rng(9).uniform(0, 2, (4, features)).astype(np.float32)
    assert np.array_equal(fresh(np.zeros((4, 8)), pooled), from_cache(np.zeros((4, 8)), pooled))
    # and a new statistics file (another sha256) is derived anew, not served the old one
    _card_with_statistics(tmp_path, features, seed=6)
    other = predict.OpenSetScorer(ModelCard.load(card_path))
    assert computed == [1, 1]
    assert not np.array_equal(other(np.zeros((4, 8)), pooled), fresh(np.zeros((4, 8)), pooled))
    assert len(os.listdir(derived.cache_dir())) == 2


def test_only_the_most_recently_used_files_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setattr(derived, "MIN_FEATURES", 16)
    monkeypatch.setattr(derived, "KEEP", 3)
    shas = [f"{i:02x}" * 32 for i in range(5)]
    for sha in shas[:3]:
        derived.cached("whitener", sha, 30, lambda: _arrays())
        time.sleep(0.02)
    derived.cached("whitener", shas[0], 30, lambda: _arrays())  # used again: the newest now
    time.sleep(0.02)
    for sha in shas[3:]:
        derived.cached("whitener", sha, 30, lambda: _arrays())
        time.sleep(0.02)
    kept = sorted(p.name.split("-")[1].split(".")[0] for p in derived.cache_dir().glob("whitener-*"))
    assert kept == sorted([shas[0], shas[3], shas[4]])
