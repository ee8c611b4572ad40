"""Read film regions (``valvereader.training.film_regions``) three ways, to ask whether a member
fine-tuned on film regions names valves through the true box better than the shipped identifier
(a diagnostic: nothing is chosen or shipped from it).

    python tools/film_member_check.py --regions runs/val_regions --member runs/ft/member_320 \\
        [--weights weights] [--crops-split docs/evaluation/identifier/split.json] [--out result.json]

- ``shipped``: as the program reads a box on a film (``Predictor._run_identifier`` on the regions
  at the card's input size: every member, the card's mirror reading, the film-region head);
- ``shipped_member``: the shipped member of the same input size as ``--member`` alone (its logits
  and its mirror image's averaged, no head);
- ``member``: the fine-tuned member alone, read the same way;
- ``shipped_and_member``: the mean of the shipped identifier's and the member's probabilities.

Counts the true-box regions (variant 0) named right, overall and by valve size; with
``--crops-split``, also the validation crops (as the members were fine-tuned on them: JPEG
copies, ``film_finetune.prepare_real``) read by the two members alone.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SIZES_MM = ((15, 25), (25, 35), (35, 45.1))


def member_logits(state: dict, arch: str, classes: int, images: np.ndarray, batch: int = 16) -> np.ndarray:
    """Mean of a member's logits on ``images`` (N, S, S uint8) and on their left-right mirror images."""
    import torch

    from valvereader.model.architectures import build_model

    model = build_model(arch, classes, pretrained=False)
    model.load_state_dict(state)
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.asarray(images[start:start + batch], np.float32)[:, None] / 255.0)
            logits = (model(x)[0] + model(torch.flip(x, dims=[3]))[0]) / 2
            out.append(logits.numpy())
    return np.concatenate(out)


def shipped_logits(weights: Path, regions: Path) -> np.ndarray:
    """The shipped identifier's logits as the program gives them for a box on a film (its
    outputs on the regions, ``training.film_head.region_features``, corrected by the card's
    film-region head)."""
    from valvereader.inference.film_head import FilmHead
    from valvereader.model.card import ModelCard
    from valvereader.training.film_head import region_features

    data = region_features(weights, regions)
    head = FilmHead.from_card(ModelCard.load(weights / "identifier.json"))
    return data["logits"] if head is None else head.corrected(data["logits"], data["pooled"])


def summary(logits: np.ndarray, labels: np.ndarray, sizes: np.ndarray) -> dict:
    right = logits.argmax(axis=1) == labels
    result = {"n": len(labels), "named_right": int(right.sum()), "share": round(float(right.mean()), 4)}
    for low, high in SIZES_MM:
        keep = (sizes >= low) & (sizes < high)
        result[f"{low}-{int(high)} mm"] = round(float(right[keep].mean()), 4) if keep.any() else None
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regions", type=Path, required=True)
    parser.add_argument("--member", type=Path, required=True, help="a fine-tuned member's run folder (model.json, model.safetensors)")
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--crops-split", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="where the validation crops' JPEG copies go (default: beside --member)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    from safetensors.torch import load_file

    from valvereader.inference.cards import softmax
    from valvereader.training.film_finetune import prepare_real, shipped_members

    run = json.loads((args.member / "model.json").read_text(encoding="utf-8"))
    size, arch = int(run["input_size"]), run["arch"]
    card, states = shipped_members(args.weights)
    classes = list(card["class_ids"])
    index = [int(m["input_size"]) for m in card["members"]].index(size)
    tuned = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(args.member / "model.safetensors")).items()}
    meta = json.loads((args.regions / "film_regions.json").read_text(encoding="utf-8"))
    true_box = np.asarray(meta["variant"]) == 0
    labels = np.asarray(meta["label"])[true_box]
    sizes = np.asarray(meta.get("valve_mm", [0.0] * len(true_box)), float)[true_box]
    regions = np.load(args.regions / f"film_regions_{size}.npy")[true_box]
    read = {"shipped": shipped_logits(args.weights, args.regions)[true_box],
            "shipped_member": member_logits(states[index], arch, len(classes), regions),
            "member": member_logits(tuned, arch, len(classes), regions)}
    # the shipped identifier and the member joined: the mean of their probabilities
    read["shipped_and_member"] = np.log((softmax(read["shipped"]) + softmax(read["member"])) / 2)
    result = {"regions": str(args.regions), "member": str(args.member),
              "true_box": {name: summary(logits, labels, sizes) for name, logits in read.items()}}
    if args.crops_split is not None:
        work = args.work or args.member.parent
        crop_labels = prepare_real(args.crops_split, work, [size], classes, part="validation")
        crops = np.load(work / f"real_validation_{size}.npy")
        result["validation_crops"] = {
            "shipped_member": summary(member_logits(states[index], arch, len(classes), crops), crop_labels, np.zeros(len(crops))),
            "member": summary(member_logits(tuned, arch, len(classes), crops), crop_labels, np.zeros(len(crops)))}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
        np.savez(args.out.with_suffix(".npz"), labels=labels, sizes=sizes, **read)
    return 0


if __name__ == "__main__":
    sys.exit(main())
