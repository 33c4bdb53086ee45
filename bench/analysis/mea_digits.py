"""MEA on the digits CNN in python3-torch: the same steps as Warden's
worker/analysis extract (IC), for bench/analysis.sh.

Reads the victim (TorchScript) and the 1,797 digits (raw float32
[N,1,8,8]), then: a seeded 70/30 split (held-out at most 1000), the
budget's queries (pool first, then alternately a mixup of two pool samples
with lambda in [0.2, 0.8] and a noisy copy, sigma 0.1 of the range,
clipped), the victim's softmax answers in batches of 256, the held-out
answers, and per curve point a surrogate CNN (conv 3x3 16 -> relu -> pool
-> conv 3x3 32 -> relu -> pool -> linear 10; PyTorch's default init) trained
with Adam (lr 3e-3, batch 32, soft cross-entropy, epochs
clamp(ceil(500 / ceil(n/32)), 15, 60)), saved as TorchScript, loaded again
and scored on the held-out set (agreement with the victim's argmax).
Prints one JSON line: seconds and fidelity per point.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv1 = nn.Conv2d(16, 32, 3, padding=1)
        self.out = nn.Linear(32 * 2 * 2, 10)

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.conv0(x)), 2)
        h = F.max_pool2d(torch.relu(self.conv1(h)), 2)
        return self.out(torch.flatten(h, 1))


def epochs_for(n):
    per = (n + 31) // 32
    return min(60, max(15, (500 + per - 1) // per))


def main():
    victim_path, x_path, threads, budget, scratch = sys.argv[1:6]
    threads, budget = int(threads), int(budget)
    torch.set_num_threads(threads)
    seed = 1
    X = torch.from_file(x_path, dtype=torch.float32, size=(1797 * 64)).view(-1, 1, 8, 8)
    start = time.perf_counter()
    victim = torch.jit.load(victim_path).eval()
    g = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    perm = torch.randperm(n, generator=g)
    n_eval = min(1000, max(1, int(0.3 * n)))
    ev, pool = perm[:n_eval], perm[n_eval:]
    q = X[pool[:budget]]
    extra = budget - len(pool)
    synth = []
    lo, hi = float(X.min()), float(X.max())
    for i in range(max(0, extra)):
        a = X[pool[torch.randint(len(pool), (1,), generator=g)]][0]
        if i % 2 == 0:
            b = X[pool[torch.randint(len(pool), (1,), generator=g)]][0]
            lam = 0.2 + 0.6 * torch.rand(1, generator=g).item()
            synth.append(lam * a + (1 - lam) * b)
        else:
            noise = torch.randn(a.shape, generator=g) * 0.1 * (hi - lo)
            synth.append((a + noise).clamp(lo, hi))
    if synth:
        q = torch.cat([q, torch.stack(synth)])

    def ask(x):
        out = []
        with torch.no_grad():
            for s in range(0, len(x), 256):
                out.append(torch.softmax(victim(x[s:s + 256]), -1))
        return torch.cat(out)

    answers = ask(q)
    xe = X[ev]
    victim_eval = ask(xe).argmax(-1)
    points = [int(f * budget) for f in (0.05, 0.1, 0.25, 0.5, 0.75, 1)]
    fid = []
    for k in points:
        torch.manual_seed(seed)
        model = CNN()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xs, ts = q[:k], answers[:k]
        for _ in range(epochs_for(k)):
            order = torch.randperm(k, generator=g)
            for s in range(0, k, 32):
                idx = order[s:s + 32]
                loss = -(ts[idx] * F.log_softmax(model(xs[idx]), -1)).sum(1).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        path = f"{scratch}/surrogate-{k}.pt"
        torch.jit.save(torch.jit.script(model.eval()), path)
        m = torch.jit.load(path)
        with torch.no_grad():
            pred = torch.cat([m(xe[s:s + 256]) for s in range(0, len(xe), 256)]).argmax(-1)
        fid.append(float((pred == victim_eval).float().mean()))
    print(json.dumps({"seconds": time.perf_counter() - start, "points": points, "fidelity": fid, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
