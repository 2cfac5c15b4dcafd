"""Build the sample submissions `submissions/*.ipynb` from `reference/solution.ipynb`.

Each sample is the solution plus one patch: exact source-text replacements (each `old` must
occur exactly once in the whole notebook, so it pins down one cell) and optionally extra cells.
Patches are applied in order, so a later replacement sees the text of the earlier ones.

    python tests/make_samples.py          # (re)write every sample
    python tests/make_samples.py --check  # exit 1 listing samples that differ from the generator's

Only the standard library and nbformat are used, so the check can run anywhere.
"""

from __future__ import annotations

import argparse
import copy
import io
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "reference" / "solution.ipynb"
OUT_DIR = ROOT / "submissions"


class PatchError(Exception):
    """A replacement or insertion point is not found exactly once in the notebook."""


@dataclass(frozen=True)
class ExtraCell:
    """A cell inserted right after the one cell containing `after`."""

    after: str
    source: str
    cell_type: str = "code"


@dataclass(frozen=True)
class Sample:
    """One sample submission: the solution with `replacements` and `extra_cells` applied."""

    name: str
    description: str
    replacements: list[tuple[str, str]] = field(default_factory=list)
    extra_cells: list[ExtraCell] = field(default_factory=list)


# --- Fragments of reference/solution.ipynb (the `old` side of replacements) -----------------

SOL_CONV_OUTPUT_RETURN = "return (h_in - kernel_size + 2 * padding) // stride + 1"

SOL_CONV_OUTPUT_SIZE = """\
def conv_output_size(h_in, kernel_size, padding=0, stride=1):
    # integer division = floor: a window that does not fit completely is dropped
    """ + SOL_CONV_OUTPUT_RETURN

SOL_SINGLE_PADDING = """\
    # zero padding: a bigger canvas of zeros with the image in the middle
    padded = torch.zeros(h + 2 * padding, w + 2 * padding)
    padded[padding:padding + h, padding:padding + w] = image
"""

SOL_SINGLE_SLIDE = """\
    h_out = (padded.shape[0] - k) // stride + 1
    w_out = (padded.shape[1] - k) // stride + 1
    out = torch.zeros(h_out, w_out)
    for i in range(h_out):
        for j in range(w_out):
            window = padded[i * stride:i * stride + k, j * stride:j * stride + k]
            out[i, j] = (window * kernel).sum()
    return out"""

SOL_CONV2D_SINGLE = """\
def conv2d_single(image, kernel, padding=0, stride=1):
    image = torch.as_tensor(image).float()
    kernel = torch.as_tensor(kernel).float()
    k = kernel.shape[0]
    h, w = image.shape
""" + SOL_SINGLE_PADDING + SOL_SINGLE_SLIDE

SOL_MULTI_BIAS = """\
        if bias is not None:
            fmap = fmap + bias[o]
"""

SOL_CONV2D_MULTI = """\
def conv2d_multi(x, weight, bias=None, padding=0, stride=1):
    c_out, c_in = weight.shape[0], weight.shape[1]
    maps = []
    for o in range(c_out):
        # one output channel = sum over input channels of the per-channel convolutions
        fmap = sum(conv2d_single(x[i], weight[o, i], padding, stride) for i in range(c_in))
""" + SOL_MULTI_BIAS + """\
        maps.append(fmap)
    return torch.stack(maps)"""

SOL_POOL_DEFAULT_STRIDE = "        stride = kernel_size  # default: windows do not overlap"

SOL_MAXPOOL2D = """\
def maxpool2d(x, kernel_size, stride=None):
    if stride is None:
""" + SOL_POOL_DEFAULT_STRIDE + """
    c, h, w = x.shape
    h_out = (h - kernel_size) // stride + 1
    w_out = (w - kernel_size) // stride + 1
    out = torch.zeros(c, h_out, w_out, dtype=x.dtype)
    for ch in range(c):
        for i in range(h_out):
            for j in range(w_out):
                window = x[ch, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
                out[ch, i, j] = window.max()
    return out"""

SOL_FEATURE_SHAPES = """\
# conv 3x3 with padding 1 keeps the size; MaxPool2d(2) is a 2x2 window with stride 2
h1 = conv_output_size(conv_output_size(28, 3, padding=1, stride=1), 2, stride=2)
h2 = conv_output_size(conv_output_size(h1, 3, padding=1, stride=1), 2, stride=2)
feature_shapes = {"block1": (32, h1, h1), "block2": (64, h2, h2), "flatten": 64 * h2 * h2}"""

