"""Builds the TorchScript files of the input-inference tests.

usage: python3 inference_models.py OUT_DIR

None of them comes with an input shape or a tokenizer: validation must
work out how to feed each from its graph and weights, or say why not.
"""
import sys
from typing import List

import torch

out = sys.argv[1]
torch.manual_seed(0)


class GrayConv(torch.nn.Module):
    """MNIST-like: 1 channel, 28x28, 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.fc = torch.nn.Linear(4 * 26 * 26, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


class RGBConv(torch.nn.Module):
    """CIFAR-like: 3 channels, only 32x32 fits the linear layer."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.BatchNorm2d(4))
        self.head = torch.nn.Linear(4 * 30 * 30, 5)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


class MLP(torch.nn.Module):
    """20 features, 3 classes."""

    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(20, 16)
        self.fc2 = torch.nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class OddSize(torch.nn.Module):
    """1 channel, 50x50: a size no trial uses."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 48 * 48, 2)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


class TextLength(torch.nn.Module):
    """Takes the texts: class 1 ("long") for texts of more than 5 words."""

    def forward(self, texts: List[str]) -> torch.Tensor:
        rows: List[List[float]] = []
        for t in texts:
            n = float(len(t.split()))
            rows.append([5.0 - n, n - 5.0])
        return torch.tensor(rows)


torch.jit.save(torch.jit.script(GrayConv()), f"{out}/gray_conv.pth")  # TorchScript, named .pth
torch.jit.save(torch.jit.script(RGBConv().eval()), f"{out}/rgb_conv.pt")
torch.jit.save(torch.jit.script(MLP()), f"{out}/mlp.pt")
torch.jit.save(torch.jit.script(OddSize()), f"{out}/odd_size.pt")
torch.jit.save(torch.jit.script(TextLength()), f"{out}/text_length.pt")
