# unveil: `make demo` restores an example photo, `make test` runs the tests, `make bench` measures.
# Each target creates or refreshes .venv/ first; every install goes through constraints.txt so the
# CPU torch wheel is used and no CUDA wheels are pulled.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# an environment from before MediaPipe became a declared dependency held the headless OpenCV;
	# two OpenCV builds share one cv2 folder, so the old one goes first
	$(PY) -m pip uninstall -q -y opencv-python-headless 2>/dev/null || true
	$(PIP) -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unveil demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/unveil bench --out bench

clean:
	rm -rf $(VENV) runs demo_out .pytest_cache
