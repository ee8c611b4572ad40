"""A second look at the attended part of a film's located square (docs/evaluation/pipelines.md,
"Films made by pasting a crop whole"): validation films only, a diagnostic.

    python scripts/attended_second_look.py COMPOSITES_CSV PASTED_CSV OUT.json

COMPOSITES_CSV: a ground-truth CSV of `valvereader phantoms` (composites and phantoms, with pixel
spacing); PASTED_CSV: scripts/paste_films.py's skull/ground_truth.csv. Prints, per rule, the
films read right by kind.
"""
import sys, json, csv
from pathlib import Path
import numpy as np
from valvereader.predict import load_predictor, _Prepare
from valvereader.explain import class_activation_map, attention_box
from valvereader.io import load
p = load_predictor(device="cpu")
ids = list(p.valve_ids)
items = []
gt = list(csv.DictReader(open(sys.argv[1])))
items += [(Path(sys.argv[1]).parent / r["file"], r["valve_id"], r["kind"]) for r in gt if r["kind"] in ("composite", "phantom") and r["valve_id"] in ids]
pf = list(csv.DictReader(open(sys.argv[2])))
items += [(Path(sys.argv[2]).parent / r["file"], r["valve_id"], "pasted") for r in pf]
rows = []
for n, (path, label, kind) in enumerate(items):
    r = load(path); prep = _Prepare(r)
    located = p.locate(r, prep)
    views = p.views(r.shape, located, r.meta.pixel_spacing)
    assert len(views) == 1
    region = views[0]
    if region is None:
        rows.append({"kind": kind, "label": label, "first": None}); continue
    pv = prep(p._identify, region)
    o = p._identifier.run(pv.pixels[None, None])
    lg = o["logits"].astype(np.float64); k = int(np.argmax(lg[0]))
    cam = class_activation_map(o["features"][0], p._classifier_weights[k])
    att = attention_box(cam, pv.crop)
    batch, names = [], []
    for s in (1.0, 1.5):
        reg2 = att.square(s, minimum=32).clip(r.shape)
        batch.append(prep(p._identify, reg2).pixels); names.append(f"att{s:g}")
    o2 = p._identifier.run(np.stack(batch)[:, None])
    L = np.concatenate([lg, o2["logits"].astype(np.float64)])
    F = np.concatenate([o["features"].mean(axis=(2, 3)), o2["features"].mean(axis=(2, 3))])
    S = p._view_scorer(L, F)
    rows.append({"kind": kind, "label": label, "views": ["first"] + names, "pred": [ids[int(np.argmax(x))] for x in L], "score": S.tolist()})
    if n % 100 == 0: print(n, len(items), file=sys.stderr, flush=True)
json.dump(rows, open(sys.argv[3], "w"))
def rule(row, name, margin):
    if row.get("views") is None: return None
    P = dict(zip(row["views"], row["pred"])); S = dict(zip(row["views"], row["score"]))
    if name == "first": return P["first"]
    if margin is None: return P[name]
    return P["first"] if S["first"] - margin <= S[name] else P[name]
for name, margin in [("first", None), ("att1", None), ("att1.5", None), ("att1", 0), ("att1", 10), ("att1.5", 0), ("att1.5", 10)]:
    out = {}
    for kind in ("composite", "pasted", "phantom"):
        sel = [r for r in rows if r["kind"] == kind]
        out[kind] = sum(rule(r, name, margin) == r["label"] for r in sel), len(sel)
    print(name, margin, out)
