"""Batch norm and LeakyReLU, a wide 448-unit hidden layer: the largest design (about 1.43M parameters)."""
import torch.nn as nn


class BigBN(nn.Module):
    def __init__(self, n_labels=10):
        super().__init__()
        self.conv_block1 = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.LeakyReLU(0.1),
                                         nn.MaxPool2d(2))
        self.conv_block2 = nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.LeakyReLU(0.1),
                                         nn.MaxPool2d(2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 448), nn.BatchNorm1d(448), nn.LeakyReLU(0.1),
                                nn.Dropout(0.4), nn.Linear(448, n_labels))

    def forward(self, x):
        x = self.conv_block1(x)
        x = self.conv_block2(x)
        return self.fc(x)
