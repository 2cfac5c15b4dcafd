"""Reference implementation of Exercise 06 (CNN for image classification).

The grader imports this module in its own process: `CNN` is the network that student
shapes and parameter counts are measured against, and `train` / `test` are the oracles
that the student's own `train()` and `test()` are compared with.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader


class CNN(nn.Module):
    """Two conv blocks (Conv -> BN -> ReLU -> MaxPool) and a dropout-regularised classifier.

    For a 1x28x28 input the blocks give 32x14x14 and 64x7x7 feature maps, so the
    classifier's first linear layer sees 64 * 7 * 7 = 3136 features.
    """

    def __init__(self, n_labels: int = 10) -> None:
        super().__init__()
        self.block1 = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.block2 = nn.Sequential(
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(3136, 128),
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, n_labels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits (no softmax: `nn.CrossEntropyLoss` expects logits)."""
        return self.classifier(self.block2(self.block1(x)))


def train(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
) -> float:
    """Run one epoch of gradient descent and return the mean of the per-batch losses."""
    model.train()
    total_loss = 0.0
    n_batches = 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        n_batches += 1
    return total_loss / n_batches


def test(model: nn.Module, loader: DataLoader, loss_fn: nn.Module) -> tuple[float, float]:
    """Evaluate without gradients in eval mode; return (mean per-batch loss, accuracy in [0, 1])."""
    model.eval()
    total_loss = 0.0
    n_batches = 0
    correct = 0
    total = 0
    with torch.no_grad():
        for x, y in loader:
            logits = model(x)
            total_loss += loss_fn(logits, y).item()
            n_batches += 1
            correct += (logits.argmax(dim=1) == y).sum().item()
            total += len(y)
    return total_loss / n_batches, correct / total
