"""The probe in real sandboxed kernels: nothing the notebook shadows, races or patches changes a
result (issue 8 items 10-12), probes run on pristine libraries (issue 10 item 2), models built
with arguments are found (item 3) and torchvision data is served at any root (item 4).

Hostile notebooks pair a wrong answer with a forgery and assert the score is not raised; the
unusual-but-correct ones assert full marks on what they do right. The hostile ones are graded in
the session's hostile gallery; the free-form and torchvision-data notebooks (correct ones, not
hostile) keep a batch per rubric: the free-form rubric finds the model class by itself, and the
data batch serves FashionMNIST, where the gallery's rubric names class CNN and serves digits28."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hostile_gallery import Gallery
from support import REPO, write_idx_dataset, write_notebook

from grader.grade.api import BatchResult, grade_batch

pytestmark = pytest.mark.kernel


@pytest.fixture(scope="module")
def probe_batch(hostile_gallery: Gallery) -> Gallery:
    """The forgeries are graded in the session's hostile gallery (tests/hostile_gallery.py), one
    batch with every other hostile notebook of the tests."""
    return hostile_gallery


def report_of(batch: Gallery | BatchResult, name: str) -> dict:
    return json.loads((batch.out_dir / f"{name}.json").read_text("utf-8"))


def check_of(report: dict, check_id: str) -> dict:
    return next(c for c in report["checks"] if c["id"] == check_id)


@pytest.mark.parametrize("name", ["forges_with_exec", "forges_with_thread", "forges_with_formatter"])
def test_forgery_does_not_raise_the_score(probe_batch: Gallery, name: str) -> None:
    report = report_of(probe_batch, name)
    a1 = check_of(report, "A1.lecture_examples")
    assert a1["status"] == "fail" and "expected 2, got 0" in a1["message"]
    assert report["score"] == 0


def test_racing_thread_is_listed_as_unusual(probe_batch: Gallery) -> None:
    threads = report_of(probe_batch, "forges_with_thread")["execution"]["kernel"]["threads"]
    forger = [t for t in threads if t["name"] == "forger"]
    assert forger and forger[0]["target"] == "__main__.rewrite_results" and forger[0]["normal"] is False


def test_formatter_and_builtins_are_restored_and_reported(probe_batch: Gallery) -> None:
    restored = report_of(probe_batch, "forges_with_formatter")["execution"]["kernel"]["restored"]
    assert "IPython text/plain printers" in restored and "builtins.round" in restored


def test_library_convolution_is_seen_below_torch_function(probe_batch: Gallery) -> None:
    report = report_of(probe_batch, "uses_library_conv")
    assert check_of(report, "A1.lecture_examples")["status"] == "pass"
    single = check_of(report, "A2.slide_example")
    assert single["status"] == "fail" and "aten.convolution" in single["message"]
    multi = check_of(report, "A3.bias")
    assert multi["status"] == "fail" and "DisableTorchFunction" in multi["message"]
    pool = check_of(report, "A4.default_stride")
    assert pool["status"] == "fail" and "max_pool2d_with_indices" in pool["message"]


def test_patched_torch_costs_no_check_of_correct_code(probe_batch: Gallery) -> None:
    report = report_of(probe_batch, "patches_torch_correct_code")
    for check_id in ("A1.lecture_examples", "B1.output_shape", "B1.layer_order", "D1.weights", "D1.mean_loss",
                     "D2.loss_accuracy", "D2.no_side_effects"):
        assert check_of(report, check_id)["status"] == "pass", check_of(report, check_id)
    restored = set(report["execution"]["kernel"]["restored"])
    assert {"torch.nn.functional.conv2d", "torch.allclose", "torch.Tensor.backward",
            "torch.optim.adam.Adam.step", "grad mode", "default dtype"} <= restored


def test_saved_model_is_found_where_the_notebook_started(probe_batch: Gallery) -> None:
    report = report_of(probe_batch, "chdir_after_save")
    assert check_of(report, "E1.loads")["status"] == "pass"
    assert "working directory" in report["execution"]["kernel"]["restored"]


# ------------------------------------------------------- model discovery (free-form rubric)

FREEFORM_RUBRIC = f"""extends = "{REPO / 'rubrics' / 'cnn_freeform.toml'}"
remove_checks = ["A1.lecture_examples", "A1.random_inputs", "A1.stride_floor", "A2.slide_example",
                 "A2.random_inputs", "A2.padding_stride", "A3.random_inputs", "A3.bias", "A3.padding_stride",
                 "A4.default_stride", "A4.explicit_stride", "B1.logits", "B1.batch_sizes",
                 "B1.eval_deterministic", "B2.parameter_count", "C1.train_loader", "C1.test_loader",
                 "D1.weights", "D1.mean_loss", "D2.loss_accuracy", "D2.no_side_effects", "E1.accuracy"]
