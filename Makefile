# The two commands of the quick start: `make run` and `make test`.
BUILD_DIR ?= build
SAN_BUILD_DIR ?= build-asan
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test test-asan bench clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job available so far: describe and run the bundled example model.
run: build
	@bash scripts/run-example.sh $(BUILD_DIR)

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 1200

# The same tests under AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DHEPML_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) > /dev/null
	@cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	@cd $(SAN_BUILD_DIR) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 2400 -E '^(models_|info_all_suite_models)'


# Side-by-side benchmark of hepml, ONNX Runtime and PyTorch on the HEP model set
# (~8 min on 2 cores; BENCH_FLAGS=--quick for a ~1 min smoke run). Rewrites the
# hep-models section of docs/benchmarks.md; raw data in $(BUILD_DIR)/bench.json.
# Not part of `make test`.
BENCH_FLAGS ?=
bench: build
	@/usr/bin/python3 bench/run_benchmarks.py --hepml $(BUILD_DIR)/src/cli/hepml --work $(BUILD_DIR)/bench-work --json $(BUILD_DIR)/bench.json $(BENCH_FLAGS)

clean:
	rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR)
