# Confident EQA: `make demo` (set up + main job), `make test` (set up + every test; CI runs it),
# `make test-fast` (the unit tests only, in two processes: no end-to-end runs, training, evaluations or installs;
# under a minute).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO_EXTRAS ?= rerun,torch
TEST_EXTRAS ?= test,hf,clip,ros
OUT ?= out/demo

.PHONY: demo test test-fast bench calibrations bench-stopping clean
EQA := $(VENV)/bin/eqa
CAL_N ?= 200
TEST_N ?= 200

APT_PACKAGES := libusb-1.0-0 cmake g++ make

# One marker per set of extras: re-installs when setup.py changes.
$(VENV)/.installed-%: setup.py package.xml
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && [ "$$(id -u)" = "0" ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$*]"
	touch $@

# The ROS 2 interfaces (AskQuestion; NavigateToPose and TFMessage where no wheel has them), built into the venv.
$(VENV)/.interfaces: $(VENV)/.installed-$(TEST_EXTRAS) $(shell find interfaces -type f)
	interfaces/build_interfaces.sh $(VENV)
	touch $@

demo: $(VENV)/.installed-$(DEMO_EXTRAS)
	$(EQA) demo --out $(OUT)

test: $(VENV)/.installed-$(TEST_EXTRAS) $(VENV)/.interfaces
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed-$(TEST_EXTRAS)
	$(PY) -m pytest -q -n 2 -m "not (integration or training or evaluation or packaging)"

bench: $(VENV)/.installed-$(TEST_EXTRAS) $(VENV)/.interfaces
	$(PY) bench/bench_sim.py
	$(PY) bench/bench_mapping.py
	$(PY) bench/bench_explore.py
	$(PY) bench/bench_ros.py

# Reproduce the shipped conformal calibrations of the built-in VLM for a camera preset (CAMERA=hm-eqa:
# vlm/calibrations/semantic-eps*.json; CAMERA=realsense: semantic-realsense-eps*.json): calibration-split
# questions of two dataset seeds (2 x CAL_N) run to their budget with semantic exploration, then
# `eqa calibrate` on both folders pooled. The seeds are sim.questions.CALIBRATION_SEEDS (never used to choose a
# setting; tests/test_questions.py checks that they match).
CAL_SEEDS := 10 11
CAMERA ?= hm-eqa
CAL_TAG := $(if $(filter hm-eqa,$(CAMERA)),,-$(CAMERA))
CAL_DIR := out/calib_semantic$(subst -,_,$(CAL_TAG))
calibrations: $(VENV)/.installed-$(DEMO_EXTRAS)
	for s in $(CAL_SEEDS); do \
		$(EQA) dataset make --split calib --n $(CAL_N) --seed $$s --out out/datasets/calib-$(CAL_N)-s$$s.jsonl && \
		$(EQA) bench --dataset out/datasets/calib-$(CAL_N)-s$$s.jsonl --method semantic --no-early-stop --workers 2 \
			--out $(CAL_DIR)_s$$s sim.camera.preset=$(CAMERA) || exit 1; done
	for eps in 0.05 0.1 0.2; do \
		$(EQA) calibrate --records $(foreach s,$(CAL_SEEDS),$(CAL_DIR)_s$(s)) --eps $$eps \
			--out vlm/calibrations/semantic$(CAL_TAG)-eps$$eps.json; done

# Issue 9 evaluation: test-split questions run to their budget, every stop policy replayed, plus a live
# conformal run (eps 0.1) checked against the replay.
bench-stopping: calibrations
	$(EQA) dataset make --split test --n $(TEST_N) --seed 0 --out out/datasets/test-$(TEST_N).jsonl
	$(EQA) bench --dataset out/datasets/test-$(TEST_N).jsonl --method semantic --no-early-stop --workers 2 \
		--out out/test_semantic
	$(EQA) bench --dataset out/datasets/test-$(TEST_N).jsonl --method semantic --workers 2 \
		--out out/test_semantic_conformal0.1 stop.policy=conformal stop.eps=0.1
	$(PY) bench/bench_stopping.py --calib $(foreach s,$(CAL_SEEDS),$(CAL_DIR)_s$(s)) --test out/test_semantic \
		--live 0.1=out/test_semantic_conformal0.1

clean:
	rm -rf $(VENV) out build *.egg-info
