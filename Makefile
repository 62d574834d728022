# LLM Building Blocks: the two commands a user needs, and maintenance targets.
#   make lab     set up the environment (first time only) and open JupyterLab on lectures/
#   make test    set up the environment (first time only) and run every test, notebooks included
# Set-up needs only Python >= 3.10 and pip. Variables you may override:
#   PYTHON=python3.12        the interpreter that creates the virtual environment
#   VENV=path/to/venv        use another (or an existing) virtual environment
#   LAB_ARGS='--port 8890'   extra options for JupyterLab (make lab, make lab-solutions)
#   TORCH='torch==2.13.0'    the torch requirement installed first; GPU users: install their own torch
#                            into the venv first (or pass e.g. TORCH='torch --index-url <your CUDA index>')
#   CHROMIUM=/usr/bin/chromium  the browser of make browser-test (Debian's chromium package)
# Maintainers and instructors: make slides (offline decks; needs npm once) and make browser-test.

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed
# JupyterLab refuses to start as root unless told; containers and CI often run as root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)
# The generated lectures only: a student's own copies in lectures/ are theirs, not the course's to test.
LECTURES := $(patsubst solutions/%,lectures/%,$(wildcard solutions/[0-9][0-9]_*.ipynb))
NBVAL := --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg
# Two pytest workers with one torch thread each use the two cores of a laptop or CI runner without
# oversubscribing them (two workers with two OpenMP threads each can slow training many times over).
PARALLEL := OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadscope
FORCE ?=
LAB_ARGS ?=

.PHONY: lab test setup unit notebooks lectures lint execute lab-solutions recipes robustness slides browser-test clean \
	course-lm course-cot course-vqa course-nsp course-sweep course-icl

lab: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=lectures $(ROOT_FLAG) $(LAB_ARGS)

# The strict pass runs on this CPU's own kernels, the lax pass on ATEN_CPU_CAPABILITY=default (no vector
# instructions, other rounding): every run proves the notebooks' claims on two numeric paths.
# The docstring examples run on their own: --doctest-modules over tests/ would import both conftest.py
# files (tests/, tests/browser/) as one module named conftest and stop at collection.
test: $(STAMP)
	$(BIN)/ruff check utils tests solutions
	$(PARALLEL) -m 'not recipe' tests
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest --doctest-modules utils
	$(PARALLEL) --nbval $(NBVAL) solutions
	ATEN_CPU_CAPABILITY=default $(PARALLEL) --nbval-lax $(NBVAL) $(LECTURES)

# Retrain the recipes of the shipped checkpoints from scratch (course LM, NSP, VQA, chain-of-thought,
# in-context learner) and check each still reaches its stated quality: minutes of CPU, so not in
# `make test`; CI runs it, and so should whoever changes a recipe in utils/.
recipes: $(STAMP)
	$(PARALLEL) -m recipe tests

# Re-execute every solutions notebook under other seeds, CPU kernel paths and thread counts and report
# failing cells and the tightest claims (utils/robustness.py). MATRIX=full runs all 12 combinations;
# NB=solutions/04_....ipynb limits it to one notebook. The report goes to build/robustness/.
MATRIX ?= ci
robustness: $(STAMP)
	$(BIN)/python -m utils.robustness --matrix $(MATRIX) $(NB)

setup: $(STAMP)

# First time only (again when pyproject.toml changes): venv, torch (CPU build unless you bring your
# own), then the course itself in editable mode with its test tools.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python >= 3.10 is needed, found " + sys.version.split()[0])'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install $(TORCH)
	$(BIN)/python -m pip install -e ".[test]"
	touch $(STAMP)

unit: $(STAMP)
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --doctest-modules utils

notebooks: $(STAMP)
	$(BIN)/python -m pytest --nbval $(NBVAL) solutions
	$(BIN)/python -m pytest --nbval-lax $(NBVAL) $(LECTURES)

# Regenerate lectures/ from solutions/. Lectures someone has edited or run are kept unless FORCE=1.
lectures: $(STAMP)
	$(BIN)/python -m utils.authoring $(if $(FORCE),--force,)

