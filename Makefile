# keras_electra developer commands. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BACKENDS := tensorflow jax torch
# Silence TensorFlow's start-up chatter in test and demo output.
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install browser test demo clean

install: $(VENV)/.installed

# torch is pinned through .ci/constraints.txt (a CPU build); the library itself
# leaves the torch version to its users.
$(VENV)/.installed: pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c .ci/constraints.txt -e ".[dev]"
	touch $@

# tests/test_inspection.py renders a page in headless Chromium and skips
# without one: install Debian's where we can, carry on where we cannot (no
# apt, no root, no network), so the build never fails for it. sudo -n: never
# stop to ask for a password.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then sudo=""; \
		elif command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; \
		else sudo=none; fi; \
		if [ "$$sudo" != none ] && $$sudo apt-get update -q && $$sudo apt-get install -y -q chromium; then :; \
		else echo "chromium could not be installed: the browser test will skip"; fi; \
	}

# The whole suite once per backend; fails if any backend fails. Two pytest
# workers: most tests wait on tracing and compiling, not arithmetic. loadfile
# keeps a file's tests (and its module-scoped fixtures) on one worker. The
# README's "Commands" section gives the times.
TEST_WORKERS ?= 2
test: install browser
	@failed=""; \
	for backend in $(BACKENDS); do \
		echo "=== KERAS_BACKEND=$$backend"; \
		start=$$(date +%s); \
		KERAS_BACKEND=$$backend $(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile || failed="$$failed $$backend"; \
		echo "=== $$backend took $$(( $$(date +%s) - start ))s"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED on:$$failed"; exit 1; fi

# The main job: fetch the data, pre-train a small ELECTRA, fine-tune it on
# movie reviews next to the same classifier from scratch (recipes/demo.py;
# DEMO_FLAGS="--minutes 10" and so on change it).
demo: install
	KERAS_BACKEND=$${KERAS_BACKEND:-tensorflow} $(PY) recipes/demo.py $(DEMO_FLAGS)

clean:
	rm -rf $(VENV) out
