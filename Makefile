# earl — build, test, benchmark and demo targets. `make demo` and `make test`
# set up a fresh Debian machine by themselves (through `make deps`).

GO       ?= go
BIN      := bin
DEMO     ?= out/demo
BENCHDIR ?= out/bench
FUZZTIME ?= 10s

# Debian packages: the build needs HDF5 and OpenBLAS for cgo; the tests
# check shard files with h5py and .npy files with numpy; the benchmarks run
# the Python references (torch uses the system BLAS through libopenblas0).
DEB_BUILD := libhdf5-dev libopenblas-dev pkg-config gcc
DEB_TEST  := python3-numpy python3-h5py python3-jinja2
DEB_BENCH := python3-torch python3-scipy libopenblas0

export PATH := /usr/local/go/bin:$(PATH)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# apt_install installs the packages in $(1) that are not installed yet, and
# runs apt-get update once before the first install.
define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

.PHONY: all deps bench-deps build test lint bench demo clean check-go

all: build

check-go:
	@command -v $(GO) >/dev/null || { echo "Go 1.26 is required (expected at /usr/local/go/bin/go)"; exit 1; }

deps: check-go
	$(call apt_install,$(DEB_BUILD) $(DEB_TEST))

bench-deps: deps
	$(call apt_install,$(DEB_BENCH))

build: deps
	$(GO) build -o $(BIN)/ ./launcher ./worker ./tools

# The whole suite, with ../shared/testdata beside the repository; the
# concurrent packages run again under the race detector.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shards/ ./launcher/...
	@echo "== short fuzz runs of the parsers that read untrusted bytes"
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) ./worker/ckpt/
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME) ./worker/tokenizer/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBytes$$' -fuzztime $(FUZZTIME) ./shards/audio/

lint: deps
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...

# Benchmarks, each beside its reference in the same run (see BENCHMARKS.md).
bench: bench-deps build
	@mkdir -p $(BENCHDIR)
	@echo "== micro-benchmarks (go test -bench)"
	$(GO) test -run '^$$' -bench 'Resample44100|LogMel10s|RealFFT400|DecodeWAV' -benchtime 2s ./shards/audio/
	@echo "== log-mel: earl vs numpy and torch on the same clips"
	$(BIN)/tools bench mel --clips 32 --seconds 10 --out $(BENCHDIR)/mel10
	/usr/bin/python3 tools/bench/logmel_ref.py $(BENCHDIR)/mel10
	$(BIN)/tools bench mel --clips 16 --seconds 30 --out $(BENCHDIR)/mel30
	/usr/bin/python3 tools/bench/logmel_ref.py $(BENCHDIR)/mel30
	@echo "== launcher shard end to end: 10-s 44.1 kHz stereo PCM16 WAV, earl vs a numpy/torch/h5py pipeline"
	$(BIN)/tools bench shard --clips 300 --dir $(BENCHDIR)/shard --json $(BENCHDIR)/shard/earl.json
	/usr/bin/python3 tools/bench/shard_ref.py $(BENCHDIR)/shard
	@echo "== tokenizer: earl vs @lenml/tokenizers (transformers.js) on the same mixed text, one core each"
	$(GO) test -run '^$$' -bench 'EncodeMixed|DecodeMixed' -benchtime 2s -cpu 1 ./worker/tokenizer/
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	npm ci --prefix tools/bench --no-audit --no-fund --loglevel=error
	$(BIN)/tools tokenize --tokenizer ../shared/testdata/qwen3-tokenizer --bench worker/tokenizer/testdata/bench_mixed.txt --json $(BENCHDIR)/tokenize-earl.json
	node tools/bench/tokenize_ref.js worker/tokenizer/testdata/bench_mixed.txt ../shared/testdata/qwen3-tokenizer $(BENCHDIR)/tokenize-earl.json
	@echo "== kernels/cpu: Linear vs one direct cblas_sgemm (OpenBLAS's own threads) at the small preset's shapes; per-op timings"
	$(GO) test -run '^$$' -bench . -benchtime 0.5s ./kernels/cpu/ | tee $(BENCHDIR)/kernels-cpu.txt | $(GO) run ./kernels/internal/benchtab
	@echo "== model: forward + backward of the small preset (batch 4 x 256) against the same architecture in PyTorch, 2 threads"
	$(BIN)/tools init-model --preset small --seed 1 --out $(BENCHDIR)/small-model
	$(BIN)/tools bench model --model $(BENCHDIR)/small-model --batch 4 --seq 256 --json $(BENCHDIR)/model-earl.json
	/usr/bin/python3 tools/bench/model_ref.py $(BENCHDIR)/small-model/config.json $(BENCHDIR)/model-earl.json 2

# The main job on embedded defaults: synthetic audio QA -> shards -> inspect.
demo: build
	rm -rf $(DEMO)
	$(BIN)/tools synth --task mixed --format avqa --n 200 --seed 1 --out $(DEMO)/avqa
	$(BIN)/launcher shard --in avqa --src $(DEMO)/avqa/train.jsonl --audio-root $(DEMO)/avqa --out $(DEMO)/shards --shard-size 100
	$(BIN)/launcher inspect $(DEMO)/shards --verify

clean:
	rm -rf $(BIN) out
