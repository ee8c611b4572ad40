"""From a radiograph to a Prediction: locate the valve, identify it, explain, give a verdict.

Two pipelines (see the training docs):
- "locate+identify": a locator finds the valve's box in the whole radiograph, the identifier
  classifies a square crop around it at high resolution (used when both are installed);
- "whole-image": the identifier sees the whole (border-cropped) image, as in Vach et al.

Networks run through ``valvereader.model.runtime`` (ONNX Runtime on the CPU, torch on a GPU);
nothing here imports torch or Qt.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import chain, islice
from pathlib import Path
from typing import TypeVar

import numpy as np

from .. import halves, noise
from ..errors import ModelCardError, ModelError, WeightsMissingError
from ..explain import attention_box, class_activation_map, place_map
from ..geometry import Box
from .locating import FilmVerification, Located, decode_locator, locator_peaks
from ..model.card import ModelCard
from ..model.runtime import Backend, OnnxBackend, cpu_threads, open_backend
from .open_set import OpenSetScorer
from ..paths import weights_dir as default_weights_dir
from ..prediction import Prediction, cap_for_modality, distance_ratio
from ..preprocess import REDUCING_GAP, PreparedImage, Preprocess
from ..radiograph import PixelSpacing, Radiograph

T = TypeVar("T")
_END = object()
IDENTIFIER_CARD = "identifier.json"
LOCATOR_CARD = "locator.json"


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(logits / temperature); temperature 1 gives the plain softmax."""
    if temperature != 1.0:
        logits = logits / temperature
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def calibration_temperature(card: ModelCard) -> float:
    """The identifier's temperature-scaling T (card "calibration"); 1.0 where the card has none."""
    spec = card.data.get("calibration") or {}
    try:
        temperature = float(spec.get("temperature", 1.0))
    except (TypeError, ValueError):
        temperature = float("nan")
    if not np.isfinite(temperature) or temperature <= 0:
        raise ModelCardError(f"{card.path.name}: calibration temperature must be a positive number, not {spec.get('temperature')!r}")
    return temperature


def _preprocess_from(card: ModelCard, crop_border_default: bool = True, noise_limit: float | None = None) -> Preprocess:
    """The card's preprocessing. ``noise_limit``: the noise guard's default (.noise), used
    unless the card's ``preprocessing.noise_limit`` sets its own (null: no guard)."""
    config = card.preprocessing
    threshold = float(config.get("threshold", 0.02))
    crop_border = bool(config.get("crop_border", crop_border_default))
    limit = config.get("noise_limit", noise_limit)
    try:  # (Preprocess checks the gap and the limit; a bad one is the card's error)
        return Preprocess(card.input_size, threshold, crop_border, config.get("reducing_gap", REDUCING_GAP), limit)
    except ValueError as exc:
        raise ModelCardError(f"{card.path.name}: preprocessing.{exc}") from exc


# An image whose pixel spacing spans at least this many millimetres is a whole radiograph, not a
# crop around a valve (crops: a few cm; skull films: 17 cm and more). Cards may override it.
WHOLE_RADIOGRAPH_FOV_MM = 100.0


def field_of_view_mm(shape: tuple[int, int], spacing: PixelSpacing | None) -> float:
    """The longer side of the image in millimetres (0 without a pixel spacing)."""
    if spacing is None:
        return 0.0
    return max(shape[0] * float(spacing.row_mm), shape[1] * float(spacing.column_mm))


