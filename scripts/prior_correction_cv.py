"""Logit adjustment (a prior correction) on the CV's out-of-fold logits of 2.0.0's recipe.

    python scripts/prior_correction_cv.py

softmax(logits / T + tau * log(pi)), pi the class shares of each fold's training crops, for the
candidate taus of docs/training.md, "A prior correction for the rare valves". Needs the GPU
sessions' cv_predictions.npz (runs/gpu_session3, runs/gpu_session5; not committed).
"""
import numpy as np
from sklearn.metrics import f1_score, recall_score, accuracy_score
T = 0.478
sess = [np.load(f"runs/gpu_session{s}/cv_predictions.npz") for s in (3, 5)]
labels = np.full(1556, -1)
for k in range(5):
    labels[sess[0][f"cv{k}_index"]] = sess[0][f"cv{k}_true"]
assert (labels >= 0).all()
for tau in (0, 0.25, 0.5, 0.75, 1.0):
    accs, f1s, recs = [], [], []
    for k in range(5):
        idx = sess[0][f"cv{k}_index"]
        assert all(np.array_equal(s[f"cv{k}_index"], idx) for s in sess)
        logits = np.mean([s[f"cv{k}_logits"] for s in sess], axis=0)
        train = np.setdiff1d(np.arange(1556), idx)
        pi = np.bincount(labels[train], minlength=8) / len(train)
        z = logits / T + tau * np.log(pi)
        pred = z.argmax(1); true = sess[0][f"cv{k}_true"]
        accs.append(accuracy_score(true, pred)); f1s.append(f1_score(true, pred, average="macro", labels=range(8)))
        recs.append(recall_score(true, pred, average=None, labels=range(8), zero_division=0))
    recs = np.mean(recs, axis=0)
    print(f"tau {tau}: acc {np.mean(accs):.4f} ± {np.std(accs, ddof=1):.4f}  F1 {np.mean(f1s):.4f} ± {np.std(f1s, ddof=1):.4f}  min recall {recs.min():.3f}  recalls {np.round(recs,3)}")
