# Two commands on a fresh machine: `make grade` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# Notebooks graded at once: chosen from the cores and the memory (grader grade --jobs auto); or JOBS=2.
JOBS   ?= auto

.PHONY: grade test lint samples clean sandbox chromium gradescope-zip student-wheel

# Notebooks run isolated under bubblewrap (grader/execute/sandbox.py). Install it where we can (as
# root, with apt-get); elsewhere say how, and go on: the grader then warns in every report.
sandbox:
	@command -v bwrap >/dev/null 2>&1 \
	|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	     && { apt-get install -y -qq bubblewrap >/dev/null 2>&1 \
	          || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; } ; } \
	|| echo "WARNING: bubblewrap (bwrap) is not installed, so notebooks will run WITHOUT isolation." \
	        "Install it (apt-get install bubblewrap / dnf install bubblewrap) and run make again."

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# constraints.txt pins torch for grading; the package itself accepts any torch>=2.1.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,dask]'
	touch $(STAMP)

grade: $(STAMP) sandbox
	$(BIN)/grader grade submissions --rubric rubrics/ex06.toml --out reports --jobs $(JOBS)

test: $(STAMP) sandbox
	$(BIN)/python -m pytest

# The browser tests need Debian's chromium; they are skipped (saying so) where it is missing,
# except in CI (CI=true), where .ci/run installs it first and a missing browser fails them.
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

lint: $(STAMP)
	$(BIN)/ruff check grader tests

samples: $(STAMP)
	$(BIN)/python tests/make_samples.py

# The zip to upload as a Gradescope autograder: setup.sh and run_autograder at its root, the
# grader's source beside them (see README, "Gradescope"); of reference/ only the module, no notebook.
gradescope-zip:
	rm -rf build/gradescope && mkdir -p build/gradescope/reference
	cp -r grader rubrics pyproject.toml README.md constraints.txt build/gradescope/
	cp reference/ex06_reference.py build/gradescope/reference/
	cp grader/templates/gradescope/setup.sh grader/templates/gradescope/run_autograder build/gradescope/
	find build/gradescope -name __pycache__ -prune -exec rm -rf {} +
	cd build/gradescope && $(PYTHON) -m zipfile -c ../gradescope-autograder.zip *
	@echo "Wrote build/gradescope-autograder.zip"

# The package students and their CI install: public checks only (see README, "Installing").
student-wheel: $(STAMP)
	$(BIN)/grader bundle --public rubrics/ex06.toml --out build/student

clean:
	rm -rf reports .pytest_cache build tests/artifacts
