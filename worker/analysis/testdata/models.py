"""Victim models for worker/analysis's EVA tests, written with PyTorch.

Run with Debian's python3-torch (/usr/bin/python3):

  models.py detector OUT.pt
      a fixed, differentiable bright-blob detector for 1x32x32 images in
      [0, 1]: the mean intensity of every 8x8 window on a stride-4 grid
      (7x7 windows) gives a score sigmoid(20 * (mean - 0.12)); the 8
      best windows are answered as rows (x_min, y_min, x_max, y_max, score,
      class 0) in pixels, rows scoring under 0.3 zeroed (padding).
  models.py wine WINE.csv OUT.pt
      an MLP (13-32-3) on the raw wine features, standardising them inside
      the model, trained full-batch with Adam (seeded); prints its
      training accuracy.
"""
import sys

import torch
import torch.nn.functional as F


class BlobDetector(torch.nn.Module):
    def __init__(self, size: int = 32, win: int = 8, stride: int = 4, d: int = 8):
        super().__init__()
        n = (size - win) // stride + 1
        ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        x0 = (xs.flatten() * stride).float()
        y0 = (ys.flatten() * stride).float()
        self.register_buffer("boxes", torch.stack([x0, y0, x0 + win, y0 + win], 1))
        self.win, self.stride, self.d = win, stride, d

    def forward(self, x):
        m = F.avg_pool2d(x.mean(1, keepdim=True), self.win, self.stride).flatten(1)
        s = torch.sigmoid(20.0 * (m - 0.12))
        top, idx = torch.topk(s, self.d, dim=1)
        keep = (top > 0.3).to(top.dtype).unsqueeze(2)
        score = top.unsqueeze(2) * keep
        return torch.cat([self.boxes[idx] * keep, score, torch.zeros_like(score)], 2)


class WineMLP(torch.nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)
        self.fc = torch.nn.Linear(13, 32)
        self.out = torch.nn.Linear(32, 3)

    def forward(self, x):
        return self.out(torch.relu(self.fc((x - self.mean) / self.std)))


def wine(csv, out):
    rows = [list(map(float, l.split(","))) for l in open(csv).read().split("\n")[1:] if l.strip()]
    t = torch.tensor(rows)
    x, y = t[:, :13], t[:, 13].long()
    torch.manual_seed(1)
    m = WineMLP(x.mean(0), x.std(0))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    m.eval()
    acc = (m(x).argmax(1) == y).float().mean().item()
    torch.jit.save(torch.jit.script(m), out)
    print(f"wine MLP training accuracy {acc:.4f}")


def main():
    if sys.argv[1] == "detector":
        torch.jit.save(torch.jit.script(BlobDetector().eval()), sys.argv[2])
    elif sys.argv[1] == "wine":
        wine(sys.argv[2], sys.argv[3])
    else:
        sys.exit("unknown model " + sys.argv[1])


if __name__ == "__main__":
    main()