# --- Replacement texts -----------------------------------------------------------------------

# Typed-in shapes, for samples whose conv_output_size is broken: their A5 must stay correct.
LITERAL_FEATURE_SHAPES = """\
# 28 -> conv (padding 1) 28 -> pool 14 -> conv 14 -> pool 7
feature_shapes = {"block1": (32, 14, 14), "block2": (64, 7, 7), "flatten": 64 * 7 * 7}"""

# A correct conv2d_multi that does not call conv2d_single, for samples whose only fault is
# in conv2d_single: otherwise the A2 bug would also fail A3.
INDEPENDENT_CONV2D_MULTI = """\
def conv2d_multi(x, weight, bias=None, padding=0, stride=1):
    x = torch.as_tensor(x).float()
    weight = torch.as_tensor(weight).float()
    c_in, h, w = x.shape
    c_out, _, k, _ = weight.shape
    padded = torch.zeros(c_in, h + 2 * padding, w + 2 * padding)
    padded[:, padding:padding + h, padding:padding + w] = x
    h_out = (padded.shape[1] - k) // stride + 1
    w_out = (padded.shape[2] - k) // stride + 1
    out = torch.zeros(c_out, h_out, w_out)
    for o in range(c_out):
        for i in range(h_out):
            for j in range(w_out):
                # the window covers all input channels at once
                window = padded[:, i * stride:i * stride + k, j * stride:j * stride + k]
                out[o, i, j] = (window * weight[o]).sum()
        if bias is not None:
            out[o] += bias[o]
    return out"""

VECTORIZED_SLIDE = """\
    # all k x k windows at once: H_out x W_out x k x k
    windows = padded.unfold(0, k, stride).unfold(1, k, stride)
    return (windows * kernel).sum((-1, -2))"""

VECTORIZED_CONV2D_MULTI = """\
def conv2d_multi(x, weight, bias=None, padding=0, stride=1):
    x = torch.as_tensor(x).float()
    weight = torch.as_tensor(weight).float()
    c_in, h, w = x.shape
    k = weight.shape[-1]
    padded = torch.zeros(c_in, h + 2 * padding, w + 2 * padding)
    padded[:, padding:padding + h, padding:padding + w] = x
    windows = padded.unfold(1, k, stride).unfold(2, k, stride)  # C_in x H_out x W_out x k x k
    out = torch.einsum("chwij,ocij->ohw", windows, weight)
    if bias is not None:
        out = out + torch.as_tensor(bias).float().reshape(-1, 1, 1)
    return out"""

VECTORIZED_MAXPOOL2D = """\
def maxpool2d(x, kernel_size, stride=None):
    stride = kernel_size if stride is None else stride
    windows = x.unfold(1, kernel_size, stride).unfold(2, kernel_size, stride)
    return windows.amax((-1, -2))"""

NUMPY_CONV_OUTPUT_SIZE = """\
def conv_output_size(h_in, kernel_size, padding=0, stride=1):
    return int(np.floor((h_in - kernel_size + 2 * padding) / stride)) + 1"""

NUMPY_CONV2D_SINGLE = """\
def conv2d_single(image, kernel, padding=0, stride=1):
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    k = kernel.shape[0]
    padded = np.pad(image, padding)  # zeros on every side
    h_out = (padded.shape[0] - k) // stride + 1
    w_out = (padded.shape[1] - k) // stride + 1
    out = np.zeros((h_out, w_out))
    for i in range(h_out):
        for j in range(w_out):
            out[i, j] = np.sum(padded[i * stride:i * stride + k, j * stride:j * stride + k] * kernel)
    return out"""

NUMPY_CONV2D_MULTI = """\
from numpy.lib.stride_tricks import sliding_window_view


def conv2d_multi(x, weight, bias=None, padding=0, stride=1):
    x = np.asarray(x, dtype=np.float64)
    weight = np.asarray(weight, dtype=np.float64)
    k = weight.shape[-1]
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    # every window with stride 1, then keep every stride-th: C_in x H_out x W_out x k x k
    windows = sliding_window_view(padded, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    out = np.einsum("chwij,ocij->ohw", windows, weight)
    if bias is not None:
        out = out + np.asarray(bias).reshape(-1, 1, 1)
    return out"""

