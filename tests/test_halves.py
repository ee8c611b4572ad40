"""valvereader.halves: big numpy loops in two halves at once, with results identical to one
loop, and no third thread when the helper is busy (a batch's two streams)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from valvereader import halves
from valvereader.io.display import apply_level_line
from valvereader.preprocess import _reduce


def test_the_second_half_runs_on_the_helper_when_free_and_here_when_not() -> None:
    where: dict[str, str] = {}

    def note(name: str):
        return lambda: where.__setitem__(name, threading.current_thread().name)

    assert halves.run_halves(note("a"), note("b")) is True
    assert where["a"] == threading.current_thread().name and where["b"].startswith("valvereader-half")
    order: list[str] = []
    with halves._FREE:  # another stream holds the helper
        assert halves.run_halves(lambda: order.append("a"), lambda: order.append("b")) is False
    assert order == ["a", "b"]


def test_an_error_in_either_half_is_raised_and_the_other_half_still_finishes() -> None:
    finished = threading.Event()

    def slow_second() -> None:
        threading.Event().wait(0.05)
        finished.set()

    def fail() -> None:
        raise ValueError("first half")

    with pytest.raises(ValueError, match="first half"):
        halves.run_halves(fail, slow_second)
    assert finished.is_set()  # the call did not return while the helper still wrote its half
    with pytest.raises(KeyError):
        halves.run_halves(lambda: None, lambda: {}["missing"])
    assert halves.run_halves(lambda: None, lambda: None) is True  # the helper is free again


@pytest.mark.parametrize("shape, fx, fy", [((2500, 2000), 3, 3), ((1283, 1031), 2, 3), ((2049, 1024), 4, 1)])
def test_block_means_in_two_bands_equal_one_loop(monkeypatch, shape, fx, fy) -> None:
    image = np.random.default_rng(0).random((shape[0] + 7, shape[1] + 5), dtype=np.float32)
    view = image[3 : 3 + shape[0], 2 : 2 + shape[1]]  # a crop, as the program reduces them
    together = _reduce(view, fx, fy)
    monkeypatch.setattr(halves, "enabled", False)
    assert np.array_equal(together, _reduce(view, fx, fy))


def test_the_window_line_in_two_halves_equals_one_loop(monkeypatch) -> None:
    raw = (np.random.default_rng(1).random((1501, 1003)) * 4095).astype(np.uint16)
    together = apply_level_line(raw, 117.5, 1 / 2900)
    monkeypatch.setattr(halves, "enabled", False)
    alone = apply_level_line(raw, 117.5, 1 / 2900)
    assert np.array_equal(together, alone)
    assert together.dtype == np.float32 and together.min() == 0.0 and together.max() == 1.0


def test_inside_off_both_halves_run_here() -> None:
    with halves.off():
        assert halves.run_halves(lambda: None, lambda: None) is False
        with halves.off():
            pass
        assert halves.run_halves(lambda: None, lambda: None) is False  # still off after a nested exit
    assert halves.run_halves(lambda: None, lambda: None) is True



def test_a_batch_never_takes_the_helper(monkeypatch) -> None:
    """predict_many's streams (and its one-stream loader) already keep the cores busy; a
    single predict uses the helper."""
    from valvereader.inference.predictor import load_predictor
    from valvereader.paths import weights_dir
    from valvereader.prediction import Prediction
    from valvereader.radiograph import Radiograph, RadiographMeta

    if not (weights_dir() / "identifier.json").exists():
        pytest.skip("no shipped weights")
    predictor = load_predictor(weights_dir(), device="cpu")
    rng = np.random.default_rng(3)
    films = [Radiograph(rng.random((1300, 1100), dtype=np.float32), RadiographMeta(source=f"film {i}")) for i in range(3)]

    def no_helper():
        raise AssertionError("the helper thread was used")

    monkeypatch.setattr(halves, "_helper", no_helper)
    for streams in (1, 2):
        results = [result for _, _, result in predictor.predict_many(films, load=lambda r: r, streams=streams)]
        assert all(isinstance(r, Prediction) for r in results), results
    with pytest.raises(AssertionError, match="helper thread was used"):  # the control: one film alone takes it
        predictor.predict(films[0])


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_its_own_helper() -> None:
    """The parent's helper thread does not exist in a forked child (a data-loader worker)."""
    import multiprocessing

    assert halves.run_halves(lambda: None, lambda: None) is True  # the parent has made its helper
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        result = pool.apply_async(_halves_in_child)
        assert result.get(timeout=20) is True  # would time out waiting on the parent's dead thread


def _halves_in_child() -> bool:
    return halves.run_halves(lambda: None, lambda: None)


def test_split_cuts_at_a_whole_unit_near_the_middle_and_only_for_large_jobs() -> None:
    calls: list[tuple[int, int]] = []
    assert halves.split(10, halves.SPLIT_FROM - 1, lambda a, b: calls.append((a, b))) is False
    assert calls == [(0, 10)]  # small: one call, here
    calls.clear()
    assert halves.split(1000, halves.SPLIT_FROM, lambda a, b: calls.append((a, b)), unit=64) is True
    assert sorted(calls) == [(0, 448), (448, 1000)]  # 500 rounded down to a multiple of 64
    calls.clear()
    assert halves.split(50, halves.SPLIT_FROM, lambda a, b: calls.append((a, b)), unit=64) is False
    assert calls == [(0, 50)]  # no whole unit in the first half: not split
