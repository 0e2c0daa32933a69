# sockdrain. Every target installs what it needs; run as root for the kernel tests.
GO      ?= go
BIN     ?= bin/sockdrain
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get
# Debian packages each target needs.
GEN_DEPS  := clang llvm libbpf-dev
VMTEST_DEPS := qemu-system-x86 lz4 zstd xz-utils
# The real servers the keep-alive tests drain, and ss (cmd/sockdrain/keepalive_linux_test.go).
TEST_DEPS := nginx-light haproxy iproute2

.PHONY: build test generate check-generate bench demo vmtest vagrant-validate lint fuzz deps-generate deps-vmtest deps-test

build:
	$(GO) build -o $(BIN) ./cmd/sockdrain

## test: unit tests everywhere, kernel tests (root) each in its own netns.
## Packages run one at a time (-p 1): BPF programs are host-wide, and the
## gate tests check that nothing of theirs is left in the kernel.
## deps-test installs nginx, HAProxy and ss, which the keep-alive tests use.
test: deps-test
	$(GO) test -count=1 -p 1 -timeout 20m ./...

## generate: compile bpf/*.c with bpf2go; the output is committed.
generate: deps-generate
	$(GO) generate ./bpf/...

## check-generate: fail if the committed bpf2go output is stale.
check-generate: generate
	git diff --exit-code -- bpf sockdrain internal

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	GOOS=freebsd $(GO) vet ./...
	GOOS=freebsd $(GO) build ./...
	d=$$(mktemp -d) && for p in $$(GOOS=freebsd $(GO) list -e -f '{{if or .GoFiles .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do \
		GOOS=freebsd $(GO) test -c -o $$d/$$(echo $$p | tr / _).test $$p || exit 1; done; rm -rf $$d
	d=$$(mktemp -d) && for p in $$(GOOS=freebsd $(GO) list -tags freebsdkernel -e -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do GOOS=freebsd $(GO) test -tags freebsdkernel -c -o $$d/$$(echo $$p | tr / _).test $$p || exit 1; done; rm -rf $$d

## fuzz: a short pass over every fuzz target.
# Budgets are counts of runs, not durations: with -fuzztime 20s, Go before
# 1.27 can report the end of the time as a failure ("context deadline
# exceeded", golang/go#75804). Together they take about 40 s here.
FUZZ = $(GO) test -run '^$$' -fuzzminimizetime 2s
fuzz:
	$(FUZZ) -fuzz FuzzParseMessage -fuzztime 300000x ./internal/inetdiag/
	$(FUZZ) -fuzz FuzzParseListen -fuzztime 200000x .
	$(FUZZ) -fuzz FuzzParse -fuzztime 100000x ./internal/pcblist/

## bench: loss per stop, time to refuse, gate overhead, observer scaling,
## drained detection and the time until a backend behind HAProxy is safe to
## stop, side by side in namespaces the bench creates (root, ~12 min); writes
## BENCHMARKS.md. Each table holds $(BENCH_LOCK) while it runs.
BENCH_LOCK ?= /tmp/sockdrain-kernel.lock
BENCH_ARGS ?=
bench: build
	@command -v nginx >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq nginx-light || $(APT_GET) install -y -qq nginx; }
	@command -v ss >/dev/null || $(APT_GET) install -y -qq iproute2
	@command -v haproxy >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends haproxy; }
	$(GO) build -o bin/sockdrain-bench ./cmd/sockdrain-bench
	bin/sockdrain-bench -sockdrain $(BIN) -lock $(BENCH_LOCK) -rev "$$(git describe --always --dirty)" -out BENCHMARKS.md $(BENCH_ARGS)

## demo: the main job on a built-in server in a private netns (root).
demo: build
	$(BIN) demo

## vmtest: the kernel tests on Debian's 6.1 and 6.12 kernels, one QEMU VM
## each (TCG, 1 vCPU, in parallel). Kernels are cached in vmtests/.cache.
vmtest: deps-vmtest
	$(GO) run ./vmtests/cmd/vmtest $(VMTEST_FLAGS)

## vagrant-validate: check the Vagrantfile without a provider or network.
vagrant-validate:
	@command -v vagrant >/dev/null || { $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends vagrant; }
	VAGRANT_CHECKPOINT_DISABLE=1 vagrant validate --ignore-provider

deps-vmtest:
	@command -v qemu-system-x86_64 >/dev/null && command -v lz4 >/dev/null && command -v zstd >/dev/null && \
		command -v xz >/dev/null || { $(APT_GET) update -qq && \
		$(APT_GET) install -y -qq --no-install-recommends $(VMTEST_DEPS); }

## deps-test: as root, install the servers the kernel tests run; without
## root the kernel tests skip anyway, so nothing is installed.
deps-test:
	@command -v nginx >/dev/null && command -v haproxy >/dev/null && command -v ss >/dev/null || \
		{ test "$$(id -u)" != 0 && echo "deps-test: not root: not installing $(TEST_DEPS)" || \
		{ $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends $(TEST_DEPS); }; }

deps-generate:
	@command -v clang >/dev/null && test -e /usr/include/bpf/bpf_helpers.h || \
		{ $(APT_GET) update -qq && $(APT_GET) install -y -qq $(GEN_DEPS); }
