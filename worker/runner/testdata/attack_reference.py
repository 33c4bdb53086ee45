"""Independent reference for Warden's white-box attacks, in PyTorch itself.

Run with Debian's python3-torch (/usr/bin/python3), which wraps the same
libtorch 1.13.1 as Debian's libtorch-dev that Warden's engine links:

  attack_reference.py attack MODEL.pt IN.json OUT.json
      FGSM and PGD (L-inf, no random start) on the batch in IN.json:
      {"x", "shape", "labels", "clip": [lo, hi], "threads",
       "fgsm": {"eps"}, "pgd": {"eps", "alpha", "steps"}}
      writes {"fgsm": [...], "pgd": [...], "torch_version"}.
  attack_reference.py bench MODEL.pt IN.json OUT.json
      times the same steps as Warden's worker (clean prediction, gradient
      steps, prediction of the result) "reps" times after "warmup" runs
      with torch.set_num_threads("threads"); writes per-run wall and
      process CPU seconds.

Each step is x <- clip(x0 + clip(x + a*sign(grad) - x0, -eps, eps), lo, hi)
with grad the gradient of F.cross_entropy (mean over the batch) w.r.t. x,
computed in float32 exactly as attacks.FGSM/attacks.PGD order the
operations (FGSM: clip(x + eps*sign(grad), lo, hi)).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F


def grad_of(m, x, y):
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(m(x), y)
    (g,) = torch.autograd.grad(loss, [x])
    return g


def fgsm(m, x, y, eps, lo, hi):
    g = grad_of(m, x, y)
    return torch.clamp(x + eps * torch.sign(g), lo, hi)


def pgd(m, x0, y, eps, alpha, steps, lo, hi):
    adv = x0.clone()
    for _ in range(steps):
        g = grad_of(m, adv, y)
        adv = adv + alpha * torch.sign(g)
        adv = torch.clamp(x0 + torch.clamp(adv - x0, -eps, eps), lo, hi)
    return adv


def predict(m, x):
    with torch.no_grad():
        return torch.softmax(m(x), -1).argmax(-1)


def main():
    mode, model, inp, out = sys.argv[1:5]
    with open(inp) as f:
        cfg = json.load(f)
    torch.set_num_threads(int(cfg.get("threads", 1)))
    m = torch.jit.load(model)
    m.eval()
    x = torch.tensor(cfg["x"], dtype=torch.float32).reshape(cfg["shape"])
    y = torch.tensor(cfg["labels"], dtype=torch.int64)
    lo, hi = cfg["clip"]
    fp, pp = cfg["fgsm"], cfg["pgd"]
    res = {"torch_version": torch.__version__, "threads": torch.get_num_threads()}
    if mode == "attack":
        res["fgsm"] = fgsm(m, x, y, fp["eps"], lo, hi).flatten().tolist()
        res["pgd"] = pgd(m, x, y, pp["eps"], pp["alpha"], pp["steps"], lo, hi).flatten().tolist()
    elif mode == "bench":
        def run_fgsm():
            predict(m, x)
            adv = fgsm(m, x, y, fp["eps"], lo, hi)
            return predict(m, adv)

        def run_pgd():
            predict(m, x)
            adv = pgd(m, x, y, pp["eps"], pp["alpha"], pp["steps"], lo, hi)
            return predict(m, adv)

        for name, fn in (("fgsm", run_fgsm), ("pgd", run_pgd)):
            for _ in range(cfg.get("warmup", 3)):
                fn()
            ts, cpu = [], []
            for _ in range(cfg["reps"]):
                t0, c0 = time.perf_counter(), time.process_time()
                fn()
                ts.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            res[name + "_seconds"] = ts
            res[name + "_cpu_seconds"] = cpu
    else:
        sys.exit("unknown mode " + mode)
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
