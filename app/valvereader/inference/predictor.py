"""From a radiograph to a Prediction: locate the valve, identify it, explain, give a verdict.

Two pipelines (see the training docs):
- "locate+identify": a locator finds the valve's box in the whole radiograph, the identifier
  classifies a square crop around it at high resolution (used when both are installed);
- "whole-image": the identifier sees the whole (border-cropped) image, as in Vach et al.

Which view is read is the view rule's (``views``), the verdict the verdict rule's
(``verdict``), many files at once the streams' (``streams``). Networks run through
``valvereader.model.runtime`` (ONNX Runtime on the CPU, torch on a GPU); nothing here imports
torch or Qt.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Self, TypeVar, overload

import numpy as np

from .. import noise
from ..errors import ModelError, WeightsMissingError
from ..geometry import Box
from ..model.card import ModelCard
from ..model.runtime import Backend, OnnxBackend, open_backend
from ..paths import weights_dir as default_weights_dir
from ..prediction import Prediction, cap_for_modality
from ..preprocess import PreparedImage, Preprocess
from ..radiograph import Radiograph
from .cards import IDENTIFIER_CARD, LOCATOR_CARD, calibration_temperature, preprocess_from
from .film_head import FilmHead
from .locating import FilmVerification, Located, decode_locator, locator_peaks
from .open_set import OpenSetScorer
from .polarity import PolarityCheck
from .streams import default_streams, on_onnx_cpu, stream_predictions
from .valve_probe import ValveProbe
from .verdict import ViewVerdict
from .views import Evidence, Prepare, ViewRule, covers_most

T = TypeVar("T")
P = TypeVar("P", str, Path)  # a file, where predict_many loads the items itself


class Predictor(ViewRule, ViewVerdict):
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
        self.valve_ids = identifier.class_ids
        self.thresholds = identifier.thresholds
        # Probabilities shown and used for the verdict: softmax(logits / T), T fitted on validation.
        self.temperature = calibration_temperature(identifier)
        # Noisier views than any training crop are blurred first (valvereader.noise).
        self._identify = preprocess_from(identifier, noise_limit=noise.DEFAULT_LIMIT)
        self._identifier: Backend = open_backend(identifier, device, runtime)
        # Each view read as it is and mirrored left to right, the two logits averaged (card
        # "inference.mirror"; docs/evaluation/mirror-reading.md). Features stay the view's own.
        self.mirror = identifier.mirror
        self._scorer = OpenSetScorer(identifier)  # the verdict's score
        self._classifier_weights = self._load_classifier_weights(identifier)
        # Regions cut from a film get the card's film-region head (inference.film_head).
        self.film_head = FilmHead.from_card(identifier)
        self._locate: Preprocess | None = None
        self._locator: Backend | None = None
        if locator is not None:
            self._locate = preprocess_from(locator)
            self._locator = open_backend(locator, device, runtime)
        self.device = self._identifier.device
        self.pipeline = "locate+identify" if locator is not None else "whole-image"
        self.crop_scale = float((locator.data.get("crop_scale") if locator else None) or 1.6)
        # How predict() chooses between the located square and the whole image (views.ViewRule).
        self._read_view_choice(identifier)
        self._streams_twin: Self | None = None
        self.locator_min_score = float(((locator.data.get("thresholds") or {}) if locator else {}).get("min_score", 0.3))
        self.verification = FilmVerification.from_card(locator)
        # Is a located region a valve or other hardware (locator card "valve_probe", verification.probe_weight).
        self.valve_probe = ValveProbe.from_cards(locator, identifier)
        # Is an image file a negative, to be read inverted (locator card "polarity").
        self.polarity = PolarityCheck.from_card(locator)
        self.weights_key = _weights_key(identifier, locator)

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
    def new_prepare(self, radiograph: Radiograph) -> Prepare:
        """The radiograph's preprocessing, read inverted where it is a negative image file
        (``inference.polarity``)."""
        return Prepare(radiograph, invert=self.polarity is not None and self.polarity.is_negative(radiograph))

    def locate(self, radiograph: Radiograph, prepare: Prepare | None = None) -> Located:
        """The valve's box in the radiograph's pixel coordinates, or box None if not found."""
        if self._locator is None or self._locate is None:
            return Located(None, 0.0)
        prepared = (prepare or self.new_prepare(radiograph))(self._locate)
        outputs = self._locator.run(prepared.pixels[None, None])
        return decode_locator(outputs, prepared, self._locate.size, self.locator_min_score)

    def locate_candidates(self, radiograph: Radiograph, prepare: Prepare | None = None) -> tuple[list[Located], float]:
        """The locator's candidate boxes (its highest separate peaks, best first, at most the
        card's ``verification.candidates``) and its highest peak score (also when no peak
        reaches the candidates' minimum)."""
        if self.verification.candidates <= 1 or self._locator is None or self._locate is None:
            located = self.locate(radiograph, prepare)
            return ([located] if located.box is not None else []), located.score
        prepared = (prepare or self.new_prepare(radiograph))(self._locate)
        outputs = self._locator.run(prepared.pixels[None, None])
        peaks = locator_peaks(outputs, prepared, self.verification.candidates)
        top = peaks[0].score if peaks else 0.0
        return [p for p in peaks if p.box is not None and p.score >= self.verification.min_score], top

    def identify(
        self, radiograph: Radiograph, region: Box | None = None, prepare: Prepare | None = None
    ) -> tuple[PreparedImage, dict[str, np.ndarray]]:
        prepared = (prepare or self.new_prepare(radiograph))(self._identify, region)
        outputs = self._run_identifier(prepared.pixels[None, None])
        self._film_region(outputs, region, radiograph.shape)
        return prepared, outputs

    def _film_region(self, outputs: dict[str, np.ndarray], region: Box | None, shape: tuple[int, int]) -> None:
        """A region cut from a film gets the film-region head (where the card has one)."""
        if self.film_head is not None and self.film_head.applies(region, shape):
            self.film_head.apply(outputs)

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
        self, radiograph: Radiograph, regions: list[Box | None], prepare: Prepare
    ) -> list[tuple[Box | None, tuple[PreparedImage, dict[str, np.ndarray]]]]:
        """The identifier on every view, in one run when the backend takes a batch (one run
        of two images costs less than two runs of one, and gives the same numbers)."""
        if len(regions) < 2 or not getattr(self._identifier, "batches", False):
            identified = [self.identify(radiograph, region, prepare) for region in regions]
        else:
            prepared = [prepare(self._identify, region) for region in regions]
            outputs = self._run_identifier(np.stack([view.pixels for view in prepared])[:, None])
            identified = [(view_input, {name: value[i : i + 1] for name, value in outputs.items()}) for i, view_input in enumerate(prepared)]
            for region, (_, view_outputs) in zip(regions, identified):
                self._film_region(view_outputs, region, radiograph.shape)
        if len(regions) > 1:  # one view (a film): nothing to choose, no view score
            self._score_views([view for _, view in identified])
        return list(zip(regions, identified))

    def prepare(self, radiograph: Radiograph) -> Prepare:
        """Everything of ``predict`` that needs no network: the locator's input and the
        identifier's whole-image input (where predict will read the whole image). Safe to run
        in another thread (a loader running ahead of the networks); hand the result to
        ``predict(radiograph, prepared=...)``."""
        prepare = self.new_prepare(radiograph)
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
        prepared: Prepare | None = None,
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
        prepare = prepared if prepared is not None and prepared.radiograph is radiograph else self.new_prepare(radiograph)
        if region is not None:
            return self._predict_region(radiograph, region, prepare, with_heatmap, heatmap_max_side)
        found, top_score, views = self.regions_read(radiograph, prepare)
        shape, spacing = radiograph.shape, radiograph.meta.pixel_spacing
        identified = self._identify_views(radiograph, views, prepare)
        prepare.release()
        evidence = []
        for i, (view, (prepared_view, outputs)) in enumerate(identified):
            located = found[i] if view is not None else Located(None, top_score)
            probe = self.valve_probe(outputs) if self.valve_probe is not None and view is not None else None
            evidence.append(Evidence(view, located, prepared_view, outputs, self._open_set(outputs)[1], probe))
        # Among the located regions, the most valve-like (locator peak and open-set score).
        on_film = [e for e in evidence if e.region is not None]
        whole_view = next((e for e in evidence if e.region is None), None)
        likeness = [self.verification.valveness(e.located.score, e.ood, e.probe) for e in on_film]
        if on_film:
            most_valve_like = on_film[int(np.argmax(likeness))]
            chosen, pipeline = self._choose_view(most_valve_like, whole_view)
            shown = most_valve_like.located  # the box shown, whichever view names the valve
        else:  # nothing located: the whole image is read, and the box is the attention map's
            assert whole_view is not None  # (read whenever nothing is found)
            chosen, pipeline = whole_view, "whole-image"
            shown = chosen.located
        prediction = self._finish(shape, chosen.prepared, chosen.outputs, shown, with_heatmap, heatmap_max_side)
        prediction.pipeline = pipeline
        prediction.inverted = prepare.invert
        prediction.film_region = chosen.region is not None and FilmHead.applies(chosen.region, shape)
        prediction.locator_score = (chosen.located.score if chosen.region is not None
                                    else (top_score if self._locator is not None else None))
        # The whole image as read: its own view, or (an image that is not a film) a first region
        # that covers most of it, which the whole image is then not read again for.
        as_whole = whole_view
        if whole_view is None and on_film and not self._is_film(shape, spacing):  # its first region covers most of it
            as_whole = on_film[0]
        prediction.candidates = [self._evidence_row(e, e is as_whole) for e in [chosen, *[e for e in evidence if e is not chosen]]]
        best = max(likeness, default=-np.inf)
        self.verification.apply(prediction, best, None if as_whole is None else as_whole.ood, pipeline == "whole-image")
        return cap_for_modality(prediction, radiograph.meta.modality)  # a CT or MR file is never named

    def regions_read(self, radiograph: Radiograph, prepare: Prepare) -> tuple[list[Located], float, list[Box | None]]:
        """(the locator's candidates, its highest peak, the views predict reads): each
        candidate's square, and ``None`` for the whole image where it is read too (nothing
        located, or an image that is not a film whose first square does not cover most of it)."""
        found, top_score = self.locate_candidates(radiograph, prepare)
        shape = radiograph.shape
        regions = [c.box.square(self.crop_scale, minimum=32).clip(shape) for c in found if c.box is not None]
        whole = not found or not self._is_film(shape, radiograph.meta.pixel_spacing) and not covers_most(regions[0], shape)
        return found, top_score, [*regions, *([None] if whole else [])]

    def _predict_region(
        self, radiograph: Radiograph, region: Box, prepare: Prepare, with_heatmap: bool, heatmap_max_side: int | None
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
        prediction.inverted = prepare.invert
        prediction.film_region = FilmHead.applies(square, radiograph.shape)
        if prediction.film_region:  # a region of a film: the film's bars, but for the locator's peak
            self.verification.film_bars(prediction, located=False)
        return cap_for_modality(prediction, radiograph.meta.modality)

    @overload
    def predict_many(
        self, items: Iterable[T], load: Callable[[T], Radiograph], with_heatmap: bool = ...,
        heatmap_max_side: int | None = ..., ahead: int = ..., streams: int | None = ...,
    ) -> Iterator[tuple[T, Radiograph | None, Prediction | Exception]]: ...

    @overload
    def predict_many(
        self, items: Iterable[P], load: None = ..., with_heatmap: bool = ...,
        heatmap_max_side: int | None = ..., ahead: int = ..., streams: int | None = ...,
    ) -> Iterator[tuple[P, Radiograph | None, Prediction | Exception]]: ...

    def predict_many(
        self,
        items: Iterable[Any],
        load: Callable[[Any], Radiograph] | None = None,
        with_heatmap: bool = False,
        heatmap_max_side: int | None = None,
        ahead: int = 2,
        streams: int | None = None,
    ) -> Iterator[tuple[Any, Radiograph | None, Prediction | Exception]]:
        """Predict for many files (or anything ``load`` turns into a Radiograph), in order.

        Yields ``(item, radiograph, prediction)``; when loading or predicting one item fails,
        ``(item, radiograph or None, exception)`` and the batch goes on.

        ``streams`` files go through load → preprocess → networks at once, each stream on
        ONNX Runtime sessions of one thread (default: one stream per CPU core, up to 2, where
        the networks run on ONNX Runtime on the CPU; up to 4 on CUDA, sharing the models; else
        1; ``_default_streams``; the numbers behind it in ``valvereader.inference.streams``).
        With one stream, a background thread loads and preprocesses up to ``ahead`` items
        ahead while the networks run here.
        """
        if load is None:  # the items are files
            from ..io import load as load_file

            load = load_file
        count = self._default_streams() if streams is None else max(1, int(streams))
        return stream_predictions(self, items, load, with_heatmap, heatmap_max_side, ahead, count, self._stream_predictor)

    def _default_streams(self) -> int:
        """Parallel streams for a batch (``streams.default_streams``)."""
        return default_streams(self._backends())

    def _backends(self) -> list[Backend]:
        return [self._identifier] + ([self._locator] if self._locator is not None else [])

    def _stream_predictor(self) -> Self:
        """This predictor on ONNX Runtime sessions of one thread each (made once, on first use
        by a batch of several streams; the sessions are shared by the streams: ONNX Runtime
        runs a session from several threads at once). Elsewhere (torch, a GPU), this predictor
        itself."""
        if self._view_spec:
            self._view_scorer  # noqa: B018 - built now (it takes the lock), shared with the twin
        if not on_onnx_cpu(self._backends()):
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


def _weights_key(identifier: ModelCard, locator: ModelCard | None) -> str:
    """Which weights give a result: the versions and the sha256 of both model cards (every
    threshold, rule and file checksum is in a card), so that a result kept from other weights
    (a new locator or verification under the same identifier) is not shown again."""
    digest = hashlib.sha256()
    for card in (identifier, locator):
        if card is not None:
            digest.update(card.path.read_bytes())
    located = f", locator {locator.data.get('version', '?')}" if locator is not None else ""
    return f"identifier {identifier.data.get('version', '?')}{located}, cards {digest.hexdigest()[:16]}"


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
