# ctxseg — the README's two commands are `make demo` and `make test`; both create .venv/ first.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test quicktest export clean-nbs check-nbs nbtest pytest bench book ddp pairs pages

$(STAMP): requirements-dev.txt setup.py settings.ini
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q "setuptools>=64" wheel
	$(BIN)/pip install -q -r requirements-dev.txt
	$(BIN)/pip install -q -e . --no-deps --no-build-isolation
	touch $(STAMP)

venv: $(STAMP)                       ## create .venv/ and install everything (PyPI only, no GPU needed)

demo: $(STAMP)                       ## the main job: DeepLabV3 and the strongest held method, seed 0, beside the committed verdict
	$(BIN)/ctxseg demo --out runs/demo

test: $(STAMP)                       ## everything CI runs
	bash .ci/checks

quicktest: $(STAMP)                  ## the tests that are not `slow` (no book, Chromium, papermill, torchrun, console-script processes, full-size networks): about a minute
	$(BIN)/python -m pytest -q -m "not slow" tests

export: $(STAMP)                     ## regenerate ctxseg/ from nbs/
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)                  ## strip outputs and metadata from nbs/ (keeps cell tags)
	$(BIN)/nbdev_clean

pairs: $(STAMP)                      ## the training notebooks' text twins nbs/train/*.py (jupytext), in sync both ways
	$(BIN)/jupytext --sync nbs/train/[a-z]*.ipynb

pages: $(STAMP)                      ## carry the training notebooks' prose into the executed copies the book shows
	$(BIN)/python tools/refresh_pages.py

nbtest: $(STAMP)
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: $(STAMP)
	$(BIN)/python -m pytest -q tests

book: $(STAMP)                       ## the book (Jupyter Book 1, local MathJax, warnings are errors) -> book/_build/html/
	$(BIN)/python tools/build_book.py

bench: $(STAMP)                      ## speed/memory of the baselines (CPU here; GPU when present)
	$(BIN)/ctxseg bench --size 256 256 --batch 2
