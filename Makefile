# The harness's entry points. `make e2e` is the main job; `make test` is what CI runs.
# Both build MinIO and the images on first use, so a fresh clone needs nothing else.

GO       ?= go
GOTEST   ?= $(GO) test
FUZZTIME ?= 5s
BENCH    ?= .
BENCHTIME ?= 1s

# Unit and component packages: everything but the end-to-end suite.
UNIT_PKGS := ./protocol/... ./mocks/... ./agent/... ./sandbox/... ./fixtures/... ./cmd/...

# Each fuzz target, as package:Target.
FUZZ_TARGETS := \
	./protocol/cap:FuzzDecode \
	./protocol/envelope:FuzzOpen \
	./mocks/broker:FuzzCapRequest \
	./mocks/worker:FuzzWorkerRequest

.PHONY: e2e test unit fuzz e2e-all minio images bench clean

e2e:
	$(GO) run ./cmd/isolation-gate

test: unit fuzz e2e-all

unit:
	$(GO) vet ./...
	$(GOTEST) -count=1 $(UNIT_PKGS)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GOTEST) -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

# The end-to-end suite on every backend this machine offers.
e2e-all:
	HARNESS_BACKEND=process $(GOTEST) -count=1 ./e2e
	@if docker info >/dev/null 2>&1; then \
		echo "HARNESS_BACKEND=docker $(GOTEST) -count=1 ./e2e"; \
		HARNESS_BACKEND=docker $(GOTEST) -count=1 ./e2e; \
	else \
		echo "docker: no daemon answers, the docker backend is not run"; \
	fi

minio:
	$(GO) run ./cmd/harness-prepare minio

images:
	$(GO) run ./cmd/harness-prepare images

bench:
	$(GOTEST) -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) -benchmem \
		./fixtures/minioserver ./mocks/... ./e2e

clean:
	$(GO) run ./cmd/harness-prepare clean
