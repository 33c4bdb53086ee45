# Warden. Two commands on a fresh Debian machine:
#   make run    API + worker on the embedded defaults (SQLite, local blobs, local
#               Redis) with demo models ready to attack
#   make test   vet + every test against real PostgreSQL, Redis and libtorch
# Both install what is missing (scripts/deps.sh: redis-server, postgresql,
# npm, libtorch-dev, python3-torch, wordnet-base), adapt gotch to the
# installed libtorch (mk/torch.mk), and start services that are not
# listening (scripts/services.sh); both are idempotent.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/wardenlab/warden/api.Version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: run test bench deps services assets build build-pure vet fuzz clean s3-setup

include mk/torch.mk
.DEFAULT_GOAL := build

deps:
	@bash scripts/deps.sh torch

services: deps
	@bash scripts/services.sh

# Swagger UI is embedded from a Go module (github.com/swaggest/swgui) in
# every build. ReDoc comes from npm (package-lock.json pins it) and is
# embedded when this has run; without it /redoc redirects to /docs.
# Nothing is loaded from a CDN.
assets: api/docs/redoc/redoc.standalone.js

api/docs/redoc/redoc.standalone.js: package.json package-lock.json | deps
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p api/docs/redoc
	cp node_modules/redoc/bundles/redoc.standalone.js node_modules/redoc/LICENSE api/docs/redoc/
	touch api/docs/redoc/redoc.standalone.js

# bin/warden with the libtorch worker (cgo; only worker/torch links gotch).
build: deps assets torch-setup
	$(call TORCH_GOCMD,build) -ldflags "$(LDFLAGS)" -o bin/warden ./cmd/warden

# The same binary without libtorch: the API (and a worker that cannot run
# model jobs) with CGO_ENABLED=0, no C toolchain needed.
build-pure: assets
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/warden-pure ./cmd/warden

run: services build
	./bin/warden dev

vet: torch-setup
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	CGO_ENABLED=0 $(GO) vet ./...
	$(call TORCH_GOCMD,vet) ./...

# The S3-compatible server the S3 blob store tests run against: SeaweedFS's
# weed, built once from the Go module proxy into ~/.cache/warden/bin.
s3-setup:
	@bash scripts/s3-setup

# One pass over every package with the libtorch engine (the libtch C++ is
# compiled once, with -p=1 to bound memory), plus the CGO-free build.
test: services deps assets torch-setup s3-setup vet
	CGO_ENABLED=0 $(GO) build ./...
	$(call TORCH_GOCMD,build) ./...
	scripts/torch/test-setup
	TORCH_TEST_REQUIRE_PYTHON=1 WARDEN_TEST_REQUIRE_SANDBOX=1 WARDEN_TEST_REQUIRE_NODE=1 WARDEN_TEST_REQUIRE_CHROMIUM=1 WARDEN_TEST_REQUIRE_S3=1 $(GO) test -modfile=$(TORCH_MODFILE) -tags torch -count=1 -timeout 20m ./...

# Queue throughput (Warden vs raw asynq), attack speed (Warden vs
# python3-torch), synchronous predictions (latency, open-loop rate,
# idle cost), API reads under load and a million queued jobs, analyses
# and worker scaling; results and how to read them: bench/RESULTS.md.
bench: services deps assets torch-setup
	bash bench/run.sh
	bash bench/torch.sh
	bash bench/predict.sh
	bash bench/api.sh
	bash bench/analysis.sh
	bash bench/scale.sh

# Coverage-guided fuzzing of the parsers that read untrusted bytes.
fuzz: services
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./media/c2pa/
	$(GO) test -run '^$$' -fuzz '^FuzzParseJUMBF$$' -fuzztime $(FUZZTIME) ./media/c2pa/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./media/exif/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateURL$$' -fuzztime $(FUZZTIME) ./outbound/
	$(GO) test -run '^$$' -fuzz '^FuzzUpload$$' -fuzztime $(FUZZTIME) ./internal/e2e/

clean:
	rm -rf bin node_modules api/docs/redoc
