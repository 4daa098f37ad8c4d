# RecKit — the two commands of the README:
#   make demo   set up (system packages), build in release for this CPU, run the main job
#   make test   run the whole test suite (what CI runs)
SHELL := /bin/bash
RECKIT := .build/release/reckit

.PHONY: setup build demo test test-tools bench clean

setup:
	scripts/bootstrap.sh

build: setup
	scripts/build.sh

demo: build
	$(RECKIT) demo

# Optional Python tools for interoperability tests (skipped, and reported as skipped, when they cannot be installed).
test-tools:
	scripts/test-tools.sh

# The whole suite on the optimized kernels, then again with the reference kernels forced (RECKIT_KERNELS=reference)
# for: the dispatch tests, the pre-refactor loss trajectories, the PyTorch golden fixtures, every model's
# finite-difference gradients, RecD dedup, and the serving suites (routes, batching, reload, quantized models).
REFERENCE_SUITES := RuntimeTests|TrajectoryTests|GoldenFixtureTests|DLRMGradientTests|DCNv2GradientTests|FMGradientTests|EmbeddingCollectionTests|DedupTrainingTests|ServerTests|EngineLifecycleTests|QuantizedServingTests
test: setup test-tools
	swift test
	RECKIT_KERNELS=reference swift test --skip-build --filter '$(REFERENCE_SUITES)'

bench: build
	$(RECKIT) bench kernels
	$(RECKIT) bench data --size-mb 256 --skip-python

clean:
	swift package clean
