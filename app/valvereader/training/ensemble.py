"""Join trained identifier runs into one ensemble run folder, which `valvereader evaluate` and
the ship step then treat like any other run.

    python -m valvereader.training.ensemble --out runs/ensemble RUN_A RUN_B [...]

Each RUN is a run folder (``model.json`` + ``model.safetensors``, ``split.json``) of an
identifier trained on the same split. The ensemble (``EnsembleNet``) averages the members'
logits and reads its input at the largest member's size; nothing is trained. Temperature,
thresholds and open-set statistics are fitted afterwards by ``valvereader evaluate`` on the
ensemble's own outputs, as for a single network.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ModelError
from ..model.architectures import ENSEMBLE

SPLIT = "split.json"


def _split_key(split: dict) -> tuple:
    """What must agree between members: the same images in each part (by path and label)."""
    paths, labels = split["paths"], split["labels"]
    return tuple((part, tuple(sorted((paths[i], labels[i]) for i in indices))) for part, indices in sorted(split["split"].items()))


def make_ensemble(runs: list[Path], out: Path, openset_members: int | None = None) -> Path:
    """Write ``out`` (model.json, model.safetensors, split.json) from the member ``runs``.

    ``openset_members``: fit the open-set statistics on the pooled features of the first this
    many members only (``openset_features`` in model.json, the channel range; ``evaluate`` and
    the card follow it). Default: all members. The statistics' size grows with the square of
    the feature count (stored as the upper triangle: 13 MB for 2560 features, 29 MB for 3840).

    Raises:
        ModelError: fewer than two runs, a run without its model or split, members with other
            classes, a member that is itself an ensemble, or members trained on different splits
            (the ensemble's validation and test images must be unseen by every member).
    """
    from safetensors.torch import load_file, save_file

    from .train import FINAL, FINAL_CARD

    runs = [Path(run) for run in runs]
    if len(runs) < 2:
        raise ModelError("an ensemble needs at least two runs")
    if openset_members is not None and not 1 <= openset_members <= len(runs):
        raise ModelError(f"openset_members must be between 1 and {len(runs)}, not {openset_members}")
    cards, splits = [], []
    for run in runs:
        for name in (FINAL_CARD, FINAL, SPLIT):
            if not (run / name).is_file():
                raise ModelError(f"{run} is not a finished identifier run: {name} is missing")
        card = json.loads((run / FINAL_CARD).read_text(encoding="utf-8"))
        if card.get("arch") == ENSEMBLE:
            raise ModelError(f"{run} is already an ensemble; list its members instead")
        cards.append(card)
        splits.append(json.loads((run / SPLIT).read_text(encoding="utf-8")))
    if any(list(card["class_ids"]) != list(cards[0]["class_ids"]) for card in cards):
        raise ModelError("the runs have different class lists")
    if any(_split_key(split) != _split_key(splits[0]) for split in splits[1:]):
        raise ModelError("the runs were trained on different splits: an ensemble's validation and test images must be unseen by every member")
    state, features = {}, []
    for i, run in enumerate(runs):
        member = load_file(str(run / FINAL))
        for key, value in member.items():
            state[f"members.{i}.{key}"] = value
        features.append(int(member["classifier.weight"].shape[1]) if "classifier.weight" in member else None)
    members = [{"arch": card["arch"], "input_size": int(card["input_size"]), "source": run.as_posix(),
                "training": {k: card[k] for k in ("config", "hardware", "duration_s", "training_data") if k in card}}
               for run, card in zip(runs, cards)]
    largest = max(cards, key=lambda card: int(card["input_size"]))
    config = dict(largest.get("config", {}))
    config.update({"arch": ENSEMBLE, "input_size": int(largest["input_size"])})
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(out / FINAL))
    card = {
        "arch": ENSEMBLE,
        "members": [{"arch": m["arch"], "input_size": m["input_size"]} for m in members],
        "member_runs": members,
        "input_size": int(largest["input_size"]),
        "class_ids": list(cards[0]["class_ids"]),
        "preprocessing": dict(largest["preprocessing"]),
        "config": config,
        "history": [],
        "hardware": "none: an ensemble of trained runs (see member_runs)",
    }
    if openset_members is not None and openset_members < len(runs):
        # Each member's pooled features are its classifier's inputs.
        if None in features[:openset_members]:
            raise ModelError("a member's weights have no classifier.weight: its feature count is unknown")
        card["openset_features"] = [0, sum(features[:openset_members])]
    (out / FINAL_CARD).write_text(json.dumps(card, indent=1), encoding="utf-8")
    (out / SPLIT).write_text((runs[0] / SPLIT).read_text(encoding="utf-8"), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m valvereader.training.ensemble", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="member run folders (same split)")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's run folder")
    parser.add_argument("--openset-members", type=int, default=None, metavar="N",
                        help="fit the open-set statistics on the first N members' features only (default: all)")
    args = parser.parse_args(argv)
    try:
        folder = make_ensemble(args.runs, args.out, args.openset_members)
    except ModelError as exc:
        print(f"valvereader: {exc}", file=sys.stderr)
        return 2
    print(f"ensemble of {len(args.runs)} runs written to {folder}; next: valvereader evaluate --run {folder} --out DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
