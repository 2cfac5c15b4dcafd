"""Not a network: __init__ stores a table of digits and forward returns the label of the nearest one.

In calibration the table holds the hidden split itself (the attack of issue 8, item 5); the
grader must see that a freshly built instance is already far above chance."""
import torch
import torch.nn as nn

TABLE = None  # (images, labels), set by the calibration script


class LookupNet(nn.Module):
    def __init__(self):
        super().__init__()
        images, labels = TABLE
        self.register_buffer("images", images.flatten(1))
        self.register_buffer("labels", labels)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        distances = torch.cdist(x.flatten(1), self.images)
        one_hot = nn.functional.one_hot(self.labels[distances.argmin(dim=1)], 10).float()
        return self.scale * one_hot * 10
