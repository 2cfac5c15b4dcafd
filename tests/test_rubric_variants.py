"""The other rubrics: FashionMNIST from torchvision's on-disk layout, and the free-form CNN."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support import REPO, fashion_rubric, write_notebook
from support import fake_fashion_root as make_fake_fashion_root

from grader.data.digits28 import load_digits28
from grader.errors import RubricError
from grader.grade.api import grade_batch
from grader.rubric.load import load_rubric

RUBRICS = REPO / "rubrics"


@pytest.fixture(scope="module")
def fake_fashion_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small IDX files in FashionMNIST's layout (made of the digits, so they are learnable)."""
    return make_fake_fashion_root(tmp_path_factory.mktemp("torchvision-data"))


def test_fashion_rubric_extends_the_default_and_reads_torchvision_files(tmp_path, fake_fashion_root) -> None:
    from grader.data.sources import data_arrays

    rubric = load_rubric(fashion_rubric(tmp_path, fake_fashion_root))
    digits = load_digits28()
    assert rubric.data.source == "torchvision:FashionMNIST" and rubric.max_score == 100
    assert rubric.check("E1.accuracy").options["threshold"] == 0.88
    assert rubric.check("A2.slide_example").points == 2  # inherited unchanged
    arrays = data_arrays(rubric.data)
    assert arrays.x_train.shape == (1197, 1, 28, 28) and arrays.x_train.dtype == np.float32
    assert arrays.x_hidden.shape == (300, 1, 28, 28) and np.array_equal(arrays.hidden_labels, digits.hidden_labels)
    # the students' test part, the one D2 sends into the kernel, is what follows the hidden images
    assert arrays.x_test.shape == (300, 1, 28, 28) and np.array_equal(arrays.y_test, digits.y_test)


def test_missing_torchvision_root_is_a_rubric_error(tmp_path) -> None:
    from grader.data.sources import data_arrays

    rubric = load_rubric(fashion_rubric(tmp_path, tmp_path / "nowhere"))
    with pytest.raises(RubricError, match="holds no FashionMNIST files.*never downloads"):
        data_arrays(rubric.data)


@pytest.mark.kernel
def test_reference_solution_earns_full_marks_on_fashionmnist(tmp_path, fake_fashion_root) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(REPO / "reference" / "solution.ipynb", folder / "solution.ipynb")
    shutil.copy(REPO / "reference" / "template.ipynb", folder / "template.ipynb")
    result = grade_batch(folder, fashion_rubric(tmp_path, fake_fashion_root), tmp_path / "out", jobs=2)
    reports = {r.submission: r for r in result.reports}
    solution = reports["solution"]
    assert solution.execution["failed_cells"] == []
    assert solution.score == 100, [(c.id, c.message) for c in solution.checks if c.status != "pass"]
    assert reports["template"].score == 0
    # The notebook read the copies under data/FashionMNIST/raw through torchvision.
    executed = (result.out_dir / "solution" / "executed.ipynb").read_text()
    assert "torch.Size([1197, 1, 28, 28])" in executed


NET = '''
import torch.nn.functional as F

class Net(nn.Module):  # the PyTorch MNIST example
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.dropout2(F.relu(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)

model = Net()
'''

CONVNET = '''
class ConvNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(7 * 7 * 32, num_classes)

    def forward(self, x):
        return self.fc(self.features(x).reshape(x.size(0), -1))

model = ConvNet()
'''

FASHION_CNN = '''
class FashionCNN(nn.Module):  # a popular Kaggle notebook's network
    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                                    nn.MaxPool2d(2, 2))
        self.layer2 = nn.Sequential(nn.Conv2d(32, 64, 3), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(64 * 6 * 6, 600)
        self.drop = nn.Dropout2d(0.25)
        self.fc2 = nn.Linear(600, 120)
        self.fc3 = nn.Linear(120, 10)

    def forward(self, x):
        out = self.layer2(self.layer1(x))
        out = out.view(out.size(0), -1)
        return self.fc3(self.fc2(self.drop(self.fc1(out))))

model = FashionCNN()
'''

HEADER = '''
import numpy as np, torch, torch.nn as nn
data = np.load("data/mnist.npz")
x, y = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
'''

TRAIN_AND_SAVE = '''
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
for epoch in range(2):
    for i in range(0, len(x), 64):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        loss.backward()
        optimizer.step()
torch.save(model.state_dict(), "cnn.pt")
'''


@pytest.mark.kernel
def test_freeform_rubric_grades_real_world_class_names(tmp_path) -> None:
    folder = tmp_path / "in"
    for name, network in (("net", NET), ("convnet", CONVNET), ("fashioncnn", FASHION_CNN)):
        write_notebook(folder / f"{name}.ipynb", HEADER, network, TRAIN_AND_SAVE)
    shutil.copy(REPO / "reference" / "solution.ipynb", folder / "solution.ipynb")
    result = grade_batch(folder, RUBRICS / "cnn_freeform.toml", tmp_path / "out", jobs=2)
    reports = {r.submission: r for r in result.reports}
    assert reports["solution"].score == 100
    for name, class_name in (("net", "Net"), ("convnet", "ConvNet"), ("fashioncnn", "FashionCNN")):
        report = reports[name]
        checks = {c.id: c for c in report.checks}
        assert report.status == "graded" and report.execution["failed_cells"] == []
        assert not [c.id for c in report.checks if c.status == "error"], name
        assert class_name in checks["B1.output_shape"].message
        assert checks["B1.output_shape"].status == "pass" and checks["B1.has_conv"].status == "pass"
        assert checks["B2.parameter_count"].status == "pass"
        assert checks["D3.brief_training"].details["accuracy"] > 0.5
        assert checks["E1.loads"].status == "pass"
    # Lecture rules still apply: the Kaggle network puts dropout after a linear layer.
    fashion = {c.id: c for c in reports["fashioncnn"].checks}
    assert fashion["B1.layer_order"].status == "fail" and "Dropout2d" in fashion["B1.layer_order"].message
