"""Reference for Warden's EVA robustness curve (IC, PGD), in PyTorch itself.

Run with Debian's python3-torch (/usr/bin/python3), which wraps the same
libtorch as the engine Warden links:

  eva_reference.py MODEL.pt IN.json OUT.json
      IN.json: {"x", "shape", "labels", "epsilons", "steps", "threads",
      "reps", "warmup"}. Runs the same steps as worker/analysis's evade
      for IC with PGD on every correctly classified sample: one prediction
      of the data; per ε > 0 a prediction of the clean samples, "steps"
      gradient steps of size 2.5*eps/steps (x <- clip(x0 + clip(x +
      a*sign(grad) - x0, -eps, eps), 0, 1), grad of the mean cross-entropy),
      a prediction of the result; per ε a prediction of the adversarial
      examples the curve counts (a sample fooled at a smaller ε keeps that
      example when the new attack fails). Writes {"curve", "samples",
      "seconds", "cpu_seconds", "torch_version", "threads"}.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def predict(m, x):
    with torch.no_grad():
        return torch.softmax(m(x), -1)


def pgd(m, x0, y, eps, alpha, steps):
    adv = x0.clone()
    for _ in range(steps):
        x = adv.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(m(x), y), [x])
        adv = torch.clamp(x0 + torch.clamp(adv + alpha * torch.sign(g) - x0, -eps, eps), 0, 1)
    return adv


def evade(m, x, y, epsilons, steps):
    right = predict(m, x).argmax(-1) == y
    x0, y0 = x[right], y[right]
    best = x0.clone()
    fooled = torch.zeros(len(y0), dtype=torch.bool)
    curve = []
    for eps in epsilons:
        if eps > 0:
            predict(m, x0)
            adv = pgd(m, x0, y0, eps, 2.5 * eps / steps, steps)
            ok = predict(m, adv).argmax(-1) != y0
            take = ok | ~fooled
            best[take] = adv[take]
        fooled = predict(m, best).argmax(-1) != y0
        curve.append(fooled.float().mean().item())
    return curve, len(y0)


def main():
    model, inp, out = sys.argv[1:4]
    with open(inp) as f:
        cfg = json.load(f)
    torch.set_num_threads(int(cfg["threads"]))
    m = torch.jit.load(model)
    m.eval()
    x = torch.tensor(cfg["x"], dtype=torch.float32).reshape(cfg["shape"])
    y = torch.tensor(cfg["labels"], dtype=torch.int64)
    run = lambda: evade(m, x, y, cfg["epsilons"], cfg["steps"])
    for _ in range(cfg.get("warmup", 2)):
        run()
    ts, cpu = [], []
    for _ in range(cfg["reps"]):
        t0, c0 = time.perf_counter(), time.process_time()
        curve, n = run()
        ts.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    with open(out, "w") as f:
        json.dump({"curve": curve, "samples": n, "seconds": ts, "cpu_seconds": cpu,
                   "torch_version": torch.__version__, "threads": torch.get_num_threads()}, f)


if __name__ == "__main__":
    main()