[execution]
cell_timeout_s = 60
probe_timeout_s = 60

[[checks]]
id = "D3.brief_training"
epochs = 1
train_samples = 256
time_budget_s = 30
threshold = 0.5
partial_from = 0.2
"""

FASHION_V2 = """import torch
from torch import nn

class FashionMNISTModelV0(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.layer_stack = nn.Sequential(nn.Flatten(), nn.Linear(input_shape * 28 * 28, hidden_units),
                                         nn.Linear(hidden_units, output_shape))

    def forward(self, x):
        return self.layer_stack(x)

class FashionMNISTModelV2(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.block_1 = nn.Sequential(nn.Conv2d(input_shape, hidden_units, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(),
                                     nn.MaxPool2d(2))
        self.block_2 = nn.Sequential(nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(),
                                     nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(hidden_units * 7 * 7, output_shape))

    def forward(self, x):
        return self.classifier(self.block_2(self.block_1(x)))

model_0 = FashionMNISTModelV0(input_shape=1, hidden_units=10, output_shape=10)
model = FashionMNISTModelV2(input_shape=1, hidden_units=10, output_shape=10)
torch.save(model.state_dict(), "cnn.pt")
"""

NET_NUM_CLASSES = """import torch
import torch.nn as nn
import torch.nn.functional as F

class Net(nn.Module):
    def __init__(self, num_classes):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=5, padding=2)
        self.fc = nn.Linear(32 * 7 * 7, num_classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.view(x.size(0), -1))

num_classes = 10
net = Net(num_classes)
torch.save(net.state_dict(), "cnn.pt")
"""

SEQUENTIAL_ONLY = """import torch
from torch import nn

model = nn.Sequential(
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
torch.save(model.state_dict(), "cnn.pt")
"""

NO_CONV = """import torch
from torch import nn

class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.layers(x)

model = MLP()
"""


@pytest.fixture(scope="module")
def freeform_batch(tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    folder = tmp_path_factory.mktemp("freeform-notebooks")
    write_notebook(folder / "fashion_v2_with_arguments.ipynb", FASHION_V2)
    write_notebook(folder / "net_num_classes.ipynb", NET_NUM_CLASSES)
    write_notebook(folder / "sequential_only.ipynb", SEQUENTIAL_ONLY)
    write_notebook(folder / "no_conv_layers.ipynb", NO_CONV)
    rubric = tmp_path_factory.mktemp("freeform-rubric") / "freeform.toml"
    rubric.write_text(FREEFORM_RUBRIC, "utf-8")
    return grade_batch(folder, rubric, tmp_path_factory.mktemp("freeform-reports"), jobs=2)


@pytest.mark.parametrize("name, cls, built_with, instance", [
    ("fashion_v2_with_arguments", "FashionMNISTModelV2", "recorded_arguments", "model"),
    ("net_num_classes", "Net", "recorded_arguments", "net"),
    ("sequential_only", "Sequential", "reinitialised_copy", "model"),
])
def test_model_built_from_the_notebooks_instance(freeform_batch: BatchResult, name: str, cls: str,
                                                 built_with: str, instance: str) -> None:
    report = report_of(freeform_batch, name)
    shape = check_of(report, "B1.output_shape")
    assert shape["status"] == "pass" and f"`{instance}`" in shape["message"]
    assert shape["details"]["model"]["class"] == cls
    assert shape["details"]["model"]["built_with"] == built_with
    for check_id in ("B1.has_conv", "B1.layer_order", "E1.loads"):
        assert check_of(report, check_id)["status"] == "pass", check_of(report, check_id)
    training = check_of(report, "D3.brief_training")
    assert training["status"] in ("pass", "fail") and f"fresh {cls}" in training["message"]


def test_model_arguments_are_reported(freeform_batch: BatchResult) -> None:
    shape = check_of(report_of(freeform_batch, "fashion_v2_with_arguments"), "B1.output_shape")
    assert shape["details"]["model"]["arguments"] == "input_shape=1, hidden_units=10, output_shape=10"
    net = check_of(report_of(freeform_batch, "net_num_classes"), "B1.output_shape")
    assert net["details"]["model"]["arguments"] == "10"


def test_model_without_convolutions_fails_the_order_rules(freeform_batch: BatchResult) -> None:
    report = report_of(freeform_batch, "no_conv_layers")
    order = check_of(report, "B1.layer_order")
    assert order["status"] == "fail" and "has none" in order["message"]
    assert check_of(report, "B1.has_conv")["status"] == "fail"


# --------------------------------------------------------- torchvision data at any root

DATA_ROOTS = ["./data", "../data", "~/.pytorch/F_MNIST_data/", "/files/"]

DATA_AT_ROOTS = """import torch
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

sets = [datasets.FashionMNIST(root=root, train=True, download=True, transform=transforms.ToTensor())
        for root in {roots!r}]
assert all(len(s) == 40 for s in sets)
train_loader = DataLoader(sets[{index}], batch_size=8, shuffle=True)
test_loader = DataLoader(datasets.FashionMNIST("{root}", train=False, download={download},
                                               transform=transforms.ToTensor()), batch_size=8)
"""

ASKS_FOR_MNIST = """mnist = datasets.MNIST(root="./data", train=True, download=True)"""


@pytest.fixture(scope="module")
def data_batch(tmp_path_factory: pytest.TempPathFactory) -> BatchResult:
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("fashion")
    write_idx_dataset(root / "FashionMNIST" / "raw", rng.random((40, 1, 28, 28)), rng.integers(0, 10, 40),
                      rng.random((30, 1, 28, 28)), rng.integers(0, 10, 30))
    rubric = tmp_path_factory.mktemp("fashion-rubric") / "fashion.toml"
    rubric.write_text(f"""extends = "{REPO / 'rubrics' / 'cnn_freeform.toml'}"
remove_checks = [{', '.join(repr(c) for c in DATA_BATCH_REMOVED)}]
[data]
source = "torchvision:FashionMNIST"
root = "{root}"
hidden_count = 10
[execution]
cell_timeout_s = 60
probe_timeout_s = 60
""".replace("'", '"'), "utf-8")
    folder = tmp_path_factory.mktemp("data-notebooks")
    write_notebook(folder / "data_roots.ipynb", DATA_AT_ROOTS.format(
        roots=DATA_ROOTS, index=3, root=DATA_ROOTS[2], download=True), ASKS_FOR_MNIST)
    write_notebook(folder / "data_download_false.ipynb", DATA_AT_ROOTS.format(
        roots=["data"], index=0, root="data", download=False))
    for name, cells in GALLERY.items():
        write_notebook(folder / f"{name}.ipynb", *cells)
    return grade_batch(folder, rubric, tmp_path_factory.mktemp("data-reports"), jobs=2)


DATA_BATCH_REMOVED = [
    "A1.lecture_examples", "A1.random_inputs", "A1.stride_floor", "A2.slide_example", "A2.random_inputs",
    "A2.padding_stride", "A3.random_inputs", "A3.bias", "A3.padding_stride", "A4.default_stride",
    "A4.explicit_stride", "B1.layer_order", "B1.logits", "B1.batch_sizes", "B1.eval_deterministic",
    "B1.has_conv", "B2.parameter_count", "D1.weights", "D1.mean_loss", "D2.loss_accuracy",
    "D2.no_side_effects", "D3.brief_training", "E1.accuracy"]
LOADER_CHECKS = ("C1.train_loader", "C1.test_loader")


def test_torchvision_data_is_served_at_any_root(data_batch: BatchResult) -> None:
    """Relative, parent, ~ and absolute roots with download=True: the loaders built from the
    absolute (train) and ~ (test) roots pass C1."""
    report = report_of(data_batch, "data_roots")
    assert all(check_of(report, check_id)["status"] == "pass" for check_id in LOADER_CHECKS)
    served = report["execution"]["kernel"]["data_served"]
    assert [entry["root_asked"] for entry in served] == [*DATA_ROOTS, DATA_ROOTS[2]]
    assert all(entry["data_set"] == "FashionMNIST" for entry in served)


def test_a_data_set_the_rubric_lacks_fails_its_cell_clearly(data_batch: BatchResult) -> None:
    failed = report_of(data_batch, "data_roots")["execution"]["failed_cells"]
    assert len(failed) == 1 and failed[0]["index"] == 1
    assert "provides no MNIST data set" in failed[0]["message"]


def test_download_false_at_the_rubric_layout_keeps_working(data_batch: BatchResult) -> None:
    report = report_of(data_batch, "data_download_false")
    assert all(check_of(report, check_id)["status"] == "pass" for check_id in LOADER_CHECKS)
    assert not report["execution"]["failed_cells"]


def test_served_roots_point_at_the_working_directory_data(data_batch: BatchResult) -> None:
    served = report_of(data_batch, "data_roots")["execution"]["kernel"]["data_served"]
    assert {Path(entry["root_served"]).name for entry in served} == {"data"}


# ------------------------------------------------------------------------------ the gallery
# Notebooks written here in the styles of real public PyTorch MNIST / FashionMNIST notebooks
# (none copied): each is correct and must run without a failed cell and earn every point of the
# data batch's rubric (loaders, output shape, cnn.pt). Styles: pytorch/examples (a `Net` with
# dropout and log_softmax, train(model, device, loader, optimizer, epoch), '../data', Normalize);
# a course's model classes with keyword arguments, device-agnostic code, tqdm and a helper
# accuracy function; an nn.Sequential model with '~/.pytorch/...' and torchvision.transforms.

GALLERY_EXAMPLES_STYLE = ["""import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torchvision import datasets, transforms

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.2860,), (0.3530,))])
train_set = datasets.FashionMNIST("../data", train=True, download=True, transform=transform)
test_set = datasets.FashionMNIST("../data", train=False, transform=transform)
train_loader = torch.utils.data.DataLoader(train_set, batch_size=16, shuffle=True)
test_loader = torch.utils.data.DataLoader(test_set, batch_size=100)""", """class Net(nn.Module):
    def __init__(self):
        super(Net, self).__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1)
        self.conv2 = nn.Conv2d(16, 32, 3, 1)
        self.dropout = nn.Dropout(0.25)
        self.fc1 = nn.Linear(32 * 12 * 12, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(torch.flatten(x, 1))
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)""", """def train(model, device, train_loader, optimizer, epoch):
    model.train()
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        if batch_idx % 10 == 0:
            done = batch_idx * len(data)
            print(f"Train Epoch: {epoch} [{done}/{len(train_loader.dataset)}]\tLoss: {loss.item():.6f}")