NUMPY_MAXPOOL2D = """\
def maxpool2d(x, kernel_size, stride=None):
    x = np.asarray(x)
    if stride is None:
        stride = kernel_size
    c, h, w = x.shape
    h_out = (h - kernel_size) // stride + 1
    w_out = (w - kernel_size) // stride + 1
    out = np.zeros((c, h_out, w_out), dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            window = x[:, i * stride:i * stride + kernel_size, j * stride:j * stride + kernel_size]
            out[:, i, j] = window.max(axis=(1, 2))
    return out"""

HARDCODED_CONV2D_SINGLE = """\
def conv2d_single(image, kernel, padding=0, stride=1):
    # the example from the slides
    return torch.tensor([[19., 25.], [37., 43.]])"""

SOL_CNN_CLASS_LINE = "class CNN(nn.Module):"
SOL_CNN_RETURN = "return self.classifier(x)  # logits"
SOL_LINEAR_3136 = "nn.Linear(3136, 128),  # 64 channels * 7 * 7, see feature_shapes"
SOL_BLOCK1_BN_RELU = """\
            nn.Conv2d(1, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),"""
SOL_BLOCK2_BN_RELU = """\
            nn.Conv2d(32, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),"""

SOL_CNN = """\
class CNN(nn.Module):
    def __init__(self, n_labels=10):
        super().__init__()
        self.block1 = nn.Sequential(
""" + SOL_BLOCK1_BN_RELU + """
            nn.MaxPool2d(2),
        )
        self.block2 = nn.Sequential(
""" + SOL_BLOCK2_BN_RELU + """
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            """ + SOL_LINEAR_3136 + """
            nn.ReLU(),
            nn.Dropout(0.5),
            nn.Linear(128, n_labels),
        )

    def forward(self, x):
        x = self.block1(x)
        x = self.block2(x)
        """ + SOL_CNN_RETURN

FUNCTIONAL_CNN = """\
import torch.nn.functional as F


class CNN(nn.Module):
    \"\"\"Layers as attributes; activations, pooling and flattening in forward().\"\"\"

    def __init__(self, n_labels=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, n_labels)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = F.dropout(F.relu(self.fc1(x)), p=0.5, training=self.training)
        return self.fc2(x)"""

LAZY_CNN = """\
class CNN(nn.Module):
    \"\"\"Lazy layers infer their input sizes at the first forward pass.\"\"\"

    def __init__(self, n_labels=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.LazyConv2d(32, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(2)),
            nn.Sequential(nn.LazyConv2d(64, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(), nn.MaxPool2d(2)),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(128), nn.ReLU(), nn.Dropout(0.5),
                                  nn.LazyLinear(n_labels))

    def forward(self, x):
        return self.head(self.features(x))"""

INTRO_LINE = "# Exercise 06 — CNN for image classification\n"

# --- The samples -----------------------------------------------------------------------------

