# Vigil — `make run` starts the demo, `make test` installs what is missing
# and runs every test. See README.md.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/vigil
LISTEN ?= 127.0.0.1:8080
DATA   ?= vigil-data

.PHONY: all deps build test vet run bench fuzz clean check-versions

all: build

deps:
	@deploy/install-deps.sh

check-versions:
	@deploy/check-versions.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/vigil

vet:
	$(GO) vet ./...

# -race for data races, -tags matprofile so tests can assert that every
# gocv Mat was closed.
test: deps check-versions vet
	@deploy/gotest.sh -race -tags matprofile -count=1 -timeout 20m ./...

run: build
	$(BIN) demo --listen $(LISTEN) --data $(DATA)

# Benchmarks: results and the command lines that produced them are in
# BENCHMARKS.md.
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./streams/...

fuzz: deps
	$(GO) test ./wire -run '^$$' -fuzz FuzzUnmarshal -fuzztime 30s
	$(GO) test ./streams/av -run '^$$' -fuzz FuzzDecode -fuzztime 30s
	$(GO) test ./streams/rtsp -run '^$$' -fuzz FuzzDepacketize -fuzztime 30s

clean:
	rm -rf bin .cache/test.log
