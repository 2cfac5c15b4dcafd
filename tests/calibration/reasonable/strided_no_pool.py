"""Strided 5x5 convolutions instead of pooling, functional forward (about 114k parameters)."""
import torch.nn as nn
import torch.nn.functional as F


class StridedCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 5, stride=2, padding=2)   # 14x14
        self.c2 = nn.Conv2d(16, 32, 5, stride=2, padding=2)  # 7x7
        self.fc = nn.Linear(32 * 7 * 7, 64)
        self.out = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = F.relu(self.fc(x.flatten(1)))
        return self.out(x)
