"""Unseen-valve AUROC with a partly fine-tuned backbone that never saw the held-out valve.

An honest leave-one-class-out estimate between the two in docs/training.md:
- frozen ImageNet features (0.68): the backbone never saw a valve;
- the shipped model's features (0.97): the backbone saw every class, which is optimistic.

For each valve type c, the ImageNet EfficientNet-Lite0 keeps its stem and blocks 0–10 frozen.
Their output for every crop (and its mirror image) is computed once and cached. Blocks 11–15,
the head and a new 7-class classifier are then fine-tuned on the train-split crops of the
other 7 classes. The Mahalanobis score (the shipped open-set method) is fitted on those
crops' pooled features. It is measured as the AUROC of the test-split crops of the 7 known
classes against every crop of class c. A run on all 8 classes gives the test accuracy of the
same recipe, as a sanity check.

    python scripts/loco_partial.py [--epochs 8] [--out docs/evaluation/loco_partial.json]

CPU only; about 10-15 min on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
SPLIT_AT = 11  # blocks before this index stay frozen (stride-16 output, 112 channels)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/evaluation/loco_partial.json")
    parser.add_argument("--cache", type=Path, default=ROOT / "runs/loco_partial_cache.npz")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs/loco_partial_runs.npz", help="per-run pooled features and logits")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    from valvereader.catalogue import VALVE_IDS
    from valvereader.model.architectures import build_model
    from valvereader.preprocess import Preprocess
    from valvereader.training.datasets import prepare_all, read_samples
    from valvereader.training.openset import (
        auroc,
        energy_score,
        fit_mahalanobis,
        knn_distances,
        max_softmax_score,
        standardised,
    )
    from valvereader.training.train import inverse_frequency_weights

    began = time.time()
    doc = json.loads(args.split.read_text(encoding="utf-8"))
    samples = [s for source in doc["sources"] for s in read_samples(source)]
    labels = np.array([VALVE_IDS.index(s.label) for s in samples])
    train = np.asarray(doc["split"]["train"])
    test = np.asarray(doc["split"]["test"])
    base = build_model("efficientnet_lite0", len(VALVE_IDS), pretrained=True).eval()
    net = base.backbone.net

    def lower(x: torch.Tensor) -> torch.Tensor:
        x = (x.expand(-1, 3, -1, -1) - base.mean) / base.std
        x = net._swish(net._bn0(net._conv_stem(x)))
        for block in net._blocks[:SPLIT_AT]:
            x = block(x, drop_connect_rate=0.0)
        return x

    if args.cache.exists():
        with np.load(args.cache) as saved:
            cached = saved["features"]
    else:
        images = np.asarray(prepare_all(samples, Preprocess(args.size, 0.02, True), ROOT / "runs/cache"))
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 32):
                x = torch.from_numpy(images[start:start + 32].astype(np.float32)).unsqueeze(1)
                out.append(np.stack([lower(x).numpy(), lower(torch.flip(x, dims=[3])).numpy()], 1).astype(np.float16))
        cached = np.concatenate(out)  # (N, 2 views, C, h, w)
        np.savez(args.cache, features=cached)
    print(f"cached lower features {cached.shape} in {time.time() - began:.0f} s", file=sys.stderr, flush=True)

    def run(known: list[int]) -> tuple[np.ndarray, np.ndarray, nn.Module]:
        """Fine-tune the upper part on train-split crops of ``known``; pooled features + logits of all crops."""
        import copy

        upper_blocks = copy.deepcopy(net._blocks[SPLIT_AT:])
        head = nn.Sequential(copy.deepcopy(net._conv_head), copy.deepcopy(net._bn1))
        classifier = nn.Linear(base.num_features, len(known))
        params = list(upper_blocks.parameters()) + list(head.parameters()) + list(classifier.parameters())
        index = {c: i for i, c in enumerate(known)}
        rows = np.array([i for i in train if labels[i] in index])
        y_all = np.array([index.get(int(c), -1) for c in labels])
        criterion = nn.CrossEntropyLoss(weight=inverse_frequency_weights(y_all[rows], len(known)), label_smoothing=0.05)
        optimizer = torch.optim.Adam(params, lr=args.lr, weight_decay=1e-4)
        steps = args.epochs * int(np.ceil(len(rows) / 64))
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.2)
        rng = np.random.default_rng(0)

        def upper(x: torch.Tensor) -> torch.Tensor:
            for block in upper_blocks:
                x = block(x, drop_connect_rate=0.0)
            return net._swish(head(x))

        for _ in range(args.epochs):
            upper_blocks.train(), head.train()
            order = rows[rng.permutation(len(rows))]
            for start in range(0, len(order), 64):
                idx = np.sort(order[start:start + 64])
                view = rng.integers(0, 2, len(idx))
                x = torch.from_numpy(cached[idx, view].astype(np.float32))
                logits = classifier(upper(x).mean((2, 3)))
                loss = criterion(logits, torch.from_numpy(y_all[idx]))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                scheduler.step()
        upper_blocks.eval(), head.eval()
        pooled, logits = [], []
        with torch.no_grad():
            for start in range(0, len(cached), 64):
                f = upper(torch.from_numpy(cached[start:start + 64, 0].astype(np.float32))).mean((2, 3))
                pooled.append(f.numpy())
                logits.append(classifier(f).numpy())
        return np.concatenate(pooled), np.concatenate(logits), classifier

    result: dict = {"protocol": __doc__.split("\n\n")[1].replace("\n", " "), "epochs": args.epochs, "lr": args.lr,
                    "input_size": args.size, "frozen_blocks": f"stem + blocks 0-{SPLIT_AT - 1}", "per_class": {}}
    def candidate_scores(pooled, logits, fit_rows, labels, known) -> dict[str, np.ndarray]:
        """Every open-set score tried (higher = stranger), all fitted on the known classes'
        train-split crops only. The candidates were fixed before the run."""
        out = {}
        for normalise in ("none", "l2"):
            stats = fit_mahalanobis(pooled[fit_rows], labels[fit_rows], known, normalise=normalise)
            out[f"mahalanobis_{normalise}"] = stats.score(pooled)
        out["max_softmax"] = max_softmax_score(logits)
        out["energy"] = energy_score(logits)
        for k, distance in knn_distances(pooled, fit_rows, (1, 5, 20)).items():
            out[f"knn{k}"] = distance
        # Sum of the two best-known families, each standardised on the training crops' scores.
        out["mahalanobis_l2+knn5"] = standardised(out["mahalanobis_l2"], fit_rows) + standardised(out["knn5"], fit_rows)
        return out

    runs: dict[str, dict[str, np.ndarray]] = {}
    pooled, logits, _ = run(list(range(len(VALVE_IDS))))
    result["all_classes_test_accuracy"] = float(np.mean(logits[test].argmax(1) == labels[test]))
    print(f"all 8 classes: test accuracy {result['all_classes_test_accuracy']:.3f} ({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    for c in range(len(VALVE_IDS)):
        known = [k for k in range(len(VALVE_IDS)) if k != c]
        pooled, logits, _ = run(known)
        fit_rows = np.array([i for i in train if labels[i] != c])
        known_test = np.array([i for i in test if labels[i] != c])
        unknown = np.flatnonzero(labels == c)
        entry = {"unknown_images": int(len(unknown)), "known_test_images": int(len(known_test))}
        runs[VALVE_IDS[c]] = {"pooled": pooled.astype(np.float16), "logits": logits.astype(np.float32)}
        scores = candidate_scores(pooled, logits, fit_rows, labels, known)
        for name, score in scores.items():
            entry[name] = auroc(score[known_test], score[unknown])
        result["per_class"][VALVE_IDS[c]] = entry
        print(f"{VALVE_IDS[c]}: {json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in entry.items()})} "
              f"({time.time() - began:.0f} s)", file=sys.stderr, flush=True)
    np.savez_compressed(args.runs, **{f"{k}__{a}": v for k, d in runs.items() for a, v in d.items()})
    for key in next(iter(result["per_class"].values())):
        if key.endswith("_images"):
            continue
        values = [e[key] for e in result["per_class"].values()]
        result[f"mean_{key}"] = float(np.mean(values))
        result[f"sd_{key}"] = float(np.std(values, ddof=1))
    result["seconds"] = round(time.time() - began, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k.startswith(("mean", "sd", "all"))}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
