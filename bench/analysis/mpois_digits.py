"""Model poisoning (Neural Cleanse trigger reverse engineering) in
python3-torch: the same steps as Warden's worker/analysis poisoning (IC),
for bench/analysis.sh (TestBenchMPois).

Reads a JSON file: the model and the two clean references (TorchScript),
the images [N, C, H, W] flattened, labels, the optimisation and held-out
sample indices Warden drew, the steps, threads and repetitions. Per class
c: the other classes' optimisation samples; a mask sigmoid(a) [H, W] and a
pattern sigmoid(b) [C, H, W], a = b = 0; Adam (lr 0.1, betas 0.5, 0.9);
step s uses the batch of 32 samples others[(s*32 + j) mod n]; loss = mean
cross-entropy towards c of (1 - m)*x + m*p plus cost * sum(m), cost 1e-3;
every 10 steps (and after the last) the success on all those samples is
measured: cost * 1.5 when >= 0.99 (the mask kept when the smallest so
far), cost / 1.5**1.5 otherwise. Then the accuracies on the held-out
samples and, per class, the held-out success of the kept trigger on the
model and both references. Prints one JSON line: seconds per repetition,
mask L1 norms, anomaly indices, suspected target.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


def reverse(model, X, idx, c, steps, C, H, W):
    a = torch.zeros(H * W, requires_grad=True)
    b = torch.zeros(C * H * W, requires_grad=True)
    opt = torch.optim.Adam([a, b], lr=0.1, betas=(0.5, 0.9))
    cost = 1e-3
    bs = min(32, len(idx))
    n = len(idx)
    target = torch.full((bs,), c, dtype=torch.long)
    Xo = X[idx]
    best, best_mp, last_mp = math.inf, None, None
    for step in range(steps):
        rows = torch.tensor([(step * bs + j) % n for j in range(bs)])
        m = torch.sigmoid(a).view(1, 1, H, W)
        p = torch.sigmoid(b).view(1, C, H, W)
        xs = (1 - m) * Xo[rows] + m * p
        loss = F.cross_entropy(model(xs), target) + cost * m.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 10 != 0 and step + 1 != steps:
            continue
        with torch.no_grad():
            m = torch.sigmoid(a).view(1, 1, H, W)
            p = torch.sigmoid(b).view(1, C, H, W)
            succ = (model((1 - m) * Xo + m * p).argmax(1) == c).float().mean().item()
            l1 = m.sum().item()
            last_mp = (m.clone(), p.clone(), l1)
            if succ >= 0.99 and l1 < best:
                best, best_mp = l1, last_mp
            cost = cost * 1.5 if succ >= 0.99 else cost / 1.5 ** 1.5
    return best_mp if best_mp is not None else last_mp


def main():
    cfg = json.load(open(sys.argv[1]))
    torch.set_num_threads(cfg["threads"])
    N, C, H, W = cfg["shape"]
    X = torch.tensor(cfg["x"], dtype=torch.float32).view(N, C, H, W)
    y = torch.tensor(cfg["labels"])
    models = [torch.jit.load(p) for p in cfg["models"]]
    for m in models:
        m.eval()
    opt_idx, held_idx = cfg["opt"], cfg["held"]
    K = cfg["classes"]
    times, norms = [], []
    for _ in range(cfg["reps"]):
        start = time.perf_counter()
        Xh, yh = X[held_idx], y[held_idx]
        with torch.no_grad():
            accs = [(m(Xh).argmax(1) == yh).float().mean().item() for m in models]
        norms, dis = [], []
        for c in range(K):
            idx = [i for i in opt_idx if cfg["labels"][i] != c] or list(opt_idx)
            m, p, l1 = reverse(models[0], X, idx, c, cfg["steps"], C, H, W)
            norms.append(l1)
            hidx = [i for i in held_idx if cfg["labels"][i] != c] or list(held_idx)
            with torch.no_grad():
                st = (1 - m) * X[hidx] + m * p
                hits = [m_(st).argmax(1) == c for m_ in models]
                alone = hits[0] & ~hits[1] & ~hits[2]
                dis.append(alone.float().mean().item())
        times.append(time.perf_counter() - start)
    med = sorted(norms)[K // 2] if K % 2 else sum(sorted(norms)[K // 2 - 1:K // 2 + 1]) / 2
    devs = sorted(abs(v - med) for v in norms)
    mad = 1.4826 * (devs[K // 2] if K % 2 else (devs[K // 2 - 1] + devs[K // 2]) / 2)
    index = [abs(v - med) / mad if mad > 0 else 0 for v in norms]
    below = [c for c in range(K) if norms[c] < med and index[c] > 2]
    target = max(below, key=lambda c: index[c]) if below else -1
    print(json.dumps({"seconds": times, "norms": norms, "index": index, "target": target, "disagreement": dis,
                      "accuracies": accs, "threads": torch.get_num_threads(), "torch_version": torch.__version__}))


if __name__ == "__main__":
    main()
