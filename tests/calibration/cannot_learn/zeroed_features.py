"""A mask that is all zeros multiplies the features: only the last layer's bias reaches the output."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ZeroedFeatures(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)
        self.register_buffer("mask", torch.zeros(32, 7, 7))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc((x * self.mask).flatten(1))
