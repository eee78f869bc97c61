GO        ?= go
BIN       := bin
DEMO      := demo
export DEDUP_MINIO ?= $(CURDIR)/.tools/bin/minio

.PHONY: all build deps demo test test-race fuzz bench lint clean

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN)/dedupctl ./cmd/dedupctl

deps:
	@.ci/deps

# demo: the main job on the embedded default, a local-directory repository
# under ./demo/: init, back up a generated sample tree, list, restore,
# verify, and show the restored tree matches the original.
demo: build
	@DEDUP_SKIP_MINIO=1 DEDUP_SKIP_LIBVIRT=1 .ci/deps
	@./.ci/demo $(CURDIR)/$(BIN)/dedupctl $(CURDIR)/$(DEMO)

test: deps
	$(GO) vet ./...
	$(GO) test -timeout 14m -count=1 ./...

test-race: deps
	$(GO) test -race -timeout 20m -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseHeader -fuzztime 20s ./repo/pack
	$(GO) test -run '^$$' -fuzz FuzzLoadTree -fuzztime 20s ./repo
	$(GO) test -run '^$$' -fuzz FuzzLoadIndexFile -fuzztime 20s ./repo
	$(GO) test -run '^$$' -fuzz FuzzLoadSnapshot -fuzztime 20s ./repo

# bench: stage benchmarks, the end-to-end suite on a local repository, the
# S3 row on MinIO, and the disk image pipeline. Figures: docs/performance.md.
bench: build deps
	$(GO) test -run '^$$' -bench . -benchmem ./chunk ./repo
	$(GO) run ./internal/bench/cmd/dedupbench $(BENCH_ARGS)
	$(GO) test -run '^$$' -bench BenchmarkS3 -benchtime 1x ./internal/backup
	$(GO) test -run '^$$' -bench . -benchtime 1x ./internal/imagebackup

lint:
	@.ci/tools golangci-lint
	.tools/bin/golangci-lint run ./...

clean:
	rm -rf $(BIN) $(DEMO)