class _Prepare:
    """Preprocessing of one radiograph, each step done once and remembered.

    The locator and the identifier's whole-image view read the same border-cropped image: its
    border is found once and its reduction (block means, the expensive part of the resize)
    shared where the two input sizes need the same factor; one resample per view, and the same
    PreparedImage when the settings agree.
    """

    def __init__(self, radiograph: Radiograph):
        self.radiograph = radiograph
        self.crops: dict[tuple, Box] = {}
        self.reduced: dict[Box, dict] = {}  # crop → its reductions by factor, while needed
        self.done: dict[tuple, PreparedImage] = {}

    def __call__(self, transform: Preprocess, region: Box | None = None) -> PreparedImage:
        pixels = self.radiograph.pixels
        crop_key = (region, transform.crop_border, transform.threshold if transform.crop_border else None)
        crop = self.crops.get(crop_key)
        if crop is None:
            crop = self.crops[crop_key] = transform.crop_box(pixels, region)
        key = (transform.size, crop)
        if key not in self.done:
            self.done[key] = transform.resize(pixels, crop, self.reduced.setdefault(crop, {}))
        return self.done[key]

    def release(self) -> None:
        """Drop the intermediate reductions (the prepared inputs stay)."""
        self.reduced.clear()


class Predictor:
    """Identifies the valve in radiographs. Build with :func:`load_predictor`."""

    def __init__(
        self,
        identifier: ModelCard,
        locator: ModelCard | None = None,
        device: str | None = None,
        runtime: str | None = None,
    ):
        identifier.check_classes()
        self.identifier_card = identifier
        self.locator_card = locator
        self.valve_ids: tuple[str, ...] = identifier.class_ids
        self.thresholds = identifier.thresholds
        # Probabilities shown and used for the verdict: softmax(logits / T), T fitted on validation.
        self.temperature = calibration_temperature(identifier)
        # Noisier views than any training crop are blurred first (valvereader.noise).
        self._identify = _preprocess_from(identifier, noise_limit=noise.DEFAULT_LIMIT)
        self._identifier: Backend = open_backend(identifier, device, runtime)
        # Each view read as it is and mirrored left to right, the two logits averaged (card
        # "inference.mirror"; docs/evaluation/mirror-reading.md). Features stay the view's own.
        self.mirror = identifier.mirror
        self._scorer = OpenSetScorer(identifier)  # the verdict's score
        self._classifier_weights = self._load_classifier_weights(identifier)
        self._locate: Preprocess | None = None
        self._locator: Backend | None = None
        if locator is not None:
            self._locate = _preprocess_from(locator)
            self._locator = open_backend(locator, device, runtime)
        self.device = self._identifier.device
        self.pipeline = "locate+identify" if locator is not None else "whole-image"
        self.crop_scale = float((locator.data.get("crop_scale") if locator else None) or 1.6)
        # How predict() chooses between the located square and the whole image (card
        # "view_choice", chosen on validation radiographs and crops; docs/evaluation/pipelines.md).
        choice = identifier.data.get("view_choice") or {}
        # The views are compared by the card's open-set score, or by a score of their own when
        # the card names one (view_choice.score, statistics in the file of role "view_score").
        # Built on first use: a film (one view) never compares views, and the statistics cost
        # tens of MB and ~50 ms to prepare. Their checksum is checked now, like every file's.
        self._view_spec: dict | None = choice.get("score") or None
        self._own_view_scorer: OpenSetScorer | None = None
        self._view_lock = threading.Lock()
        self._streams_twin: Predictor | None = None
        self._view_file = identifier.verify(str(self._view_spec.get("role", "view_score"))) if self._view_spec else None
        view_method = str(self._view_spec.get("method", "none")).lower() if self._view_spec else self._scorer.method
        fov = choice.get("whole_radiograph_fov_mm", WHOLE_RADIOGRAPH_FOV_MM)
        self.whole_radiograph_fov_mm = float(fov) if fov else None
        # The margin is in the units of the card's open-set score; without one (strangeness is
        # then 1 - confidence) it would mean nothing, so it is not applied.
        self.located_margin = float(choice.get("located_margin", 0.0)) if view_method in ("mahalanobis", "energy") else 0.0
        self.locator_min_score = float(((locator.data.get("thresholds") or {}) if locator else {}).get("min_score", 0.3))
        self.verification = FilmVerification.from_card(locator)

    @property
    def _view_scorer(self) -> OpenSetScorer:
        """The score the views are compared by: the card's own, or view_choice.score's."""
        if not self._view_spec:
            return self._scorer
        if self._own_view_scorer is None:
            with self._view_lock:
                if self._own_view_scorer is None:
                    role = str(self._view_spec.get("role", "view_score"))
                    self._own_view_scorer = OpenSetScorer(self.identifier_card, self._view_spec, role, self._view_file)
        return self._own_view_scorer

    def warm_up(self) -> None:
        """Build now what a first prediction would otherwise build on demand: the view choice's
        own open-set statistics (for an image read two ways: a crop, a file without a pixel
        spacing) and the one-thread sessions a batch's streams run on (about 0.2 s). For a
        background start-up; predict and predict_many build them on first use without this."""
        if self._view_spec:
            self._view_scorer  # noqa: B018 - built under its lock, kept
        if self._default_streams() > 1:
            self._stream_predictor()

    @staticmethod
    def _load_classifier_weights(card: ModelCard) -> np.ndarray:
        """The final linear layer (K, C), needed for the class activation map."""
        from safetensors.numpy import load_file

        path = card.file("classifier") or card.file("safetensors")
        if path is None:
            raise WeightsMissingError(f"{card.path.name} lists no safetensors file for the classifier layer")
        role = "classifier" if card.file("classifier") else "safetensors"
        tensors = load_file(str(card.verify(role)))
        key = str(card.data.get("classifier_weight_key", "classifier.weight"))
        if key not in tensors:
            raise ModelError(f"{path.name} has no '{key}' tensor for the attention map")
        return tensors[key].astype(np.float32)

    # --- descriptions -----------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return self.identifier_card.title

    @property
    def card(self) -> dict:
        return self.identifier_card.data

    # --- stages -----------------------------------------------------------------------------
    def locate(self, radiograph: Radiograph, prepare: _Prepare | None = None) -> Located:
        """The valve's box in the radiograph's pixel coordinates, or box None if not found."""
        if self._locator is None or self._locate is None:
            return Located(None, 0.0)
        prepared = (prepare or _Prepare(radiograph))(self._locate)
        outputs = self._locator.run(prepared.pixels[None, None])
        return decode_locator(outputs, prepared, self._locate.size, self.locator_min_score)

    def locate_candidates(self, radiograph: Radiograph, prepare: _Prepare | None = None) -> tuple[list[Located], float]:
        """The locator's candidate boxes (its highest separate peaks, best first, at most the
        card's ``verification.candidates``) and its highest peak score (also when no peak
        reaches the candidates' minimum)."""
        if self.verification.candidates <= 1 or self._locator is None or self._locate is None:
            located = self.locate(radiograph, prepare)
            return ([located] if located.box is not None else []), located.score
        prepared = (prepare or _Prepare(radiograph))(self._locate)
        outputs = self._locator.run(prepared.pixels[None, None])
        peaks = locator_peaks(outputs, prepared, self.verification.candidates)
        top = peaks[0].score if peaks else 0.0
        return [p for p in peaks if p.box is not None and p.score >= self.verification.min_score], top

    def identify(
        self, radiograph: Radiograph, region: Box | None = None, prepare: _Prepare | None = None
    ) -> tuple[PreparedImage, dict[str, np.ndarray]]:
        prepared = (prepare or _Prepare(radiograph))(self._identify, region)
        return prepared, self._run_identifier(prepared.pixels[None, None])

    def identifier_inputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """The arrays the identifier's backend runs for a batch (N, 1, S, S): the batch itself,
        or with the card's ``mirror`` the batch followed by its left-right mirror image, in one
        array where the backend takes a batch (else the two one after the other). The
        benchmark times exactly these runs as the bare forward passes."""
        if not self.mirror:
            return [batch]
        mirrored = batch[..., ::-1]
        if getattr(self._identifier, "batches", False):
            return [np.concatenate([batch, mirrored])]
        return [batch, np.ascontiguousarray(mirrored)]

    def _run_identifier(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The identifier's outputs for a batch (N, 1, S, S). With the card's ``mirror``, every
        image is read mirrored too (``identifier_inputs``), and the logits are the mean of the two
        readings (the ensemble's members are joined the same way); the features, which the
        open-set score reads, are those of the images as they are. The mirrored readings' feature
        maps are kept as ``mirror_features`` for the attention map, which then explains the
        averaged logits (the logits are linear in the pooled features): an image and its mirror
        image get mirror-image maps."""
        runs = [self._identifier.run(inputs) for inputs in self.identifier_inputs(batch)]
        if not self.mirror:
            return runs[0]
        n = len(batch)
        outputs = {name: value[:n] for name, value in runs[0].items()}
        second = runs[-1] if len(runs) > 1 else {name: value[n:] for name, value in runs[0].items()}
        outputs["logits"] = (outputs["logits"] + second["logits"]) / 2
        outputs["mirror_features"] = second["features"]
        return outputs

    def _identify_views(
        self, radiograph: Radiograph, regions: list[Box | None], prepare: _Prepare
    ) -> list[tuple[Box | None, tuple[PreparedImage, dict[str, np.ndarray]]]]:
        """The identifier on every view, in one run when the backend takes a batch (one run
        of two images costs less than two runs of one, and gives the same numbers)."""
        if len(regions) < 2 or not getattr(self._identifier, "batches", False):
            identified = [self.identify(radiograph, region, prepare) for region in regions]
        else:
            prepared = [prepare(self._identify, region) for region in regions]
            outputs = self._run_identifier(np.stack([view.pixels for view in prepared])[:, None])
            identified = [(view_input, {name: value[i : i + 1] for name, value in outputs.items()}) for i, view_input in enumerate(prepared)]
        if len(regions) > 1:  # one view (a film): nothing to choose, no view score
            self._score_views([view for _, view in identified])
        return list(zip(regions, identified))

    def _score_views(self, views: list[dict[str, np.ndarray]]) -> None:
        """The score the views are compared by (``_view_score``), of all views at once: the
        projection matrix is read once. Where that is the verdict's score too, each view keeps
        it for the verdict; otherwise only the chosen view's verdict score is computed, in _finish."""
        logits = np.concatenate([view["logits"] for view in views]).astype(np.float64)
        scores = self._view_scorer(logits, np.concatenate([view["features"].mean(axis=(2, 3)) for view in views]))
        for i, view in enumerate(views):
            score = None if scores is None else float(scores[i])
            view["_view_score"] = score  # type: ignore[assignment]
            if not self._view_spec:
                view["_scored"] = (logits[i : i + 1], score)  # type: ignore[assignment]

    def prepare(self, radiograph: Radiograph) -> _Prepare:
        """Everything of ``predict`` that needs no network: the locator's input and the
        identifier's whole-image input (where predict will read the whole image). Safe to run
        in another thread (a loader running ahead of the networks); hand the result to
        ``predict(radiograph, prepared=...)``."""
        prepare = _Prepare(radiograph)
        if self._locate is not None:
            prepare(self._locate)
        if not self._whole_radiograph(radiograph):
            prepare(self._identify)
        prepare.release()
        return prepare

    def predict(
        self,
        radiograph: Radiograph,
        with_heatmap: bool = True,
        heatmap_max_side: int | None = None,
        prepared: _Prepare | None = None,
        region: Box | None = None,
    ) -> Prediction:
        """Identify the valve in one radiograph.

        ``region``: a box chosen by the reader (source pixels): the identifier reads exactly
        that region, as it reads a located box, and nothing is located (``box_source`` "reader").

        With a locator, a film (its pixel spacing spans at least the card's
        ``whole_radiograph_fov_mm``) is read through the located square alone. Any other image
        (a crop around the valve, as in the public data set, or a file without a spacing) is
        read both ways, and the view that looks more like the training crops wins: lower
        open-set score, the located view's lowered by the card's ``located_margin``; higher
        confidence where the card has no open-set score. The rule was chosen on validation
        radiographs and crops (docs/evaluation/pipelines.md, "View choice").

        Returns a Prediction whose box and heatmap are in the radiograph's pixel coordinates.
        With ``heatmap_max_side`` the heatmap is sampled every ``step`` pixels (step =
        ceil(longest side / heatmap_max_side)), i.e. ``full_heatmap()[::step, ::step]``, which
        is all a screen needs and far cheaper for a 2000×2500 image. ``prepared``: what
        :meth:`prepare` made for this radiograph ahead of time.
        """
        # The locator and the whole-image view usually share one preprocessing: do it once.
        prepare = prepared if prepared is not None and prepared.radiograph is radiograph else _Prepare(radiograph)
        if region is not None:
            return self._predict_region(radiograph, region, prepare, with_heatmap, heatmap_max_side)
        found, top_score = self.locate_candidates(radiograph, prepare)
        shape, spacing = radiograph.shape, radiograph.meta.pixel_spacing
        regions = [c.box.square(self.crop_scale, minimum=32).clip(shape) for c in found if c.box is not None]
        whole = not found or not self._is_film(shape, spacing) and not self._covers_most(regions[0], shape)
        views: list[Box | None] = [*regions, *([None] if whole else [])]
        identified = self._identify_views(radiograph, views, prepare)
        prepare.release()
        evidence = []
        for i, (view, (prepared_view, outputs)) in enumerate(identified):
            located = found[i] if view is not None else Located(None, top_score)
            _, ood = self._open_set(outputs)
            evidence.append((view, located, prepared_view, outputs, ood))
        # Among the located regions, the most valve-like (locator peak and open-set score).
        on_film = [e for e in evidence if e[0] is not None]
        chosen = max(on_film, key=lambda e: self.verification.valveness(e[1].score, e[4])) if on_film else None
        whole_view = next((e for e in evidence if e[0] is None), None)
        pipeline = "locate+identify"
        if chosen is None:  # nothing located: the whole image is read
            chosen, pipeline = whole_view, "whole-image"
        elif whole_view is not None:
            # The whole image may look more like the training crops (a crop around a valve); the
            # located view wins ties and small differences (the card's located_margin).
            located_strangeness = self._strangeness(chosen[3])
            if self._strangeness(whole_view[3]) < located_strangeness - self.located_margin:
                chosen, pipeline = whole_view, "whole-image"
        view, located, prepared_view, outputs, _ = chosen  # type: ignore[misc]
        prediction = self._finish(shape, prepared_view, outputs, located, with_heatmap, heatmap_max_side)
        prediction.pipeline = pipeline
        prediction.locator_score = located.score if view is not None else (top_score if self._locator is not None else None)
        prediction.candidates = [self._evidence_row(e) for e in [chosen, *[e for e in evidence if e is not chosen]]]
        best = max((self.verification.valveness(e[1].score, e[4]) for e in on_film), default=-np.inf)
        self.verification.apply(prediction, best, None if whole_view is None else whole_view[4], pipeline == "whole-image")
        return cap_for_modality(prediction, radiograph.meta.modality)  # a CT or MR file is never named

    def _evidence_row(self, entry: tuple) -> dict:
        region, located, _, outputs, ood = entry
        probabilities = _softmax(outputs["_scored"][0], self.temperature)[0]
        index = int(np.argmax(probabilities))
        return {"box": None if located.box is None else located.box.as_tuple(), "read": None if region is None else region.as_tuple(),
                "locator_score": None if region is None else round(float(located.score), 4),
                "ood_score": None if ood is None else round(float(ood), 3), "valve": self.valve_ids[index],
                "probability": round(float(probabilities[index]), 4)}

    def _covers_most(self, region: Box, shape: tuple[int, int]) -> bool:
        whole = Box.full(shape)
        return region.width * region.height >= 0.8 * whole.width * whole.height

    def _predict_region(
        self, radiograph: Radiograph, region: Box, prepare: _Prepare, with_heatmap: bool, heatmap_max_side: int | None
    ) -> Prediction:
        """The reader's region read as a located box is read (its square, the locator's crop scale)."""
        box = region.clip(radiograph.shape)
        if box.width <= 0 or box.height <= 0:
            raise ValueError(f"the region {region.as_tuple()} lies outside the image ({radiograph.shape[1]} x {radiograph.shape[0]} px)")
        square = box.square(self.crop_scale, minimum=32).clip(radiograph.shape)
        prepared_view, outputs = self.identify(radiograph, square, prepare)
        prepare.release()
        prediction = self._finish(radiograph.shape, prepared_view, outputs, Located(box, 1.0), with_heatmap, heatmap_max_side)
        prediction.pipeline = "reader region"
        prediction.box_source = "reader"
        return cap_for_modality(prediction, radiograph.meta.modality)

    def predict_many(
        self,
        items: Iterable[T],
        load: Callable[[T], Radiograph] | None = None,
        with_heatmap: bool = False,
        heatmap_max_side: int | None = None,
        ahead: int = 2,
        streams: int | None = None,
    ) -> Iterator[tuple[T, Radiograph | None, Prediction | Exception]]:
        """Predict for many files (or anything ``load`` turns into a Radiograph), in order.

        Yields ``(item, radiograph, prediction)``; when loading or predicting one item fails,
        ``(item, radiograph or None, exception)`` and the batch goes on.

        ``streams`` files go through load → preprocess → networks at once, each stream on
        ONNX Runtime sessions of one thread (default: one stream per CPU core, up to 2, where
        the networks run on ONNX Runtime on the CPU; up to 4 on CUDA, sharing the models; else
        1; ``_default_streams``). On two cores two such streams
        get about 15 % more images through than one stream on two-thread sessions: a small
        network does not keep two threads busy, and one stream's loading fills the gaps of
        the other's network runs. With one stream, a background thread loads and preprocesses
        up to ``ahead`` items ahead while the networks run here (ONNX Runtime releases the GIL
        while it works).
        """
        if load is None:
            from ..io import load as load_file

            load = load_file  # type: ignore[assignment]
        streams = self._default_streams() if streams is None else max(1, int(streams))
        if streams > 1:
            # One file (`valvereader classify FILE`): one stream on the two-thread sessions, which
            # read one image faster, and no one-thread sessions built for it (0.2 s).
            rest = iter(items)
            head = list(islice(rest, 2))
            items = chain(head, rest)
            if len(head) < 2:
                streams = 1
        if streams > 1:
            yield from self._predict_streams(items, load, with_heatmap, heatmap_max_side, ahead, streams)  # type: ignore[arg-type]
            return

        def ready(item: T) -> tuple[Radiograph, _Prepare]:
            with halves.off():  # it runs beside the networks
                radiograph = load(item)  # type: ignore[misc]
                return radiograph, self.prepare(radiograph)

        iterator = iter(items)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="valvereader-prefetch") as pool:
            pending: deque[tuple[T, Future]] = deque()

            def top_up() -> None:
                while len(pending) < max(1, ahead):
                    item = next(iterator, _END)
                    if item is _END:
                        return
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
                            result: Prediction | Exception = self.predict(
                                radiograph, with_heatmap, heatmap_max_side, prepared=prepare
                            )
                    except Exception as exc:  # noqa: BLE001 - one bad file must not end a batch
                        top_up()
                        result = exc
                    yield item, radiograph, result
            finally:
                for _, future in pending:
                    future.cancel()

    def _default_streams(self) -> int:
        """Parallel streams for a batch: 2 where both networks run on ONNX Runtime's CPU
        provider and there are at least two cores; 4 (at most one per core) where both run on
        CUDA; else 1. On CUDA a stream waits on its own loading, cropping and scoring, not on
        the GPU: on an H200 with 16 cores, 120 films, 1 stream 70 images/s, 2 streams 98-113,
        3 120-132, 4 146, 6 147, 8 149, the networks alone 201-204
        (benchmarks/gpu_program.py, benchmarks/RESULTS.md)."""
        if self._on_onnx_cpu():
            return min(2, cpu_threads())
        on_cuda = all(str(getattr(b, "device", "")).startswith("cuda") for b in self._backends())
        return min(4, cpu_threads()) if on_cuda else 1

    def _backends(self) -> list[Backend]:
        return [self._identifier] + ([self._locator] if self._locator is not None else [])

    def _on_onnx_cpu(self) -> bool:
        """Both networks run on ONNX Runtime's CPU provider (whose sessions the streams replace
        by one-thread ones)."""
        return all(isinstance(b, OnnxBackend) and b.device == "cpu" for b in self._backends())

    def _stream_predictor(self) -> Predictor:
        """This predictor on ONNX Runtime sessions of one thread each (made once, on first use
        by a batch of several streams; the sessions are shared by the streams: ONNX Runtime
        runs a session from several threads at once). Elsewhere (torch, a GPU), this predictor
        itself."""
        if self._view_spec:
            self._view_scorer  # noqa: B018 - built now (it takes the lock), shared with the twin
        if not self._on_onnx_cpu():
            return self  # torch (a GPU): the streams share its models, which several threads may run
        with self._view_lock:
            if self._streams_twin is None:
                twin = copy.copy(self)
                twin._identifier = OnnxBackend(self.identifier_card, "cpu", threads=1)
                if self.locator_card is not None:
                    twin._locator = OnnxBackend(self.locator_card, "cpu", threads=1)
                twin._streams_twin = twin
                self._streams_twin = twin
        return self._streams_twin

    def _predict_streams(
        self,
        items: Iterable[T],
        load: Callable[[T], Radiograph],
        with_heatmap: bool,
        heatmap_max_side: int | None,
        ahead: int,
        streams: int,
    ) -> Iterator[tuple[T, Radiograph | None, Prediction | Exception]]:
        """predict_many with ``streams`` workers, each taking one item from file to result."""
        twin = self._stream_predictor()

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
            pending: deque[tuple[T, Future]] = deque()
            try:
                while True:
                    while len(pending) < window:
                        item = next(iterator, _END)
                        if item is _END:
                            break
                        pending.append((item, pool.submit(whole, item)))
                    if not pending:
                        return
                    item, future = pending.popleft()
                    radiograph, result = future.result()
                    yield item, radiograph, result
            finally:
                for _, future in pending:
                    future.cancel()

    def _is_film(self, shape: tuple[int, int], spacing: PixelSpacing | None) -> bool:
        """Its pixel spacing says this is a whole radiograph, not a crop around a valve. (Without a
        spacing there is no telling: by its size in pixels a magnified crop looks like a film;
        docs/evaluation/pipelines.md, "Films without a pixel spacing".)"""
        return self.whole_radiograph_fov_mm is not None and field_of_view_mm(shape, spacing) >= self.whole_radiograph_fov_mm

    def _whole_radiograph(self, radiograph: Radiograph) -> bool:
        """A film that predict reads through the located square alone (when the valve is found)."""
        return self._locator is not None and self._is_film(radiograph.shape, radiograph.meta.pixel_spacing)

    def views(
        self, shape: tuple[int, int], located: Located, spacing: PixelSpacing | None = None
    ) -> list[Box | None]:
        """The regions the identifier reads: the located square (if any) and the whole image
        (None). The whole image is left out when it is known to be a whole radiograph (its
        pixel spacing gives a field of view of at least ``whole_radiograph_fov_mm``: a crop
        around a valve spans a few centimetres, a skull film 17 cm or more) or when the located
        square already covers most of it."""
        if located.box is None:
            return [None]
        region = located.box.square(self.crop_scale, minimum=32).clip(shape)
        if self._is_film(shape, spacing):
            return [region]
        whole = Box.full(shape)
        return [region] if region.width * region.height >= 0.8 * whole.width * whole.height else [region, None]

    def _open_set(self, outputs: dict[str, np.ndarray]) -> tuple[np.ndarray, float | None]:
        """(logits as float64, open-set score or None) of one view, computed once per view."""
        cached = outputs.get("_scored")
        if cached is None:
            logits = outputs["logits"].astype(np.float64)
            pooled = outputs["features"].mean(axis=(2, 3))
            distances = outputs["_distances"] = self._scorer.class_distances(pooled)  # type: ignore[assignment]
            score = distances.min(axis=1) if distances is not None else self._scorer(logits, pooled)
            cached = outputs["_scored"] = (logits, None if score is None else float(score[0]))  # type: ignore[assignment]
        return cached  # type: ignore[return-value]

    def _between(self, outputs: dict[str, np.ndarray]) -> float | None:
        """The view's nearest / second-nearest class-distance ratio (prediction.distance_ratio):
        the verdict's "between two catalogue valves" evidence; None without class distances."""
        distances = outputs.get("_distances")
        if distances is None:
            distances = self._scorer.class_distances(outputs["features"].mean(axis=(2, 3)))
        return None if distances is None else distance_ratio(distances[0])

    def _strangeness(self, outputs: dict[str, np.ndarray]) -> float:
        """How unlike the training crops a view looks, by the view choice's score (set by
        _score_views), else 1 - confidence."""
        score = outputs["_view_score"]
        if score is not None:
            return float(score)  # type: ignore[arg-type]
        return 1.0 - float(_softmax(outputs["logits"].astype(np.float64), self.temperature)[0].max())

    def _finish(
        self,
        shape: tuple[int, int],
        prepared: PreparedImage,
        outputs: dict[str, np.ndarray],
        located: Located,
        with_heatmap: bool,
        heatmap_max_side: int | None = None,
    ) -> Prediction:
        logits, ood_score = self._open_set(outputs)
        probabilities = _softmax(logits, self.temperature)[0]
        index = int(np.argmax(probabilities))
        # The map of the logits shown: with the mirror reading, of both readings.
        mirrored = outputs.get("mirror_features")
        cam = class_activation_map(outputs["features"][0], self._classifier_weights[index],
                                   None if mirrored is None else mirrored[0])
        box = located.box if located.box is not None else attention_box(cam, prepared.crop)
        between = self._between(outputs)
        verdict, reason = self.thresholds.decide(float(probabilities[index]), ood_score, between)
        heatmap = None
        if with_heatmap:
            step = max(1, -(-max(shape) // heatmap_max_side)) if heatmap_max_side else 1
            heatmap = place_map(cam, prepared.crop, shape, step)
        return Prediction(
            valve_ids=self.valve_ids,
            probabilities=probabilities.astype(np.float32),
            verdict=verdict,
            verdict_reason=reason,
            ood_score=ood_score,
            distance_ratio=between,
            box=box,
            heatmap=heatmap,
            model=self.model_name,
            pipeline=self.pipeline,
            attention=cam,
            attention_region=prepared.crop,
            image_shape=shape,
            smoothed=prepared.smoothed,
            box_source="located" if located.box is not None else "attention",
        )


def load_predictor(
    weights_dir: Path | None = None, device: str | None = None, runtime: str | None = None
) -> Predictor:
    """The predictor for the weights in ``weights_dir`` (default: the bundled weights).

    Raises:
        WeightsMissingError: no identifier model card there — says where to put one.
        WeightsIntegrityError: a checksum or the class list does not match.
    """
    folder = Path(weights_dir) if weights_dir else default_weights_dir()
    identifier_path = folder / IDENTIFIER_CARD
    if not identifier_path.exists():
        raise WeightsMissingError(
            f"No valve model installed: {identifier_path} not found. Put identifier.json with its "
            f"identifier.onnx/.safetensors into {folder} (or pass --weights DIR / set VALVEREADER_WEIGHTS)."
        )
    identifier = ModelCard.load(identifier_path)
    locator_path = folder / LOCATOR_CARD
    locator = ModelCard.load(locator_path) if locator_path.exists() else None
    return Predictor(identifier, locator, device=device, runtime=runtime)
