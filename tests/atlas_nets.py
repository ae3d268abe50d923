"""Networks for the torchrun tests of the atlas, loaded with ``--model tests.atlas_nets:NAME``: small, so
that a test's processes start in seconds (no torchvision import, no VGG16 initialisation).

``small``: three seeded convs (16, 32, 64 filters), heavy enough at 64 px for a chunk to take a
noticeable moment; with ``FILTVIZ_TEST_PACE_RANK_1=SECONDS`` in the environment, rank 1 also sleeps that long
before each gradient step, so a test that kills it mid-run never finds its work already done (the
pictures are unchanged: sleeping changes no number). ``fails_on_rank_1``: a net whose ascent fails on torchrun's
rank 1 only (as a broken GPU or driver would), while rank 0's checks and renders go through.
"""

import os
import time

import torch
from torch import nn


def small() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
    )
    pace = float(os.environ.get("FILTVIZ_TEST_PACE_RANK_1", "0") or 0)
    if pace > 0 and os.environ.get("RANK") == "1":

        def slow(module, args):
            if args and getattr(args[0], "requires_grad", False):
                time.sleep(pace)

        net.register_forward_pre_hook(slow)
    return net


class FailsOnRank(nn.Module):
    def __init__(self, rank: int) -> None:
        super().__init__()
        self.rank = rank
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad and os.environ.get("RANK") == str(self.rank):
            raise RuntimeError(f"injected failure on rank {self.rank}")
        return self.features(x)


def fails_on_rank_1() -> nn.Module:
    torch.manual_seed(0)
    return FailsOnRank(1)
