"""Builds the TorchScript (and pickle) files the runner tests load.

usage: python3 hostile_models.py OUT_DIR SECRET_PATH

Every model takes input_shape [4] and returns logits [batch, 2], like a
small classifier, so that only what it does besides classifying differs.
"""
import sys

import torch

out, secret = sys.argv[1], sys.argv[2]
torch.manual_seed(0)


class Honest(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


class ReadsFile(torch.nn.Module):
    """Returns the first bytes of a file as 'logits' (the attack in the issue)."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def forward(self, x):
        data = torch.from_file(self.path, shared=False, size=8, dtype=torch.uint8)
        row = data.to(torch.float32)[:2].unsqueeze(0)
        return row.repeat(x.shape[0], 1)


class Helper(torch.nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path

    def leak(self) -> torch.Tensor:
        return torch.from_file(self.path, shared=False, size=8, dtype=torch.uint8)


class ReadsFileInSubmodule(torch.nn.Module):
    """The file read hides in a submodule's method."""

    def __init__(self, path: str):
        super().__init__()
        self.helper = Helper(path)
        self.fc = torch.nn.Linear(4, 2)

    def forward(self, x):
        if x.sum() > 1e30:
            return self.helper.leak().to(torch.float32)[:2].unsqueeze(0)
        return self.fc(x)


class Allocates(torch.nn.Module):
    """Asks for far more memory than any runner may have (2^38 floats, 1 TiB)."""

    def forward(self, x):
        big = torch.ones(1 << 38)
        return big[:2].unsqueeze(0).repeat(x.shape[0], 1) + x[:, :2]


class Loops(torch.nn.Module):
    """Never returns once given a positive input."""

    def forward(self, x):
        y = x[:, :2]
        while bool(y.sum() > 0):
            y = y + 1.0
        return y


torch.jit.save(torch.jit.script(Honest()), f"{out}/honest.pt")
torch.jit.save(torch.jit.script(ReadsFile(secret)), f"{out}/reads_file.pt")
torch.jit.save(torch.jit.script(ReadsFileInSubmodule(secret)), f"{out}/reads_file_submodule.pt")
torch.jit.save(torch.jit.script(Allocates()), f"{out}/allocates.pt")
torch.jit.save(torch.jit.script(Loops()), f"{out}/loops.pt")
torch.save(Honest().state_dict(), f"{out}/state_dict.pth")
torch.save(Honest(), f"{out}/legacy_pickle.pth", _use_new_zipfile_serialization=False)