SAMPLES: list[Sample] = [
    Sample(
        "passes_all_loops",
        "The solution itself (loops in Part A); only the title line differs.",
        [(INTRO_LINE, "# Exercise 06 — CNN for image classification (submission)\n")],
    ),
    Sample(
        "passes_all_vectorized",
        "Part A with tensor ops: hand-made zero padding, Tensor.unfold windows, einsum, amax.",
        [
            (SOL_SINGLE_SLIDE, VECTORIZED_SLIDE),
            (SOL_CONV2D_MULTI, VECTORIZED_CONV2D_MULTI),
            (SOL_MAXPOOL2D, VECTORIZED_MAXPOOL2D),
        ],
    ),
    Sample(
        "passes_all_numpy",
        "Part A in numpy (np.pad, loops, sliding_window_view); returns numpy arrays and an int.",
        [
            (SOL_CONV_OUTPUT_SIZE, NUMPY_CONV_OUTPUT_SIZE),
            (SOL_CONV2D_SINGLE, NUMPY_CONV2D_SINGLE),
            (SOL_CONV2D_MULTI, NUMPY_CONV2D_MULTI),
            (SOL_MAXPOOL2D, NUMPY_MAXPOOL2D),
        ],
    ),
    Sample(
        "fails_A1_off_by_one",
        "conv_output_size forgets the + 1; feature_shapes typed in, so A5 stays correct.",
        [
            (SOL_CONV_OUTPUT_RETURN, "return (h_in - kernel_size + 2 * padding) // stride"),
            (SOL_FEATURE_SHAPES, LITERAL_FEATURE_SHAPES),
        ],
    ),
    Sample(
        "fails_A1_true_division",
        "conv_output_size uses / (a float, wrong when S does not divide H - K + 2P); "
        "feature_shapes typed in.",
        [
            (SOL_CONV_OUTPUT_RETURN, "return (h_in - kernel_size + 2 * padding) / stride + 1"),
            (SOL_FEATURE_SHAPES, LITERAL_FEATURE_SHAPES),
        ],
    ),
    Sample(
        "fails_A2_hardcoded_slide",
        "conv2d_single returns the slide example's answer for any input; "
        "conv2d_multi has its own loops.",
        [
            (SOL_CONV2D_SINGLE, HARDCODED_CONV2D_SINGLE),
            (SOL_CONV2D_MULTI, INDEPENDENT_CONV2D_MULTI),
        ],
    ),
    Sample(
        "fails_A2_flipped_kernel",
        "conv2d_single flips the kernel (true convolution, not cross-correlation); "
        "conv2d_multi has its own loops.",
        [
            (
                "    kernel = torch.as_tensor(kernel).float()\n",
                "    kernel = torch.as_tensor(kernel).float()\n"
                "    kernel = torch.flip(kernel, (0, 1))  # convolution flips the kernel\n",
            ),
            (SOL_CONV2D_MULTI, INDEPENDENT_CONV2D_MULTI),
        ],
    ),
    Sample(
        "fails_A2_ignores_padding",
        "conv2d_single never pads (stride still right); conv2d_multi has its own loops.",
        [
            (SOL_SINGLE_PADDING, "    padded = image\n"),
            (SOL_CONV2D_MULTI, INDEPENDENT_CONV2D_MULTI),
        ],
    ),
    Sample(
        "fails_A3_ignores_bias",
        "conv2d_multi never adds the bias.",
        [(SOL_MULTI_BIAS, "")],
    ),
    Sample(
        "fails_A4_stride_one_default",
        "maxpool2d uses stride 1 when stride is None (instead of kernel_size).",
        [(SOL_POOL_DEFAULT_STRIDE, "        stride = 1")],
    ),
    Sample(
        "fails_A5_one_pool",
        "feature_shapes forgets the second pooling: block2 (64, 14, 14), flatten 12544.",
        [(
            "h2 = conv_output_size(conv_output_size(h1, 3, padding=1, stride=1), 2, stride=2)",
            "h2 = conv_output_size(h1, 3, padding=1, stride=1)",
        )],
    ),
    Sample(
        "fails_cell_raises",
        "The maxpool2d cell raises NameError (a typo'd name) before the def, so maxpool2d is "
        "never defined; every other cell runs.",
        [(
            "def maxpool2d(",
            "print(max_pool(torch.arange(16.).reshape(1, 4, 4), 2))\n\n\ndef maxpool2d(",
        )],
    ),
    Sample(
        "passes_all_lazy",
        "The network with lazy layers (LazyConv2d, LazyBatchNorm2d, LazyLinear) in nested Sequentials.",
        [
            (SOL_CNN, LAZY_CNN),
            ("model = CNN(n_labels=10)\n",
             "model = CNN(n_labels=10)\nmodel(torch.zeros(1, 1, 28, 28))  # lazy layers take their sizes here\n"),
        ],
    ),
    Sample(
        "passes_all_functional",
        "Layers as attributes; F.relu, F.max_pool2d, torch.flatten and F.dropout in forward().",
        [(SOL_CNN, FUNCTIONAL_CNN)],
    ),
    Sample(
        "fails_B_no_padding",
        "The convolutions have no padding (26x26, 11x11 ...); LazyLinear hides the size change, so "
        "the network still trains: only the shapes and the parameter count are wrong.",
        [
            ("nn.Conv2d(1, 32, 3, padding=1)", "nn.Conv2d(1, 32, 3)"),
            ("nn.Conv2d(32, 64, 3, padding=1)", "nn.Conv2d(32, 64, 3)"),
            (SOL_LINEAR_3136, "nn.LazyLinear(128),  # no need to compute the size"),
            ("model = CNN(n_labels=10)\n",
             "model = CNN(n_labels=10)\nmodel(torch.zeros(1, 1, 28, 28))  # lazy layers take their sizes here\n"),
        ],
    ),
    Sample(
        "fails_B_softmax_output",
        "forward() returns softmax probabilities instead of logits.",
        [(SOL_CNN_RETURN, "return torch.softmax(self.classifier(x), dim=1)  # probabilities")],
    ),
    Sample(
        "fails_B_bn_after_relu",
        "Batch normalization placed after the ReLU in both blocks.",
        [
            (SOL_BLOCK1_BN_RELU, SOL_BLOCK1_BN_RELU.replace("nn.BatchNorm2d(32),\n            nn.ReLU(),",
                                                           "nn.ReLU(),\n            nn.BatchNorm2d(32),")),
            (SOL_BLOCK2_BN_RELU, SOL_BLOCK2_BN_RELU.replace("nn.BatchNorm2d(64),\n            nn.ReLU(),",
                                                           "nn.ReLU(),\n            nn.BatchNorm2d(64),")),
        ],
    ),
    Sample(
        "fails_B_class_renamed",
        "The network class is called ConvNet instead of CNN (used consistently in the notebook).",
        [
            (SOL_CNN_CLASS_LINE, "class ConvNet(nn.Module):"),
            ("model = CNN()", "model = ConvNet()"),
            ("loaded = CNN()", "loaded = ConvNet()"),
        ],
    ),
    Sample(
        "fails_D_no_zero_grad",
        "train() never calls optimizer.zero_grad(): gradients add up over the batches.",
        [("        optimizer.zero_grad()\n        loss = loss_fn(model(x), y)\n",
          "        loss = loss_fn(model(x), y)\n")],
    ),
    Sample(
        "fails_D_test_train_mode",
        "test() never calls model.eval(): dropout stays on and batch norm updates its statistics.",
        [("    model.eval()  # dropout off, batch norm uses its running statistics\n", "")],
    ),
]


