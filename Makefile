# The two commands of the quick start: `make run` and `make test`.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build run hpo-example test test-asan fuzz bench clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# A short look at the example model (info, run, bench), then `hepml serve` on
# examples/model_repository in the foreground (ports 8000/8001/8002) after
# printing curl commands to try against it.
run: build
	@bash scripts/run-example.sh $(BUILD_DIR)

# The hyperparameter-optimisation example (examples/hpo): a synthetic
# jet-tagging dataset, then `hepml hpo run` of a 20-trial study (random search
# with ASHA pruning, 2 trials at a time; a few minutes on 2 cores), then the
# best trial. Starts from scratch each time (the example's registry and trial
# folders are removed first).
hpo-example: build
	@cd examples/hpo && rm -rf hepml-registry hepml-hpo && /usr/bin/python3 make_dataset.py --out data && \
	  $(abspath $(BUILD_DIR))/src/cli/hepml hpo run study.yaml && \
	  $(abspath $(BUILD_DIR))/src/cli/hepml hpo status jet-mlp && \
	  $(abspath $(BUILD_DIR))/src/cli/hepml hpo best jet-mlp

# Every test, then the sanitizer run below (SANITIZE=0 skips it locally), then
# a short fuzzing run (FUZZ=0 skips it; FUZZ_SECONDS per target).
SANITIZE ?= 1
FUZZ ?= 1
FUZZ_SECONDS ?= 20
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1200
ifeq ($(SANITIZE),1)
	@$(MAKE) --no-print-directory test-asan
endif
ifeq ($(FUZZ),1)
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
endif

# The ONNX backend suite (and the extra cases), the CLI's bad-input checks and the
# kernels' unit tests under AddressSanitizer and UndefinedBehaviorSanitizer: a
# RelWithDebInfo build of just the `hepml` command (inference core only) and `ops_test`. Any report
# fails the run (UBSan does not recover; ASan aborts; leaks are reported).
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-asan: deps
	@cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DHEPML_SANITIZE=ON -DHEPML_SERVICES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(SAN_BUILD_DIR) -j $(JOBS) --target hepml ops_test
	@cd $(SAN_BUILD_DIR) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 2400 \
	  -R '^(conformance_extra_cases|conformance_backend_suite|cli_bad_input)$$'
	@$(SAN_ENV) $(SAN_BUILD_DIR)/src/ops/ops_test --gtest_brief=1

# libFuzzer on every parser of untrusted bytes (npy/npz, CSV, ROOT TTree and
# RNTuple, the HTTP infer request, ONNX models): a clang build in
# $(FUZZ_BUILD_DIR) with ASan+UBSan, replay of fuzz/regressions and
# fuzz/corpus, then FUZZ_SECONDS of fuzzing per target. Any finding fails.
FUZZ_BUILD_DIR ?= build-fuzz
fuzz: deps
	@FUZZ_BUILD_DIR=$(FUZZ_BUILD_DIR) JOBS=$(JOBS) CMAKE_FLAGS="$(CMAKE_FLAGS)" bash fuzz/run.sh $(FUZZ_SECONDS)

# Side-by-side benchmark of hepml, ONNX Runtime and PyTorch on the HEP model set
# (~8 min on 2 cores; BENCH_FLAGS=--quick for a ~1 min smoke run). Rewrites the
# hep-models section of docs/benchmarks.md; raw data in $(BUILD_DIR)/bench.json.
# Not part of `make test`.
BENCH_FLAGS ?=
bench: build
	@/usr/bin/python3 bench/run_benchmarks.py --hepml $(BUILD_DIR)/src/cli/hepml --work $(BUILD_DIR)/bench-work --json $(BUILD_DIR)/bench.json $(BENCH_FLAGS)

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR) $(FUZZ_BUILD_DIR) $(BUILD_DIR)-install-test