# Re-execute the solutions notebooks in place (outputs stored), then regenerate lectures/.
# NB=solutions/01_building_blocks.ipynb limits it to one notebook. One torch thread, as `make test` runs
# them: the number of threads changes the rounding of training, so the stored numbers are CI's numbers.
NB ?= solutions/[0-9][0-9]_*.ipynb
execute: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	  --ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=300 $(NB)
	$(BIN)/python -m utils.authoring

lint: $(STAMP)
	$(BIN)/ruff check utils tests solutions

# Re-make the course language model's checkpoint (utils/checkpoints/course_lm.pt), under a minute
# on a laptop CPU. Only needed when its recipe in utils/models.py changes; commit the result.
course-lm: $(STAMP)
	$(BIN)/python -m utils.models

# For instructors: one offline reveal.js deck per lecture in build/slides/ (utils/slides.py), made from
# solutions/ (outputs stored). reveal.js and MathJax come from npm once (package.json, package-lock.json)
# and are copied beside the decks: nothing is fetched when a deck is opened.
slides: $(STAMP) node_modules/.package-lock.json
	$(BIN)/python -m utils.slides --out build/slides

node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "make slides needs npm (Node.js) once, to fetch reveal.js and MathJax:"\
	  "install Node.js (e.g. apt-get install npm), then run make slides again"; exit 1; }
	npm ci --no-audit --no-fund
	@touch $@

# Every lecture in JupyterLab in headless Chromium (all cells run, every widget moved), and every deck
# opened offline (tests/browser/; screenshots in build/browser-test/). Needs Debian's chromium and the
# browser extra (Playwright for Python, installed here); `make test` does not need any of it.
CHROMIUM ?= /usr/bin/chromium
BROWSER_STAMP := $(VENV)/.browser-installed
$(BROWSER_STAMP): $(STAMP)
	$(BIN)/python -m pip install -e ".[test,browser]"
	touch $(BROWSER_STAMP)

browser-test: $(BROWSER_STAMP) slides
	@test -x $(CHROMIUM) || { echo "make browser-test needs Chromium at $(CHROMIUM):"\
	  "apt-get install -y chromium (or pass CHROMIUM=/path/to/chromium)"; exit 1; }
	COURSE_BROWSER_TEST=1 COURSE_CHROMIUM=$(CHROMIUM) $(BIN)/python -m pytest -p no:cacheprovider tests/browser

# Re-make Lecture 8's chain-of-thought models (utils/checkpoints/chain_of_thought.pt), about half a minute of
# CPU. Only needed when the recipe in utils/chain_of_thought.py changes; commit the result.
course-cot: $(STAMP)
	$(BIN)/python -m utils.chain_of_thought

# Re-make Lecture 7's picture-question model (utils/checkpoints/picture_questions.pt), about a minute of CPU.
# Only needed when the recipe in utils/multimodal.py changes; commit the result.
course-vqa: $(STAMP)
	$(BIN)/python -m utils.multimodal

# Re-make Lecture 3's next-sentence classifier (utils/checkpoints/nsp.pt), about 20 s of CPU. Only needed
# when the recipe in utils/nsp.py changes; commit the result.
course-nsp: $(STAMP)
	$(BIN)/python -m utils.nsp

# Re-make Lecture 10's hyperparameter sweep (utils/checkpoints/hyperparameter_sweep.json), 81 short trainings,
# a few minutes of CPU on one thread. Only needed when the recipe in utils/hyperparameters.py changes; commit it.
course-sweep: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m utils.hyperparameters

# Re-make Lecture 9's in-context learner (utils/checkpoints/in_context.pt), a few minutes of CPU on one thread.
# Only needed when the recipe in utils/in_context.py changes; commit the result.
course-icl: $(STAMP)
	$(BIN)/python -m utils.in_context

# For instructors: the answer key.
lab-solutions: $(STAMP)
	$(BIN)/jupyter lab --ServerApp.root_dir=solutions $(ROOT_FLAG) $(LAB_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info node_modules
