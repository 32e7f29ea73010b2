# The harness's entry points. `make e2e` is the main job; `make test` is what CI runs.
# Both build MinIO, the harness's programs and the images on first use, so a fresh clone
# needs nothing else.

GO        ?= go
GOTEST    ?= $(GO) test
FUZZTIME  ?= 5s
BENCH     ?= .
BENCHTIME ?= 1s
BENCHCOUNT ?= 1

# Every package but the end-to-end suite itself, which the gate runs.
UNIT_PKGS = $(shell $(GO) list ./... | grep -v '/e2e$$')

# Each fuzz target, as package:Target.
FUZZ_TARGETS := \
	./protocol/cap:FuzzDecode \
	./protocol/envelope:FuzzOpen \
	./mocks/broker:FuzzCapRequest \
	./mocks/worker:FuzzWorkerRequest

.PHONY: e2e test unit fuzz e2e-all tools minio images bench clean

# The main job: the e2e suite on the default backend (HARNESS_BACKEND, default auto),
# ending with one verdict per stage-3 step.
e2e: tools
	$(GO) run ./cmd/isolation-gate

# What CI runs: vet, the unit and component tests (the mutation self-check among them),
# each fuzz target briefly, then the e2e suite on every backend this machine offers.
test: tools unit fuzz e2e-all

unit:
	$(GO) vet ./...
	@echo "$(GOTEST) -count=1 -timeout=30m <every package but ./e2e>"
	@$(GOTEST) -count=1 -timeout=30m $(UNIT_PKGS)

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GOTEST) -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg; \
	done

e2e-all:
	HARNESS_BACKEND=process $(GO) run ./cmd/isolation-gate
	@if docker info >/dev/null 2>&1; then \
		echo "HARNESS_BACKEND=docker $(GO) run ./cmd/isolation-gate"; \
		HARNESS_BACKEND=docker $(GO) run ./cmd/isolation-gate; \
	else \
		echo "docker: no daemon answers, so the docker backend is not run"; \
	fi

# The pinned MinIO and mail catcher, built once into .cache/bin before any test waits on
# them: the first MinIO build takes minutes.
tools:
	$(GO) run ./cmd/harness-prepare tools

minio:
	$(GO) run ./cmd/harness-prepare minio

images:
	$(GO) run ./cmd/harness-prepare images

# The mock stack's benchmarks run in one test binary with their floors (MinIO's start, a
# bare put and get) so that they compare; BENCHMARKS.md has the medians and how to take
# them (BENCHCOUNT=10 and benchstat). Then the e2e suite's, through real sandboxes.
bench:
	$(GOTEST) -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) -count=$(BENCHCOUNT) \
		-benchmem ./mocks/...
	$(GOTEST) -run='^$$' -bench='$(BENCH)' -benchtime=3x -count=$(BENCHCOUNT) ./e2e

clean:
	$(GO) run ./cmd/harness-prepare clean
