"""Every parameter frozen in __init__ (a transfer-learning habit applied to the whole network)."""
import torch.nn as nn


class FrozenCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
        for p in self.parameters():
            p.requires_grad = False

    def forward(self, x):
        return self.head(self.features(x))
