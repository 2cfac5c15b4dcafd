#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image. The autograder zip
# holds the grader's source (pyproject.toml, constraints.txt, grader/, rubrics/, reference/) next to this file,
# unpacked in /autograder/source. Choose an Ubuntu 24.04 base image: the grader needs Python 3.11+.
set -euo pipefail
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv python3-pip
python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ needed: choose the Ubuntu 24.04 base image")'
python3 -m venv /autograder/venv
# PyTorch's CPU build first (no CUDA: everything runs on the CPU), at the grading pins of constraints.txt.
/autograder/venv/bin/pip install --no-cache-dir -c /autograder/source/constraints.txt \
    --index-url https://download.pytorch.org/whl/cpu torch torchvision
/autograder/venv/bin/pip install --no-cache-dir -c /autograder/source/constraints.txt /autograder/source
# Notebooks run isolated under bubblewrap where the image allows it; otherwise every report says NOT ISOLATED.
DEBIAN_FRONTEND=noninteractive apt-get install -y bubblewrap || echo "bubblewrap not installed: grading runs NOT ISOLATED"
