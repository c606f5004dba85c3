# Confident EQA: `make demo` (set up + main job), `make test` (set up + tests).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_EXTRAS ?= rerun
TEST_EXTRAS ?= test,hf,clip
OUT ?= out/demo

.PHONY: demo test bench clean

# One marker per set of extras: re-installs when setup.py changes.
$(VENV)/.installed-%: setup.py package.xml
	@if [ "$$(id -u)" = "0" ] && ! dpkg -s libusb-1.0-0 >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

demo: $(VENV)/.installed-$(DEMO_EXTRAS)
	$(VENV)/bin/eqa explore --seed 0 --out $(OUT)

test: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest -q

bench: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) bench/bench_sim.py
	$(PY) bench/bench_mapping.py
	$(PY) bench/bench_explore.py

clean:
	rm -rf $(VENV) out build *.egg-info
