"""Reference values for worker/torch tests, computed by PyTorch itself.

Run with Debian's python3-torch (/usr/bin/python3):

  reference.py make OUTDIR
      writes OUTDIR/model.pt (a scripted tiny CNN) and OUTDIR/ref.json with an
      input batch, labels, the logits, the mean cross-entropy loss and its
      gradient with respect to the input.
  reference.py eval MODEL.pt IN.json OUT.json
      loads a TorchScript module (e.g. one exported by Go) and writes
      logits, loss and input gradient for the batch in IN.json.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        h = torch.relu(self.conv(x))
        h = F.max_pool2d(h, 2)
        return self.fc(torch.flatten(h, 1))


def evaluate(m, x, y):
    x = x.clone().requires_grad_(True)
    logits = m(x)
    loss = F.cross_entropy(logits, y)
    (grad,) = torch.autograd.grad(loss, [x])
    return {
        "shape": list(x.shape),
        "x": x.detach().flatten().tolist(),
        "labels": y.tolist(),
        "logits": logits.detach().flatten().tolist(),
        "logits_shape": list(logits.shape),
        "loss": loss.item(),
        "grad": grad.flatten().tolist(),
        "torch_version": torch.__version__,
    }


def main():
    torch.set_num_threads(1)
    if sys.argv[1] == "make":
        out = sys.argv[2]
        torch.manual_seed(0)
        m = torch.jit.script(TinyCNN().eval())
        m.save(os.path.join(out, "model.pt"))
        x = torch.randn(5, 1, 8, 8)
        y = torch.tensor([0, 1, 2, 1, 0])
        ref = evaluate(m, x, y)
    elif sys.argv[1] == "eval":
        m = torch.jit.load(sys.argv[2]).eval()
        with open(sys.argv[3]) as f:
            inp = json.load(f)
        x = torch.tensor(inp["x"], dtype=torch.float32).reshape(inp["shape"])
        y = torch.tensor(inp["labels"], dtype=torch.int64)
        ref = evaluate(m, x, y)
        out = os.path.dirname(sys.argv[4])
        sys.argv[2] = out
    else:
        raise SystemExit("usage: reference.py make OUTDIR | eval MODEL IN.json OUT.json")
    path = sys.argv[4] if sys.argv[1] == "eval" else os.path.join(sys.argv[2], "ref.json")
    with open(path, "w") as f:
        json.dump(ref, f)


if __name__ == "__main__":
    main()
