# mk/torch.mk — libtorch build of worker/torch. Include from the main
# Makefile:   include mk/torch.mk
#
#   make torch-setup   prepare .build/gotch and .build/go.torch.mod (once;
#                      the stamp makes a second run instant)
#   make torch-build   build everything with the libtorch engine
#   make torch-test    run worker/torch's tests against Python's torch
#   make torch-bench   FGSM/PGD-10 through the demo CNN, Warden vs
#                      python3-torch (bench/torch.sh, bench/RESULTS.md)
#
# LIBTORCH=/path       libtorch with lib/ and include/ (default: Debian's
#                      libtorch-dev, installed when missing), e.g. the torch
#                      directory of a CUDA PyTorch wheel
# TORCH_THREADS=n      libtorch intra-op threads for the tests (default: all)
# TORCH_GOFLAGS        extra go flags (default -p=1: the libtch C++ unit
#                      alone needs ~1-2 GB RAM while compiling)

LIBTORCH ?=
TORCH_THREADS ?=
TORCH_GOFLAGS ?= -p=1
TORCH_PKGS ?= ./...

TORCH_BUILD_DIR := .build
TORCH_MODFILE := $(TORCH_BUILD_DIR)/go.torch.mod
# The stamp name carries LIBTORCH, so switching libtorch re-runs the setup.
TORCH_STAMP := $(TORCH_BUILD_DIR)/torch-setup$(subst /,_,$(LIBTORCH)).stamp
TORCH_GO := go
TORCH_GOCMD = $(TORCH_GO) $(1) -modfile=$(TORCH_MODFILE) -tags torch $(TORCH_GOFLAGS)

TORCH_SETUP_DEPS := scripts/torch/setup scripts/torch/patchlibtch/main.go \
	$(wildcard scripts/torch/ext/*) go.mod

.PHONY: torch-setup torch-build torch-test torch-bench torch-clean

torch-setup: $(TORCH_STAMP)

$(TORCH_STAMP): $(TORCH_SETUP_DEPS)
	LIBTORCH='$(LIBTORCH)' scripts/torch/setup
	@touch $@

torch-build: $(TORCH_STAMP)
	$(call TORCH_GOCMD,build) $(TORCH_PKGS)

torch-test: $(TORCH_STAMP)
	scripts/torch/test-setup
	TORCH_THREADS='$(TORCH_THREADS)' TORCH_TEST_REQUIRE_PYTHON=1 \
		$(call TORCH_GOCMD,test) -count=1 -v ./worker/torch/

torch-bench: $(TORCH_STAMP)
	TORCH_THREADS='$(or $(TORCH_THREADS),1)' bash bench/torch.sh

torch-clean:
	rm -rf $(TORCH_BUILD_DIR)/gotch $(TORCH_BUILD_DIR)/go.torch.* $(TORCH_BUILD_DIR)/torch-setup*.stamp
