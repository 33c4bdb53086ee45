"""Victim models for the AISpectra end-to-end test, one per task type the
Go side does not train itself, shaped for the example uploads
(ais.Example): segmentation of 24x24 scenes into 11 classes, detection on
40x40 scenes, forecasting 4 values from 12, text classification into 2
classes. Seeded, so every run builds the same models.

usage: ais_victims.py OUT_DIR
"""
import sys
from typing import List

import torch
import torch.nn.functional as F

out = sys.argv[1]
torch.manual_seed(3)


class Segmenter(torch.nn.Module):
    """Per-pixel logits [N, 11, H, W]: bright pixels lean to the class of
    their neighbourhood's texture, dark ones to background."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 11, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(x))
        y = self.conv2(h)
        bg = (0.3 - x) * 8.0
        return torch.cat([y[:, :1] + bg, y[:, 1:] - bg], 1)


class Detector(torch.nn.Module):
    """Boxes on a 5x5 grid of 8x8 cells: a cell's score is how much ink it
    holds; rows (x_min, y_min, x_max, y_max, score, class)."""

    def __init__(self):
        super().__init__()
        idx = torch.arange(25)
        cx = (idx % 5).float() * 8.0
        cy = torch.div(idx, 5, rounding_mode="floor").float() * 8.0
        self.register_buffer("boxes", torch.stack([cx, cy, cx + 8.0, cy + 8.0], 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        ink = F.avg_pool2d(x.mean(1, keepdim=True), 8).reshape(n, 25)
        score = torch.sigmoid((ink - 0.12) * 30.0)
        boxes = self.boxes.unsqueeze(0).expand(n, 25, 4)
        cls = torch.zeros(n, 25, 1)
        return torch.cat([boxes, score.unsqueeze(2), cls], 2)


class Forecaster(torch.nn.Module):
    """The next 4 values: the last value plus the window's mean step."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = (x[:, -1:] - x[:, :1]) / 11.0
        ahead = torch.arange(1, 5).float().unsqueeze(0)
        return x[:, -1:] + step * ahead


class TextTopic(torch.nn.Module):
    """Two classes from the words of a text: eating words against the rest."""

    def forward(self, texts: List[str]) -> torch.Tensor:
        rows: List[List[float]] = []
        for t in texts:
            words = t.lower().split()
            food = 0.0
            for w in words:
                if w.startswith("eat") or w.startswith("food") or w.startswith("fruit") or w.startswith("cook") or w.startswith("dish"):
                    food += 1.0
            n = float(len(words))
            rows.append([1.0 - food + 0.01 * n, food - 0.5])
        return torch.tensor(rows)


torch.jit.save(torch.jit.script(Segmenter().eval()), f"{out}/is.pt")
torch.jit.save(torch.jit.script(Detector().eval()), f"{out}/od.pt")
torch.jit.save(torch.jit.script(Forecaster().eval()), f"{out}/tsf.pt")
torch.jit.save(torch.jit.script(TextTopic().eval()), f"{out}/nlp.pt")
