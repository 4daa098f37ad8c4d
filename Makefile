# RecKit — the two commands of the README:
#   make demo   set up (system packages), build in release for this CPU, run the main job
#   make test   run the whole test suite (what CI runs)
SHELL := /bin/bash
RECKIT := .build/release/reckit

.PHONY: setup build demo test test-reference bench clean

setup:
	scripts/bootstrap.sh

build: setup
	scripts/build.sh

demo: build
	$(RECKIT) demo

# The suite, then the dispatch-level suites again with the reference kernels forced (RECKIT_KERNELS), so both
# paths of every `Kernels.*` entry point run in CI.
test: setup
	swift test
	RECKIT_KERNELS=reference swift test --skip-build --filter 'RuntimeTests'

bench: build
	$(RECKIT) bench kernels
	$(RECKIT) bench data --size-mb 256 --skip-python

clean:
	swift package clean
