# Thin wrapper over CMake. Everything real lives in CMakeLists.txt.
#   make run     install deps, build, run the daemon on the embedded default
#   make test    every test: plain build, then under ASan+UBSan
#   make fuzz    clang libFuzzer build, each target FUZZ_SECONDS (20) from its seeds
#   make build   configure and build into build/
#   make check   validate the shipped protocols
#   make bench   Release build, run the benchmarks
#   make test-image  build the Docker image with podman and test it
#   make clean   remove the build folders (never data/)

JOBS        ?= 2
BUILD       ?= build
ASAN_BUILD  ?= build-asan
BENCH_BUILD ?= build-release
FUZZ_BUILD  ?= build-fuzz
FUZZ_SECONDS ?= 20
CMAKE_ARGS  ?=

CTEST = ctest --output-on-failure --no-tests=error -j$(JOBS)
ASAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
           UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

.PHONY: all deps build run test test-plain test-asan test-image check bench fuzz clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)
	cmake --build $(BUILD) -j$(JOBS)

run: build
	mkdir -p data
	./$(BUILD)/strigil run

test: deps
	@$(MAKE) --no-print-directory test-plain
	@$(MAKE) --no-print-directory test-asan

test-plain: build
	cd $(BUILD) && $(CTEST)

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DSTRIGIL_SANITIZE=ON $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && $(ASAN_ENV) $(CTEST)

fuzz: deps
	cmake -S . -B $(FUZZ_BUILD) -DSTRIGIL_FUZZ=ON -DCMAKE_C_COMPILER=clang $(CMAKE_ARGS)
	cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)

test-image:
	tests/docker/test_image.sh

check: build
	./$(BUILD)/strigil check scripts/protocols/*.lua

bench: deps
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BENCH_BUILD) -j$(JOBS)
	@set -e; found=0; \
	for b in $(BENCH_BUILD)/bench/bench_*; do \
	  [ -f "$$b" ] && [ -x "$$b" ] || continue; \
	  found=1; echo "== $$b"; "$$b"; \
	done; \
	[ $$found = 1 ] || echo "bench: no benchmarks built"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(BENCH_BUILD) $(FUZZ_BUILD)
