# ml-gateway — the commands a person types. CMake does the building.
#
#   make          build build/ml-gateway (release, hardened)
#   make run      install what is missing, build, start a private PostgreSQL
#                 under ./var/ (unless DATABASE_URL is set) and serve on :8080
#   make test     install what is missing, build with ASan+UBSan, run every test
#   make lint     clang-format, clang-tidy, cppcheck, shellcheck and hadolint
#   make docs     regenerate README.md's settings table from the code
#   make fuzz     build the libFuzzer targets of tests/fuzz/ with clang (build/fuzz/) and
#                 run each for FUZZ_SECONDS (60; `make fuzz FUZZ_SECONDS=600`)
#   make schemathesis  requests generated from openapi.yaml (Schemathesis) against a
#                 gateway of its own, longer than `make test` runs them: a random seed
#                 (SCHEMATHESIS_SEED) and SCHEMATHESIS_EXAMPLES (50) examples per operation
#   make bench    benchmarks: POST/GET against pgbench and bare libmicrohttpd, SigV4 cost
#                 (results in bench/results/)
#   make clean    remove build outputs (./var/ is kept; `make distclean` too)

BUILD      ?= build
TEST_BUILD ?= build/asan
VENV       ?= build/venv
TFVENV     ?= build/tfvenv
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_BUILD ?= build/fuzz
FUZZ_SECONDS ?= 60
SCHEMATHESIS_SEED ?= random
SCHEMATHESIS_EXAMPLES ?= 50
MAKEFLAGS  += --no-print-directory
CMAKE_ARGS ?=

.PHONY: all build run test lint fuzz schemathesis docs format bench clean distclean deps venv jobs-venv

all: build

deps:
	@scripts/deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DMLGW_TESTS=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build jobs-venv
	@scripts/run.sh

# The example jobs' Python (PyTorch) for make run's local jobs.
jobs-venv:
	@scripts/venv.sh build/jobs-venv examples/requirements.txt

venv:
	@scripts/venv.sh $(VENV) tests/requirements.txt
	@scripts/venv.sh $(TFVENV) tests/deploy/requirements.txt

test:
	@scripts/deps.sh test
	@$(MAKE) --no-print-directory venv
	@cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMLGW_SANITIZE=ON \
	  -DMLGW_VENV=$(abspath $(VENV)) -DMLGW_TFVENV=$(abspath $(TFVENV)) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(TEST_BUILD) -j $(JOBS)
	@cd $(TEST_BUILD) && ctest --output-on-failure -j $(JOBS)

lint:
	@scripts/deps.sh lint
	@cmake -S . -B build/lint -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@scripts/lint.sh build/lint

fuzz:
	@scripts/deps.sh fuzz
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
	  -DMLGW_FUZZ=ON -DMLGW_TESTS=OFF $(CMAKE_ARGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

schemathesis: build
	@$(MAKE) --no-print-directory venv
	@MLGW_BIN=$(abspath $(BUILD))/ml-gateway $(VENV)/bin/python tests/schemathesis/run.py \
	  --seed $(SCHEMATHESIS_SEED) --max-examples $(SCHEMATHESIS_EXAMPLES)

docs: build
	@scripts/docs.sh $(BUILD)/ml-gateway

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

bench: build
	@scripts/deps.sh bench
	@bench/run.sh
	@bench/sigv4.sh >bench/results/sigv4.tmp && mv bench/results/sigv4.tmp bench/results/sigv4-latest.txt
	@cat bench/results/sigv4-latest.txt
	@bench/events.sh
	@bench/commits.sh
	@bench/local.sh
	@bench/list.sh
	@bench/pipelines.sh

clean:
	rm -rf $(BUILD)

distclean: clean
	@if [ -d var/pg ]; then scripts/pg.sh stop var/pg || true; fi
	rm -rf var
