# Warden. Two commands on a fresh Debian machine:
#   make run    API + worker on the embedded defaults (SQLite, local blobs, local Redis)
#   make test   vet + every test against real PostgreSQL and Redis
# Both install what is missing (scripts/deps.sh) and start services that are
# not listening (scripts/services.sh); both are idempotent.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/wardenlab/warden/api.Version=$(VERSION)
FUZZTIME ?= 60s

.PHONY: run test bench deps services assets build vet fuzz clean

deps:
	@bash scripts/deps.sh base

services: deps
	@bash scripts/services.sh

# Swagger UI and ReDoc come from npm (package-lock.json pins them) and are
# embedded into the binary; nothing is loaded from a CDN.
assets: api/docs/swagger-ui/swagger-ui-bundle.js api/docs/redoc/redoc.standalone.js

api/docs/swagger-ui/swagger-ui-bundle.js api/docs/redoc/redoc.standalone.js: package.json package-lock.json | deps
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p api/docs/swagger-ui api/docs/redoc
	cp node_modules/swagger-ui-dist/swagger-ui-bundle.js node_modules/swagger-ui-dist/swagger-ui-standalone-preset.js \
	   node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/LICENSE api/docs/swagger-ui/
	cp node_modules/redoc/bundles/redoc.standalone.js node_modules/redoc/LICENSE api/docs/redoc/
	touch api/docs/swagger-ui/swagger-ui-bundle.js api/docs/redoc/redoc.standalone.js

build: assets
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o bin/warden ./cmd/warden

run: services build
	./bin/warden dev

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

test: services assets vet
	$(GO) test -count=1 ./...

bench: services assets
	bash bench/run.sh

# Coverage-guided fuzzing of the parsers that read untrusted bytes.
fuzz: services
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./media/c2pa/
	$(GO) test -run '^$$' -fuzz '^FuzzParseJUMBF$$' -fuzztime $(FUZZTIME) ./media/c2pa/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./media/exif/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateURL$$' -fuzztime $(FUZZTIME) ./outbound/
	$(GO) test -run '^$$' -fuzz '^FuzzUpload$$' -fuzztime $(FUZZTIME) ./internal/e2e/

clean:
	rm -rf bin node_modules api/docs/swagger-ui api/docs/redoc
