"""nn.Sequential with batch norm, 16 and 32 channels, a single linear layer (about 21k parameters)."""
import torch.nn as nn


class SmallBN(nn.Module):
    def __init__(self, n_labels=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, n_labels),
        )

    def forward(self, x):
        return self.net(x)
