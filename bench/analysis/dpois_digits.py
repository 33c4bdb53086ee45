"""Data poisoning on the digits CNN in python3-torch: the same steps as
Warden's worker/analysis dpoison (IC), for bench/analysis.sh.

Reads the victim (a TorchScript CNN exported by Warden's torch.Fit:
conv{i}_weight/bias 3x3 padding 1 -> relu -> 2x2 max-pool, then flatten and
out_weight/bias), the digits (raw float32 [N,1,8,8]) and their labels (raw
int32), then: the penultimate activations (the flattened input of the last
linear layer) in chunks of 512; per class with at least 20 rows, z-scores
(constant columns dropped), whitened principal components (one per 20 rows,
2 to 10), 2-means (10 k-means++ starts, Lloyd to convergence, least
inertia) on the first 2, 3, 5, 10 of them keeping the most separated small
split, the small cluster's share, silhouette, Fisher ratio, spectral
signature (squared projection on the top right singular vector of the
centred activations, over the class mean); for a small split (>= 5 rows,
<= 35 %) the exclusionary reclassification vote (5 nearest rows outside
the cluster in pixel space, ties to the own label); flagged when Fisher
ratio >= 10 and >= 80 % go to one other class; suspects ranked by spectral
score. All in float64 as Warden does. Prints one JSON line: seconds per
repetition, flagged classes, suspected rows.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def features(m, x):
    h = x
    i = 0
    while hasattr(m, "conv%d_weight" % i):
        w, b = getattr(m, "conv%d_weight" % i), getattr(m, "conv%d_bias" % i)
        h = F.max_pool2d(torch.relu(F.conv2d(h, w, b, padding=1)), 2)
        i += 1
    return torch.flatten(h, 1)


def kmeans2(w, restarts, g):
    n = w.shape[0]
    best, best_in = None, math.inf
    for _ in range(restarts):
        c0 = w[torch.randint(n, (1,), generator=g)][0]
        d = ((w - c0) ** 2).sum(1)
        if d.sum() == 0:
            continue
        c1 = w[torch.multinomial(d, 1, generator=g)][0]
        c = torch.stack([c0, c1])
        assign = None
        for _ in range(300):
            dist = torch.cdist(w, c) ** 2
            inertia, new = dist.min(1)
            if assign is not None and torch.equal(new, assign):
                break
            assign = new
            for k in range(2):
                m = assign == k
                if m.any():
                    c[k] = w[m].mean(0)
                else:
                    c[k] = w[((w - c[1 - k]) ** 2).sum(1).argmax()]
        tot = float(inertia.sum())
        if tot < best_in:
            best, best_in = assign.clone(), tot
    return best


def silhouette(w, a):
    d = torch.cdist(w, w)
    cnt = torch.bincount(a, minlength=2).double()
    s = 0.0
    for k in range(2):
        own, other = d[a == k][:, a == k], d[a == k][:, a != k]
        if cnt[k] <= 1:
            continue
        ai = own.sum(1) / (cnt[k] - 1)
        bi = other.mean(1)
        s += float(((bi - ai) / torch.maximum(ai, bi).clamp_min(1e-300)).sum())
    return s / w.shape[0]


def fisher(w, a):
    m0, m1 = w[a == 0].mean(0), w[a == 1].mean(0)
    u = (m1 - m0) / (m1 - m0).norm()
    p0, p1 = w[a == 0] @ u, w[a == 1] @ u
    within = p0.var(unbiased=False) + p1.var(unbiased=False)
    return float((p1.mean() - p0.mean()) ** 2 / within)


def analyse(m, X, Y):
    with torch.no_grad():
        acts = torch.cat([features(m, X[s:s + 512]) for s in range(0, len(X), 512)]).double()
    flat = X.reshape(len(X), -1).double()
    g = torch.Generator().manual_seed(1)
    flagged, suspects = [], []
    for c in range(int(Y.max()) + 1):
        idx = (Y == c).nonzero().flatten()
        n = len(idx)
        if n < 20:
            continue
        A = acts[idx]
        sd = A.std(0, unbiased=False)
        keep = (sd > 0) & (sd > 1e-8 * sd.max())
        Z = (A[:, keep] - A[:, keep].mean(0)) / sd[keep]
        k = min(10, max(2, n // 20), Z.shape[1], n - 1)
        _, S, Vh = torch.linalg.svd(Z, full_matrices=False)
        Wall = (Z @ Vh[:k].T) / (S[:k] / math.sqrt(n - 1))
        best = None
        for d in [d for d in (2, 3, 5, 10) if d < k] + [k]:
            W = Wall[:, :d]
            a = kmeans2(W, 10, g)
            small = 1 if int(a.sum()) <= n - int(a.sum()) else 0
            sn = int((a == small).sum())
            is_small = sn >= 5 and sn / n <= 0.35
            fis = fisher(W, a)
            if best is None or (is_small and not best[0]) or (is_small and best[0] and fis > best[1]) or (not is_small and not best[0]):
                best = (is_small, fis, W, a, small, sn)
        _, fis, W, a, small, sn = best
        frac = sn / n
        silhouette(W, a)
        C = A - A.mean(0)
        _, _, vh = torch.linalg.svd(C, full_matrices=False)
        spec = (C @ vh[0]) ** 2
        spec = spec / spec.mean()
        if sn < 5 or frac > 0.35:
            continue
        rows = idx[a == small]
        mask = torch.ones(len(X), dtype=torch.bool)
        mask[rows] = False
        ref = mask.nonzero().flatten()
        nn_ = torch.cdist(flat[rows], flat[ref]).topk(5, largest=False).indices
        votes = Y[ref][nn_]
        counts = F.one_hot(votes, int(Y.max()) + 1).sum(1)
        top, arg = counts.max(1)
        win = torch.where(top > counts[:, c], arg, torch.full_like(arg, c))
        to = torch.bincount(win[win != c], minlength=int(Y.max()) + 1)
        if fis >= 10 and len(rows) > 0 and float(to.max()) / len(rows) >= 0.8:
            flagged.append(c)
            suspects += [(float(spec[i]), int(idx[i])) for i in range(n) if a[i] == small]
    suspects.sort(reverse=True)
    return flagged, suspects


def main():
    model_path, x_path, y_path, n, threads, reps = sys.argv[1:7]
    n, threads, reps = int(n), int(threads), int(reps)
    torch.set_num_threads(threads)
    X = torch.from_file(x_path, dtype=torch.float32, size=n * 64).view(n, 1, 8, 8)
    Y = torch.from_file(y_path, dtype=torch.int32, size=n).long()
    m = torch.jit.load(model_path).eval()
    analyse(m, X, Y)  # warm-up
    secs = []
    for _ in range(reps):
        start = time.perf_counter()
        flagged, suspects = analyse(m, X, Y)
        secs.append(time.perf_counter() - start)
    print(json.dumps({"seconds": secs, "flagged": flagged, "suspected": len(suspects),
                      "threads": torch.get_num_threads(), "torch_version": torch.__version__}))


if __name__ == "__main__":
    main()
