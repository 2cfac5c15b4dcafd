"""Wide and unpadded: two 5x5 convs of 64 channels, a 256-unit hidden layer (about 370k parameters)."""
import torch.nn as nn
import torch.nn.functional as F


class WideCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 64, 5)    # 24x24 -> pool 12x12
        self.conv2 = nn.Conv2d(64, 64, 5)   # 8x8 -> pool 4x4
        self.drop = nn.Dropout2d(0.2)
        self.fc1 = nn.Linear(64 * 4 * 4, 256)
        self.fc2 = nn.Linear(256, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = self.drop(F.max_pool2d(F.relu(self.conv2(x)), 2))
        x = x.reshape(x.shape[0], -1)
        x = F.dropout(F.relu(self.fc1(x)), 0.5, self.training)
        return F.log_softmax(self.fc2(x), dim=-1)
