# Every target sets up what it needs: `make example` and `make test` work from a bare clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# torch is pinned to the CPU wheel that the machines here keep on disk (an unpinned torch
# downloads a multi-GB CUDA build). For a CUDA build see README.md, "Install".
TORCH   ?= torch==2.13.0
OUT     ?= results/example

.PHONY: example test docs readme export clean-nbs check-sync lint bench lab clean

$(STAMP): settings.ini setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

## The main job: a GMC analysis of the built-in example (real LIVE Challenge data when ../shared/data exists)
FORMAT ?= png
example: $(STAMP)
	$(BIN)/gmc example --out $(OUT) --format $(FORMAT)

## The tests: every notebook executed (slow/cuda cells skipped) plus tests/, under pytest
test: $(STAMP)
	$(BIN)/python -m pytest -q tests

## Offline docs: render the _quarto.yml project into _docs/ with a pure-Python renderer
docs: $(STAMP)
	$(BIN)/python tools/build_docs.py

## README.md is generated from nbs/index.ipynb
readme: $(STAMP)
	$(BIN)/python tools/make_readme.py

export: $(STAMP)
	$(BIN)/nbdev_export

clean-nbs: $(STAMP)
	$(BIN)/nbdev_clean

## Fails when nbdev_export or nbdev_clean would change a tracked file
check-sync: $(STAMP)
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	@git diff --exit-code --stat -- gmc_nb nbs || (echo "module and notebooks out of sync: run make export clean-nbs and commit"; exit 1)
	@test -z "$$(git status --porcelain -- gmc_nb nbs)" || (git status --porcelain -- gmc_nb nbs; echo "nbdev_export wrote files that are not committed"; exit 1)
	$(BIN)/python tools/make_readme.py --check

## Every module imports in a fresh interpreter, and pyflakes finds nothing in gmc_nb/ (generated _modidx.py excluded)
lint: $(STAMP)
	@for f in $$(find gmc_nb -name '*.py' ! -name __init__.py ! -name _modidx.py | sort); do m=$$(echo $${f%.py} | tr / .); \
	  $(BIN)/python -c "import $$m" || { echo "$$m does not import in a fresh interpreter"; exit 1; }; done
	$(BIN)/python -m pyflakes $$(find gmc_nb -name '*.py' ! -name _modidx.py | sort)

bench: $(STAMP)
	for b in bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

lab: $(STAMP)
	$(BIN)/jupyter lab nbs

clean:
	rm -rf _docs _proc results .pytest_cache