def _cell_with(nb: nbformat.NotebookNode, text: str, sample: str) -> int:
    """Index of the one cell containing `text`; it must occur exactly once in the notebook."""
    counts = [cell.source.count(text) for cell in nb.cells]
    if sum(counts) != 1:
        first_line = text.strip().splitlines()[0] if text.strip() else repr(text)
        raise PatchError(f"{sample}: {first_line!r} found {sum(counts)} times, expected once")
    return next(i for i, n in enumerate(counts) if n)


def _clear_outputs(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def build(sample: Sample, solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the solution with the sample's patch applied (outputs cleared, validated)."""
    nb = copy.deepcopy(solution)
    for old, new in sample.replacements:
        cell = nb.cells[_cell_with(nb, old, sample.name)]
        cell.source = cell.source.replace(old, new)
    for k, extra in enumerate(sample.extra_cells):
        make = nbformat.v4.new_code_cell if extra.cell_type == "code" else nbformat.v4.new_markdown_cell
        cell = make(extra.source)
        cell.id = f"{sample.name}-extra-{k}"[:64]  # fixed id: nbformat's default is random
        nb.cells.insert(_cell_with(nb, extra.after, sample.name) + 1, cell)
    _clear_outputs(nb)
    nbformat.validate(nb)
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text nbformat.write puts in a file."""
    buffer = io.StringIO()
    nbformat.write(nb, buffer)
    return buffer.getvalue()


def expected_files() -> dict[Path, str]:
    """Every sample's path and the text the generator writes there."""
    names = [s.name for s in SAMPLES]
    if len(names) != len(set(names)):
        raise PatchError(f"duplicate sample names in {names}")
    solution = nbformat.read(SOLUTION, as_version=4)
    return {OUT_DIR / f"{s.name}.ipynb": render(build(s, solution)) for s in SAMPLES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a sample differs from the generator's output")
    args = parser.parse_args(argv)
    files = expected_files()
    if args.check:
        stale = [p for p, text in files.items()
                 if not p.exists() or p.read_text(encoding="utf-8") != text]
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run: python tests/make_samples.py", file=sys.stderr)
        return 1 if stale else 0
    OUT_DIR.mkdir(exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8", newline="")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
