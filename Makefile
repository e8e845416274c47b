# lens_hf: `make demo` runs the whole job on a small built-in default, `make test` runs the test suite.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
DEMO ?= demo_run
# Small defaults so the demo finishes in a few minutes on a laptop CPU; override e.g. `make demo DEMO_PER_CLASS=5000`.
DEMO_PER_CLASS ?= 1000
DEMO_EPOCHS ?= 8

.PHONY: install install-test demo test lint bench clean-demo

# torch first, pinned to the CPU build: a bare `torch` requirement would pull a multi-GB CUDA build.
install:
	@$(PYTHON) -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13') else 1)" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -e .

install-test:
	@$(PYTHON) -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('2.13') else 1)" 2>/dev/null || $(PIP) install torch==2.13.0
	$(PIP) install -e ".[test]"

# The simulated set is split 80/10/10 per class: train, validation (best epoch) and a held-out test split, on which
# the model folder's metrics.json is computed; eval/ is a second evaluation, on an independent set (another seed).
demo: install
	lens-hf simulate --preset model_i --per-class $(DEMO_PER_CLASS) --seed 1 --format hf --splits 0.8,0.1,0.1 --out $(DEMO)/data
	lens-hf train --recipe vit_spt_lsa --model_preset vit-spt-lsa-stem --image_size 96 --center_crop 64 \
		--dataset $(DEMO)/data --output_dir $(DEMO)/model --num_train_epochs $(DEMO_EPOCHS) \
		--per_device_train_batch_size 64 --learning_rate 1e-3 --warmup_steps 100 --lr_step_epochs 6
	lens-hf simulate --preset model_i --per-class 300 --seed 2 --format deeplense --out $(DEMO)/independent_test_set
	lens-hf evaluate --model $(DEMO)/model --data $(DEMO)/independent_test_set --out $(DEMO)/eval
	lens-hf predict --model $(DEMO)/model $(DEMO)/independent_test_set/cdm --output $(DEMO)/predictions.csv
	@echo "demo done: see $(DEMO)/model/metrics.json (test split), $(DEMO)/eval/metrics.json (independent test set), $(DEMO)/predictions.csv"

# Two pytest-xdist workers (one per core of a 2-core machine; most tests run on one torch thread).
test: install-test
	$(PYTHON) -m pytest -q -n 2 --dist worksteal

lint:
	ruff check lens_hf recipes tests benchmarks
	ruff format --check lens_hf recipes tests benchmarks

clean-demo:
	rm -rf $(DEMO)