model = Net().to(device)
optimizer = optim.Adadelta(model.parameters(), lr=1.0)
scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
for epoch in range(1, 3):
    train(model, device, train_loader, optimizer, epoch)
    scheduler.step()
torch.save(model.state_dict(), "cnn.pt")"""]

GALLERY_COURSE_STYLE = ["""import torch
from torch import nn
import torchvision
from torchvision import datasets
from torchvision.transforms import ToTensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

device = "cuda" if torch.cuda.is_available() else "cpu"
train_data = datasets.FashionMNIST(root="data", train=True, download=True, transform=ToTensor(), target_transform=None)
test_data = datasets.FashionMNIST(root="data", train=False, download=True, transform=ToTensor())
class_names = train_data.classes
BATCH_SIZE = 32
train_loader = DataLoader(train_data, batch_size=BATCH_SIZE, shuffle=True)
test_loader = DataLoader(test_data, batch_size=BATCH_SIZE, shuffle=False)""", """def accuracy_fn(y_true, y_pred):
    return torch.eq(y_true, y_pred).sum().item() / len(y_pred) * 100

class FashionMNISTModelV1(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.layer_stack = nn.Sequential(nn.Flatten(), nn.Linear(input_shape, hidden_units), nn.ReLU(),
                                         nn.Linear(hidden_units, output_shape), nn.ReLU())

    def forward(self, x: torch.Tensor):
        return self.layer_stack(x)

class FashionMNISTModelV2(nn.Module):
    def __init__(self, input_shape: int, hidden_units: int, output_shape: int):
        super().__init__()
        self.block_1 = nn.Sequential(
            nn.Conv2d(in_channels=input_shape, out_channels=hidden_units, kernel_size=3, stride=1, padding=1),
            nn.ReLU(), nn.MaxPool2d(kernel_size=2, stride=2))
        self.block_2 = nn.Sequential(
            nn.Conv2d(hidden_units, hidden_units, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(in_features=hidden_units * 7 * 7,
                                                                out_features=output_shape))

    def forward(self, x: torch.Tensor):
        return self.classifier(self.block_2(self.block_1(x)))

torch.manual_seed(42)
model_1 = FashionMNISTModelV1(input_shape=784, hidden_units=10, output_shape=len(class_names)).to(device)
model_2 = FashionMNISTModelV2(input_shape=1, hidden_units=10, output_shape=len(class_names)).to(device)""",
"""def train_step(model, data_loader, loss_fn, optimizer, accuracy_fn, device=device):
    train_loss, train_acc = 0, 0
    model.train()
    for X, y in data_loader:
        X, y = X.to(device), y.to(device)
        y_pred = model(X)
        loss = loss_fn(y_pred, y)
        train_loss += loss
        train_acc += accuracy_fn(y_true=y, y_pred=y_pred.argmax(dim=1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    print(f"Train loss: {train_loss / len(data_loader):.5f} | Train accuracy: {train_acc / len(data_loader):.2f}%")

loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(params=model_2.parameters(), lr=0.1)
for epoch in tqdm(range(2)):
    train_step(model_2, train_loader, loss_fn, optimizer, accuracy_fn)
torch.save(obj=model_2.state_dict(), f="cnn.pt")"""]

GALLERY_SEQUENTIAL_STYLE = ["""import torch
from torch import nn, optim
from torchvision import datasets, transforms

transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
trainset = datasets.FashionMNIST('~/.pytorch/F_MNIST_data/', download=True, train=True, transform=transform)
train_loader = torch.utils.data.DataLoader(trainset, batch_size=8, shuffle=True)
testset = datasets.FashionMNIST('~/.pytorch/F_MNIST_data/', download=True, train=False, transform=transform)
test_loader = torch.utils.data.DataLoader(testset, batch_size=8, shuffle=True)""",
                            """model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(16 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 10))
criterion = nn.CrossEntropyLoss()
optimizer = optim.Adam(model.parameters(), lr=0.003)
epochs = 2
for e in range(epochs):
    running_loss = 0
    for images, labels in train_loader:
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
    else:
        print(f"Training loss: {running_loss / len(train_loader)}")
torch.save(model.state_dict(), 'cnn.pt')"""]

GALLERY = {"gallery_examples_style": GALLERY_EXAMPLES_STYLE, "gallery_course_style": GALLERY_COURSE_STYLE,
           "gallery_sequential_style": GALLERY_SEQUENTIAL_STYLE}


@pytest.mark.parametrize("name, cls", [("gallery_examples_style", "Net"),
                                       ("gallery_course_style", "FashionMNISTModelV2"),
                                       ("gallery_sequential_style", "Sequential")])
def test_gallery_notebook_runs_clean_and_earns_everything(data_batch: BatchResult, name: str, cls: str) -> None:
    report = report_of(data_batch, name)
    assert not report["execution"]["failed_cells"] and not report["execution"]["timed_out_cells"]
    assert report["score"] == report["max_score"] > 0, [c["message"] for c in report["checks"]
                                                         if c["status"] != "pass"]
    assert check_of(report, "B1.output_shape")["details"]["model"]["class"] == cls
    assert report["execution"]["kernel"]["data_served"]
