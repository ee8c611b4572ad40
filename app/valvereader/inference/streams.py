"""Many files through the predictor (``Predictor.predict_many``): load → preprocess → networks,
with the next files loading while the networks run, or in several streams at once.

On two cores two streams on ONNX Runtime sessions of one thread get about 15 % more images
through than one stream on two-thread sessions: a small network does not keep two threads
busy, and one stream's loading fills the gaps of the other's network runs. On CUDA a stream
waits on its own loading, cropping and scoring, not on the GPU: on an H200 with 16 cores,
120 films, 1 stream 70 images/s, 2 streams 98-113, 3 120-132, 4 146, 6 147, 8 149, the
networks alone 201-204 (benchmarks/gpu_program.py, benchmarks/RESULTS.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, islice
from typing import Protocol, TypeVar

from .. import halves
from ..geometry import Box
from ..model.runtime import Backend, OnnxBackend, cpu_threads
from ..prediction import Prediction
from ..radiograph import Radiograph
from .views import Prepare

T = TypeVar("T")
Result = tuple[T, Radiograph | None, Prediction | Exception]


class Reader(Protocol):
    """What the streams need of a predictor."""

    def prepare(self, radiograph: Radiograph) -> Prepare: ...

    def predict(self, radiograph: Radiograph, with_heatmap: bool = ..., heatmap_max_side: int | None = ...,
                prepared: Prepare | None = ..., region: Box | None = ...) -> Prediction: ...


def on_onnx_cpu(backends: Sequence[Backend]) -> bool:
    """The networks all run on ONNX Runtime's CPU provider (whose sessions the streams replace
    by one-thread ones)."""
    return all(isinstance(b, OnnxBackend) and b.device == "cpu" for b in backends)


def default_streams(backends: Sequence[Backend]) -> int:
    """Parallel streams for a batch: 2 where the networks run on ONNX Runtime's CPU provider and
    there are at least two cores; 4 (at most one per core) where they run on CUDA; else 1."""
    if on_onnx_cpu(backends):
        return min(2, cpu_threads())
    on_cuda = all(str(getattr(b, "device", "")).startswith("cuda") for b in backends)
    return min(4, cpu_threads()) if on_cuda else 1


def stream_predictions(
    reader: Reader,
    items: Iterable[T],
    load: Callable[[T], Radiograph],
    with_heatmap: bool,
    heatmap_max_side: int | None,
    ahead: int,
    streams: int,
    twin: Callable[[], Reader],
) -> Iterator[Result[T]]:
    """``(item, radiograph, prediction or exception)`` for every item, in order (see
    ``Predictor.predict_many``). ``twin``: the predictor the streams run on, made on demand."""
    if streams > 1:
        # One file (`valvereader classify FILE`): one stream on the two-thread sessions, which
        # read one image faster, and no one-thread sessions built for it (0.2 s).
        rest = iter(items)
        head = list(islice(rest, 2))
        items = chain(head, rest)
        if len(head) < 2:
            streams = 1
    if streams > 1:
        yield from _streams(twin(), items, load, with_heatmap, heatmap_max_side, ahead, streams)
    else:
        yield from _one_stream(reader, items, load, with_heatmap, heatmap_max_side, ahead)


def _one_stream(
    reader: Reader, items: Iterable[T], load: Callable[[T], Radiograph], with_heatmap: bool,
    heatmap_max_side: int | None, ahead: int,
) -> Iterator[Result[T]]:
    """The networks here, a background thread loading and preprocessing up to ``ahead`` items
    ahead (ONNX Runtime releases the GIL while it works)."""

    def ready(item: T) -> tuple[Radiograph, Prepare]:
        with halves.off():  # it runs beside the networks
            radiograph = load(item)
            return radiograph, reader.prepare(radiograph)

    iterator = iter(items)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="valvereader-prefetch") as pool:
        pending: deque[tuple[T, Future[tuple[Radiograph, Prepare]]]] = deque()

        def top_up() -> None:
            for item in islice(iterator, max(0, max(1, ahead) - len(pending))):
                pending.append((item, pool.submit(ready, item)))

        top_up()
        try:
            while pending:
                item, future = pending.popleft()
                radiograph = None
                try:
                    radiograph, prepare = future.result()
                    top_up()  # the next file loads while this one is in the networks
                    with halves.off():  # the next file loads beside it
                        result: Prediction | Exception = reader.predict(
                            radiograph, with_heatmap, heatmap_max_side, prepared=prepare
                        )
                except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
                    top_up()
                    result = exc
                yield item, radiograph, result
        finally:
            for _, future in pending:
                future.cancel()


def _streams(
    twin: Reader, items: Iterable[T], load: Callable[[T], Radiograph], with_heatmap: bool,
    heatmap_max_side: int | None, ahead: int, streams: int,
) -> Iterator[Result[T]]:
    """``streams`` workers, each taking one item from file to result."""

    def whole(item: T) -> tuple[Radiograph | None, Prediction | Exception]:
        radiograph = None
        try:
            with halves.off():  # the streams keep the cores busy already
                radiograph = load(item)
                return radiograph, twin.predict(radiograph, with_heatmap, heatmap_max_side, prepared=twin.prepare(radiograph))
        except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
            return radiograph, exc

    iterator = iter(items)
    window = streams + max(0, ahead)
    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="valvereader-stream") as pool:
        pending: deque[tuple[T, Future[tuple[Radiograph | None, Prediction | Exception]]]] = deque()
        try:
            while True:
                for item in islice(iterator, max(0, window - len(pending))):
                    pending.append((item, pool.submit(whole, item)))
                if not pending:
                    return
                item, future = pending.popleft()
                radiograph, result = future.result()
                yield item, radiograph, result
        finally:
            for _, future in pending:
                future.cancel()
