"""What is installed from the project, installed as a course would install it: the students' wheel
(`grader bundle --public`) into a fresh venv outside the checkout, running the GitHub workflow's
grading step; the instructor's wheel; and the Gradescope zip laid out like /autograder.

The venvs reuse this environment's torch & co. through a `.pth` file (nothing is downloaded and
torch is not installed again); the grader itself comes only from the wheel or the zip."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import site
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from gradescope_spec import validate_results
from support import DEFAULT_RUBRIC, GOOD_DEF, REPO, SAMPLES, find_patterns, hidden_split_patterns, write_notebook

from grader.bundle import bundle_public
from grader.bundle.public import GRADER_ONLY, NOT_REQUIRED
from grader.data.sources import data_arrays, student_files
from grader.execute.sandbox import sandbox_support
from grader.rubric.load import load_rubric
from grader.templates import template_path

GRADING_STEP = "Grade the notebook"
# A notebook that looks for the installed grader from inside its kernel, then stops.
SNOOP = """import importlib.util, glob, sys
found = importlib.util.find_spec("grader.paths")
rubrics = [p for d in sys.path for p in glob.glob(d + "/grader/bundled/rubrics/*.toml")]
raise RuntimeError(f"SNOOP paths={found} rubrics={rubrics}")"""
# What the installed students' grader can get at through its data code.
DATA_REACH = """import hashlib, importlib.util, json, sys, tempfile
from pathlib import Path
from grader.data import sources
from grader.errors import GraderError
from grader.paths import default_rubric_path
from grader.rubric.load import load_rubric
from grader.rubric.model import DataSpec

def refused(call):
    try:
        call()
    except GraderError as error:
        return str(error)
    return None

spec = load_rubric(default_rubric_path()).data
part, arrays = sources.evaluation_part(spec), sources.student_arrays(spec)
with tempfile.TemporaryDirectory() as folder:
    sources.install_data(Path(folder), spec)
    written = {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in Path(folder).rglob("*") if p.is_file()}
print(json.dumps({
    "grader_only": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is not None],
    "all_parts": refused(lambda: sources.data_arrays(spec)),
    "other_source": refused(lambda: sources.student_arrays(DataSpec(source="digits28"))),
    "evaluation": [part.hidden, part.name, bool((part.images == arrays.x_test).all()),
                   bool((part.labels == arrays.y_test).all())],
    "written": written,
}))"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment a course machine has: no PYTHONPATH pointing at this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GITHUB_STEP_SUMMARY")}
    return {**env, **extra}


