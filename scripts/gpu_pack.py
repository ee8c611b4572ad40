"""Pack what one GPU session (scripts/gpu_session.py) needs into ``.gpu/`` for the device tool.

The device machine gets the repository but not ../shared, and the whole working tree that
travels is capped at 64 MiB. So the real crops go as JPEG (quality 90, longest side at most
``--max-side`` px: about 25 MB for the 1556 crops), the ImageNet EfficientNet-Lite weights of
``--backbones`` (Lite0 by default) as fp16 safetensors, and the two pure-Python packages that the device image lacks as wheels.

    python scripts/gpu_pack.py [--split runs/identifier/split.json] [--wheels DIR] [--backbones lite0 lite1]
    python scripts/gpu_pack.py --weights-only --backbones lite2   # another backbone, the crops kept

``.gpu/`` must be ignored by git (``.git/info/exclude``) and named in the call's ``carry``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", type=Path, default=ROOT / "runs/identifier/split.json")
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu")
    parser.add_argument("--max-side", type=int, default=448)
    parser.add_argument("--quality", type=int, default=90)
    parser.add_argument("--wheels", type=Path, default=Path("/tmp/whl"))
    parser.add_argument("--backbones", nargs="+", default=["lite0"], choices=["lite0", "lite1", "lite2"],
                        help="ImageNet EfficientNet-Lite weights to carry (fp16: lite0 9 MB, lite1 11 MB, lite2 12 MB)")
    parser.add_argument("--weights-only", action="store_true",
                        help="only (re)write the backbones' weights and the frozen package; keep the crops and wheels")
    args = parser.parse_args()
    rows = _pack_crops(args) if not args.weights_only else list(csv.DictReader((args.out / "crops.csv").open(encoding="utf-8")))
    _pack_weights_and_package(args)
    # The device image lacks these two pure-Python packages; without their wheels a device call
    # fails after its first half minute (eighteenth session).
    from gpu_session import REQUIRED_MODULES, wheels_hint

    carried = {wheel.name.split("-")[0] for wheel in (args.out / "whl").glob("*.whl")}
    missing = [module for module in REQUIRED_MODULES if module not in carried]
    if missing:
        print(f"error: no wheel for {', '.join(missing)} in {args.out / 'whl'}: {wheels_hint(args.wheels)}, then run this again",
              file=sys.stderr)
        return 1
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"{len(rows)} crops; {args.out} holds {total / 2**20:.1f} MiB", file=sys.stderr)
    print(json.dumps({s: int(np.sum([r['split'] == s for r in rows])) for s in ("train", "validation", "test")}))
    return 0


def _pack_crops(args) -> list[dict]:
    doc = json.loads(args.split.read_text(encoding="utf-8"))
    part = {}
    for name, indices in doc["split"].items():
        for i in indices:
            part[int(i)] = name
    crops = args.out / "crops"
    if crops.exists():
        shutil.rmtree(crops)
    rows = []
    for i, (path, label) in enumerate(zip(doc["paths"], doc["labels"])):
        source = (args.split.parent / path) if not Path(path).is_absolute() else Path(path)
        if not source.exists():
            source = ROOT / path
        with Image.open(source) as image:
            grey = image.convert("L")
            w, h = grey.size
            scale = min(1.0, args.max_side / max(w, h))
            if scale < 1.0:
                grey = grey.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
            target = crops / label / (Path(path).stem + ".jpg")
            target.parent.mkdir(parents=True, exist_ok=True)
            grey.save(target, "JPEG", quality=args.quality)
        rows.append({"index": i, "file": f"crops/{label}/{target.name}", "label": label,
                     "split": part.get(i, ""), "source": f"{Path(path).parent.name}/{Path(path).name}",
                     "width": w, "height": h})
    with (args.out / "crops.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    wheels = args.out / "whl"
    wheels.mkdir(exist_ok=True)
    for wheel in sorted(args.wheels.glob("*.whl")):
        shutil.copy2(wheel, wheels / wheel.name)
    return rows


def _pack_weights_and_package(args) -> None:
    # ImageNet EfficientNet-Lite0 weights, fp16 safetensors (read with weights_only=True).
    import torch
    from safetensors.torch import save_file

    from valvereader.model.architectures import lite_weights_path

    for stale in args.out.glob("lite*_imagenet.safetensors"):  # only the backbones asked for travel
        stale.unlink()
    for backbone in args.backbones:
        state = torch.load(lite_weights_path(f"efficientnet_{backbone}"), map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
        save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                  str(args.out / f"{backbone}_imagenet.safetensors"))
    # A frozen copy of the committed package (git archive HEAD), which scripts/gpu_session.py
    # imports in preference to app/, so that edits in progress cannot break a device run. Made
    # afresh here: a copy left from an earlier commit would train with old code.
    frozen = args.out / "app"
    if frozen.exists():
        shutil.rmtree(frozen)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "HEAD", "app"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(args.out, filter="data")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    print(f"frozen package: {frozen} (commit {head})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
