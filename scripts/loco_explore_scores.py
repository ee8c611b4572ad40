"""Other unknown-valve scores on the joined leave-one-class-out features (ninth session; a
negative result, kept so it can be re-run): class-conditional Mahalanobis with a fixed
shrinkage, relative Mahalanobis (Ren et al. 2021: minus the distance to one Gaussian of all
training features) and k-nearest-neighbour cosine similarity, for each member and joined.
Mean AUROC over the eight held-out valves on the selection half (v_real) and the test half
(t_real). Features as returned by scripts/gpu_session.py (runs/ is not committed).

    python scripts/loco_explore_scores.py runs/gpu_session8_320 runs/gpu_session8_384
"""
import sys, numpy as np
sys.path.insert(0, str(__import__('pathlib').Path(__file__).parent))
from loco_join import read_session
from valvereader.training.openset import auroc
A = read_session(sys.argv[1]); B = read_session(sys.argv[2])
def l2(x): x = x.astype(np.float64); return x / np.linalg.norm(x, axis=1, keepdims=True)
def feats(run, key, which):
    parts = [r[run][f"{key}_features"] for r in which]
    return np.concatenate([l2(p) for p in parts], 1) if len(parts) > 1 else l2(parts[0])
def fit(X, y, shrink=1e-6):
    cls = np.unique(y); means = np.stack([X[y == c].mean(0) for c in cls])
    R = X - means[np.searchsorted(cls, y)]
    cov = R.T @ R / len(X); cov += shrink * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    P = np.linalg.inv(cov)
    mu0 = X.mean(0); R0 = X - mu0; cov0 = R0.T @ R0 / len(X); cov0 += shrink * np.trace(cov0)/cov0.shape[0]*np.eye(cov0.shape[0])
    return means, P, mu0, np.linalg.inv(cov0)
def md(Z, means, P):
    d = np.stack([(((Z - m) @ P) * (Z - m)).sum(1) for m in means], 1)
    return d
def scores(Xf, yf, Z, shrink):
    means, P, mu0, P0 = fit(Xf, yf, shrink)
    d = md(Z, means, P); d0 = (((Z - mu0) @ P0) * (Z - mu0)).sum(1)
    out = {'maha': d.min(1), 'rel_maha': (d - d0[:, None]).min(1)}
    # kNN cosine
    S = Z @ Xf.T  # cosine similarities: both sides are L2-normalised
    nn = np.sort(-S, 1)
    for k in (1, 5, 10): out[f'knn{k}'] = nn[:, k - 1]
    return out
res = {}
for which_name, which in (('320', [A]), ('384', [B]), ('joined', [A, B])):
    for shrink in (0.05, 0.3):
        print(which_name, shrink, flush=True)
        for half in ('v', 't'):
            per = {}
            for run in sorted(A, key=lambda n: int(n[4:])):
                Xf = feats(run, 'fit_real', which); yf = which[0][run]['fit_real_labels']
                kk = feats(run, f'known_{half}_real', which); uu = feats(run, f'unknown_{half}_real', which)
                both = scores(Xf, yf, np.concatenate([kk, uu]), shrink)
                sk = {s: v[:len(kk)] for s, v in both.items()}; su = {s: v[len(kk):] for s, v in both.items()}
                for s in sk: per.setdefault(s, []).append(auroc(sk[s], su[s]))
            for s, v in per.items():
                res[(which_name, shrink, half, s)] = (np.mean(v), np.round(v, 2))
for k, v in sorted(res.items()):
    if k[2] == 'v':
        t = res[(k[0], k[1], 't', k[3])]
        print(k[0], k[1], k[3], f"sel {v[0]:.3f}  test {t[0]:.3f}", t[1])
