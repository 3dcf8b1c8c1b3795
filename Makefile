# Quick start: `make report` and `make test` on a fresh machine; nothing else is needed.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# executed in this order; the last one renders the report
NOTEBOOKS := \
	notebooks/01_data.ipynb \
	notebooks/02_architectures.ipynb \
	notebooks/03_training.ipynb \
	notebooks/04_compression.ipynb \
	notebooks/05_comparison.ipynb \
	notebooks/06_report.ipynb
CELL_TIMEOUT ?= 3600
NOTEBOOK_TIMEOUT ?= 14400
# test processes (pytest-xdist): a test's time is mostly single-threaded tf.function tracing, so two
# processes on two cores finish sooner; --dist loadfile keeps each test file on one process (the Ray
# sweep tests never start two local Ray instances at once)
TEST_WORKERS ?= 2
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test report benchmarks strip clean deliverable

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (fer)" >/dev/null
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=20

report: venv
	$(PY) -m fer_utils.render --cell-timeout $(CELL_TIMEOUT) --notebook-timeout $(NOTEBOOK_TIMEOUT) $(NOTEBOOKS)

benchmarks: venv
	$(PY) benchmarks/load_data.py

# notebooks are committed without outputs or execution counts
strip:
	$(PY) -m jupyter nbconvert --clear-output --inplace $(NOTEBOOKS)

clean:
	rm -rf build

# the size-limited deliverable: WEIGHTS="<compressed weights file(s)>" (default: the committed choice of
# BUDGET, strong or tiny: one file, or an ensemble's files best-<budget>-<i>.<codec> in their order)
BUDGET ?= strong
WEIGHTS ?= $(sort $(wildcard results/weights/best-$(BUDGET).* results/weights/best-$(BUDGET)-*))
deliverable: venv
	@test -n "$(WEIGHTS)" || { echo "no weights: pass WEIGHTS=path/to/file (see results/weights/)"; exit 2; }
	$(PY) -m fer_utils.deliverable --weights $(WEIGHTS) --out deliverable