def make_venv(folder: Path, install: list[str]) -> SimpleNamespace:
    """A fresh venv; `install` is pip-installed into it without dependencies, then a .pth file
    lets it import this environment's packages (torch, ipykernel, ...) as installed deps."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    python = folder / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
                    "--no-build-isolation", "--disable-pip-version-check", "-q", *install],
                   check=True, timeout=600, env=clean_env(), cwd=folder)
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    deps = [os.path.realpath(p) for p in site.getsitepackages()]
    (Path(purelib) / "_project_dependencies.pth").write_text("\n".join(deps) + "\n")
    return SimpleNamespace(root=folder, python=python, bin=folder / "bin", purelib=Path(purelib))


@pytest.fixture(scope="module")
def student(tmp_path_factory) -> SimpleNamespace:
    work = tmp_path_factory.mktemp("student-install")
    bundle = bundle_public(DEFAULT_RUBRIC, work / "project")
    venv = make_venv(work / "venv", [str(bundle.wheel)])
    venv.bundle = bundle
    return venv


def installed(venv: SimpleNamespace, code: str, *args: str) -> str:
    done = subprocess.run([str(venv.python), "-c", code, *args], capture_output=True, text=True, timeout=300,
                          env=clean_env(), cwd=venv.root)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wheel_texts(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()}


@pytest.mark.kernel
def test_the_students_grader_runs_from_the_wheel_and_finds_its_rubric(student) -> None:
    facts = json.loads(installed(student, "import json, grader, grader.paths; print(json.dumps("
                                          "[grader.__file__, str(grader.paths.default_rubric_path()), "
                                          "grader.__version__]))"))
    module, rubric, version = (Path(facts[0]), Path(facts[1]), facts[2])
    assert module.is_relative_to(student.root) and not module.is_relative_to(REPO)
    assert rubric == student.purelib / "grader" / "bundled" / "rubrics" / "ex06.toml"
    assert version.endswith("+public")
    # torch is this environment's, not installed again
    torch_file = installed(student, "import torch; print(torch.__file__)")
    assert not Path(torch_file).is_relative_to(student.root)


def test_what_students_install_holds_no_hidden_check_and_no_solution(student) -> None:
    full = load_rubric(DEFAULT_RUBRIC)
    hidden = [check for check in full.checks if not check.public]
    assert hidden, "the default rubric has hidden checks; this test needs some"
    texts = wheel_texts(student.bundle.wheel)
    names = list(texts)
    assert not [n for n in names if n.endswith((".ipynb", ".pt"))]
    data = [n for n in names if n.endswith((".npz", ".npy", ".csv", ".gz", "ubyte"))]
    assert data and all(n.startswith("grader/data/student/") for n in data)  # the students' files (below)
    for check in hidden:
        leaks = [name for name, text in texts.items() if check.id in text or check.title in text]
        assert not leaks, f"hidden check {check.id} appears in {leaks}"
    reference = texts["grader/bundled/reference/ex06_reference.py"]
    assert "class CNN(nn.Module)" in reference  # the published architecture
    assert "def train(" not in reference and "def test(" not in reference and "optimizer.step" not in reference
    packaged = load_rubric(student.purelib / "grader" / "bundled" / "rubrics" / "ex06.toml")
    assert [c.id for c in packaged.checks] == [c.id for c in full.checks if c.public]
    assert all(c.public for c in packaged.checks)


def test_the_instructors_wheel_holds_every_rubric_and_the_reference_module(tmp_path) -> None:
    source = tmp_path / "checkout"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                                "tests", "submissions", "reports"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", str(source), "-w", str(tmp_path / "dist")],
                   check=True, timeout=600, env=clean_env(), cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    texts = wheel_texts(wheel)
    for rubric in (REPO / "rubrics").glob("*.toml"):
        assert texts[f"grader/bundled/rubrics/{rubric.name}"] == rubric.read_text("utf-8")
    assert "def train(" in texts["grader/bundled/reference/ex06_reference.py"]
    assert not [n for n in texts if n.endswith(".ipynb")]
    # the grader's data sources, not the students' files
    assert {"grader/data/mnist.py", "grader/data/split.py"} <= set(texts)
    assert not [n for n in texts if n.startswith("grader/data/student/")]
    # pyproject.toml lists every package by hand (two are mapped folders): none may be missing.
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "grader").rglob("__init__.py")}
    packaged = {".".join(Path(n).parent.parts) for n in texts if n.endswith("__init__.py")}
    assert on_disk <= packaged


def run_grading_step(venv: SimpleNamespace, checkout: Path, notebook: Path, min_score: str,
                     summary: Path | None = None) -> subprocess.CompletedProcess:
    flow = yaml.safe_load(template_path("github-classroom").read_text("utf-8"))
    name = flow["env"]["NOTEBOOK"]
    checkout.mkdir(exist_ok=True)
    shutil.copy(notebook, checkout / name)
    run = next(s["run"] for s in flow["jobs"]["grade"]["steps"] if s.get("name") == GRADING_STEP)
    env = clean_env(NOTEBOOK=name, MIN_SCORE=min_score, PATH=f"{venv.bin}{os.pathsep}{os.environ['PATH']}",
                    **({"GITHUB_STEP_SUMMARY": str(summary)} if summary else {}))
    # GitHub runs `run:` blocks with `bash -e {0}`.
    return subprocess.run(["bash", "-e", "-c", run], cwd=checkout, env=env, capture_output=True, text=True,
                          timeout=1200)


def test_nothing_students_install_holds_or_builds_the_hidden_split(student) -> None:
    full = load_rubric(DEFAULT_RUBRIC)
    with zipfile.ZipFile(student.bundle.wheel) as archive:
        blobs = {name: archive.read(name) for name in archive.namelist()}
    # No module that builds the split, and no requirement whose data set it is drawn from.
    assert not [name for name in GRADER_ONLY if name in blobs]
    [metadata] = [content.decode() for name, content in blobs.items() if name.endswith(".dist-info/METADATA")]
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires and not [r for r in requires if r.startswith(NOT_REQUIRED)]
    # Its data files are exactly the files a grading kernel gets in data/: the students' parts.
    prefix = "grader/data/student/"
    data = {name[len(prefix):]: content for name, content in blobs.items()
            if name.startswith(prefix) and not name.endswith("manifest.json")}
    assert data == dict(student_files(full.data).files)
    # No file holds a hidden image (as grey levels or float32) or the hidden labels in their order.
    assert find_patterns(blobs, hidden_split_patterns(data_arrays(full.data))) == []
    # And the installed data code has no way to them: no split module, no hidden part.
    modules = [name.removesuffix(".py").replace("/", ".") for name in GRADER_ONLY]
    reach = json.loads(installed(student, f"{DATA_REACH}\n", *modules))
    assert reach["grader_only"] == []
    assert "has no hidden split" in reach["all_parts"]
    assert "holds the data of `mnist` only" in reach["other_source"]
    assert reach["evaluation"] == [False, "the test part", True, True]  # D3 and E1 measure the test part
    assert reach["written"] == {name: hashlib.sha256(content).hexdigest() for name, content in data.items()}


@pytest.mark.kernel
def test_workflow_grading_step_with_the_installed_students_grader(student, tmp_path) -> None:
    checkout = tmp_path / "student-repo"
    summary = tmp_path / "summary.md"
    done = run_grading_step(student, checkout, SAMPLES / "fails_A2_hardcoded_slide.ipynb", "0", summary)
    assert done.returncode == 0, done.stdout + done.stderr
    public = load_rubric(DEFAULT_RUBRIC).public_only()
    suite = ET.parse(checkout / "grader-results" / "junit.xml").getroot().find("testsuite")
    failed = [case.get("name") for case in suite.iter("testcase") if case.find("failure") is not None]
    # D1/D2 pass with the recorded reference outcomes. (On a machine so loaded that the notebook's
    # own training or D3's time budget runs out, more is lost: the output below says what.)
    assert failed == ["A2.random_inputs: 2D convolution of random images and kernels"], done.stdout
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(public.checks)), "1", "0")
    assert f"Public checks: {public.max_score - 3:g} / {public.max_score:g} points." in done.stdout
    assert (checkout / "grader-results" / "feedback.html").stat().st_size > 5000
    assert f"{public.max_score - 3:g} / {public.max_score:g} points" in summary.read_text()


@pytest.mark.kernel
def test_workflow_grading_step_fails_below_min_score_and_the_kernel_cannot_see_the_grader(student, tmp_path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", GOOD_DEF, SNOOP)
    done = run_grading_step(student, tmp_path / "repo", notebook, "50%")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "below --min-score 50%" in done.stderr
    assert (tmp_path / "repo" / "grader-results" / "junit.xml").is_file()
    if sandbox_support().bubblewrap:
        assert "SNOOP paths=None rubrics=[]" in done.stdout
    else:  # without bubblewrap nothing is hidden, and the run says so
        assert "NOT ISOLATED" in done.stdout + done.stderr


@pytest.mark.kernel
def test_gradescope_zip_unpacked_like_autograder_runs_a_submission(tmp_path) -> None:
    build = subprocess.run(["make", "-s", "gradescope-zip", f"PYTHON={sys.executable}"], cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(REPO / "build" / "gradescope-autograder.zip") as archive:
        names = archive.namelist()
        archive.extractall(root / "source")
    assert {"setup.sh", "run_autograder", "pyproject.toml", "constraints.txt"} <= set(names)
    assert not [n for n in names if n.endswith(".ipynb")]
    # setup.sh's `pip install /autograder/source` (built offline with this environment's setuptools;
    # its apt-get and PyTorch download are the image's business), then run_autograder.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "--disable-pip-version-check", str(root / "source"), "-w", str(tmp_path / "dist")],
                   check=True, timeout=600, env=clean_env(), cwd=tmp_path)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    venv = make_venv(root / "venv", [str(wheel)])
    (root / "submission").mkdir()
    shutil.copy(SAMPLES / "fails_A2_hardcoded_slide.ipynb", root / "submission" / "my_notebook.ipynb")
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], capture_output=True, text=True,
                          timeout=1200, env=clean_env(AUTOGRADER_ROOT=str(root)), cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert validate_results(results) == []
    full = load_rubric(DEFAULT_RUBRIC)
    # Every check, hidden ones included, as the batch grades it: A2.random_inputs and the hidden
    # A2.padding_stride (3 + 2 points) are lost.
    lost = {t["name"].split(":")[0]: t["output"] for t in results["tests"] if t["score"] < t["max_score"]}
    assert sorted(lost) == ["A2.padding_stride", "A2.random_inputs"], lost
    assert results["score"] == full.max_score - 5
    assert results["extra_data"]["max_score"] == full.max_score
    tests = {t["name"].split(":")[0]: t for t in results["tests"]}
    assert tests["A2.padding_stride"]["visibility"] == "after_published"
    assert tests["A2.random_inputs"]["status"] == "failed" and tests["A2.random_inputs"]["visibility"] == "visible"
    # run_autograder ran /autograder/venv/bin/grader: the installed package, not this checkout
    assert Path(installed(venv, "import grader; print(grader.__file__)")).is_relative_to(venv.root)
