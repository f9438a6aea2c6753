# Vigil — `make run` starts the demo, `make test` installs what is missing
# and runs every test. See README.md.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/vigil
LISTEN ?= 127.0.0.1:8080
DATA   ?= vigil-data

.PHONY: all deps build test vet run bench eval fuzz clean check-versions central-nocgo

all: build

deps:
	@deploy/install-deps.sh

check-versions:
	@deploy/check-versions.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/vigil
	CGO_ENABLED=0 $(GO) build -o bin/vigil-central ./cmd/vigil-central

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

# -race for data races, -tags matprofile so tests can assert that every
# gocv Mat was closed.
test: deps check-versions vet central-nocgo node_modules/.package-lock.json
	@deploy/gotest.sh -race -tags matprofile -count=1 -timeout 20m ./...

# Central builds without cgo (no FFmpeg, no OpenCV): the central-only
# binary, and none of its packages is gocv, streams/* or edge (contact
# sheets for evidence bundles are made by the edges). Also a test:
# cmd/vigil-central/nocgo_test.go.
central-nocgo:
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/vigil-central
	@bad=$$($(GO) list -deps ./cmd/vigil-central ./central/... | grep -E '^gocv\.io/|/vigil/(streams|edge)(/|$$)'); \
	if [ -n "$$bad" ]; then echo "central must not depend on: $$bad"; exit 1; fi

# The console's browser tests (e2e/) use playwright-core from
# package-lock.json (no browser download: Debian's chromium). npm ci runs
# only when node_modules is missing or older than the lock file.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund

run: build
	$(BIN) demo --listen $(LISTEN) --data $(DATA)

# Benchmarks: results and the command lines that produced them are in
# BENCHMARKS.md. The Go micro-benchmarks, then bench/streams: the camera
# path against ffmpeg, side by side in one run (CPU per camera, cameras
# per box, memory per camera; ~30 min, ~12 with BENCH_QUICK=1; JSON to
# BENCH_OUT, default bench.json).
bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 2s ./streams/...
	$(GO) build -o bin/bench-streams ./bench/streams
	bin/bench-streams
	# Clip store v2 against plain append and ffmpeg, soak, index rebuild (~5 min, ~1.5 with BENCH_QUICK=1).
	$(GO) run ./bench/clips
	$(GO) test -run '^$$' -bench Build ./central/evidence
	$(GO) run ./bench/evidence
	VIGIL_BENCH=1 $(GO) test -count=1 -run TestGateForcedEndToEnd -v ./e2e/ | grep -E 'forced openings|p99|picture|^(ok|FAIL|---)'
	# Alarm items per hour on the demo's pedestrian footage (one alert per activity, no visit lost).
	VIGIL_BENCH=1 $(GO) test -count=1 -timeout 30m -run TestPedestrianIncidents -v ./bench/incidents/ | grep -E 'items|visits|fewer|^(ok|FAIL|---)'
	# Edge ⇄ central: 500 edges, 50 consoles; load per store (Badger, PostgreSQL, two PostgreSQL replicas), partition, restart, a replica killed (~30 min, ~2 with BENCH_QUICK=1).
	$(GO) build -o bin/bench-central ./bench/central && bin/bench-central
	# Recorded playback: click to first frame against the clip route, playback viewers per edge with live view watched (~4.5 min, ~2.5 with BENCH_QUICK=1; JSON to BENCH_PLAYBACK_OUT).
	$(GO) run ./bench/playback
	# Safety sensors: one edge reading 500 Modbus registers and 500 MQTT sensors at 1 Hz (CPU, memory, reading → console p99; JSON to BENCH_SENSORS_OUT).
	VIGIL_BENCH=1 $(GO) test -count=1 -timeout 10m -run TestSensorBench -v ./bench/sensors/
	# GB/T 28181: live PS streams of one 720p camera to SIPp playing the platform, while the edge records and analyses (CPU per stream; JSON to BENCH_GB28181_OUT).
	VIGIL_BENCH=1 $(GO) test -count=1 -timeout 10m -run TestGB28181LiveBench -v ./bench/gb28181/
	# Reliability: a 1,000-event burst made durable, kill -9 and hung-central recovery.
	$(GO) test -run '^$$' -bench Append100x10 -benchtime 2s ./gates/journal/
	$(GO) test -count=1 -run 'TestGateJournalBurstCrash' -v ./edge/ | grep -E 'burst:|^(ok|FAIL)'
	$(GO) test -count=1 -run 'TestEdgeKilledNothingAcknowledgedLost' -v ./e2e/faults/ | grep -E 'cycle|acknowledged|^(ok|FAIL)'
	$(GO) test -count=1 -run 'TestHungCentral|TestLongBackoff' -v ./edge/uplink/ | grep -E 'detected|reconnected|delivered|^(ok|FAIL)'

# Motion evaluation on real footage with ground truth: the edge's default
# detector, no masks, over every sequence in VIGIL_EVAL_DATA (default
# ../shared/testdata); prints the table in BENCHMARKS.md ("Motion
# evaluation"), then the perimeter's: tripwire crossings, ID switches
# and dwell against truth from the footage ("Perimeter evaluation"), and
# writes JSON to EVAL_OUT (default eval.json).
eval: deps
	$(GO) run ./eval $(if $(VIGIL_EVAL_DATA),-data $(VIGIL_EVAL_DATA)) $(if $(EVAL_OUT),-out $(EVAL_OUT))

fuzz: deps
	$(GO) test ./wire -run '^$$' -fuzz FuzzUnmarshal -fuzztime 30s
	$(GO) test ./streams/av -run '^$$' -fuzz FuzzDecode -fuzztime 30s
	$(GO) test ./streams/rtsp -run '^$$' -fuzz FuzzDepacketize -fuzztime 30s
	$(GO) test ./gates -run '^$$' -fuzz FuzzParsePayload -fuzztime 30s
	$(GO) test ./gates/webhook -run '^$$' -fuzz FuzzHandler -fuzztime 30s
	$(GO) test ./gates/mqtt -run '^$$' -fuzz FuzzParseZigbee -fuzztime 30s
	$(GO) test ./edge/clips -run '^$$' -fuzz FuzzScanSegment -fuzztime 30s
	$(GO) test ./streams/perimeter -run '^$$' -fuzz FuzzObserve -fuzztime 30s
	$(GO) test ./edge/boxlog -run '^$$' -fuzz FuzzDecodeFrame -fuzztime 30s
	$(GO) test ./central -run '^$$' -fuzz FuzzPlaybackHeaders -fuzztime 30s
	$(GO) test ./central -run '^$$' -fuzz FuzzLayouts -fuzztime 30s
	$(GO) test ./sensors -run '^$$' -fuzz FuzzParsePath -fuzztime 30s
	$(GO) test ./sensors/modbus -run '^$$' -fuzz FuzzPlanDecode -fuzztime 30s
	$(GO) test ./sensors/mqttsrc -run '^$$' -fuzz FuzzPayload -fuzztime 30s
	$(GO) test ./gb28181/manscdp -run '^$$' -fuzz FuzzParseQuery -fuzztime 30s
	$(GO) test ./streams/ps -run '^$$' -fuzz FuzzMux -fuzztime 30s
	$(GO) test ./gb28181/media -run '^$$' -fuzz '^FuzzParseOffer$$' -fuzztime 30s
	$(GO) test ./gb28181/media -run '^$$' -fuzz '^FuzzMANSRTSP$$' -fuzztime 30s

clean:
	rm -rf bin .cache/test.log
