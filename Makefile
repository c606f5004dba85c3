# Confident EQA: `make demo` (set up + main job), `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= test
OUT ?= out/demo

.PHONY: setup demo test bench clean

$(VENV)/.installed-$(EXTRAS): setup.py package.xml
	@if [ "$$(id -u)" = "0" ] && ! dpkg -s libusb-1.0-0 >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed-$(EXTRAS)

demo: setup
	$(VENV)/bin/eqa sim show --seed 0 --out $(OUT)

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_sim.py

clean:
	rm -rf $(VENV) out build *.egg-info
