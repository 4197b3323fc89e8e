# earl — build, test, benchmark and demo targets. `make demo` and `make test`
# set up a fresh Debian machine by themselves (through `make deps`).

GO       ?= go
BIN      := bin
DEMO     ?= out/demo
BENCHDIR ?= out/bench
FUZZTIME ?= 10s
# make demo fails unless GRPO raises held-out accuracy by this many points.
DEMO_MIN_GAIN ?= 10

# Debian packages: the build needs HDF5 and OpenBLAS for cgo; the tests
# check shard files with h5py and .npy files with numpy, checkpoint files
# with the zstd command (a decoder independent of earl's), and run the sbatch
# scripts on a one-node Slurm cluster of their own (munge, slurmctld,
# slurmd, slurm-client: slurm/integration_test.go); the benchmarks run
# the Python references (torch uses the system BLAS through libopenblas0).
DEB_BUILD := libhdf5-dev libopenblas-dev pkg-config gcc
DEB_TEST  := python3-numpy python3-h5py python3-jinja2 zstd \
             munge slurmctld slurmd slurm-client
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

.PHONY: all deps bench-deps build test lint bench demo clean check-go cuda-deps check-cuda

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
test: build
	$(GO) vet ./...
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race ./shards/ ./launcher/...
	@echo "== short fuzz runs of the parsers that read untrusted bytes"
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) ./worker/ckpt/
	$(GO) test -run '^$$' -fuzz '^FuzzEncode$$' -fuzztime $(FUZZTIME) ./worker/tokenizer/
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBytes$$' -fuzztime $(FUZZTIME) ./shards/audio/
	@echo "== make demo, shortened (80 GRPO steps): the whole pipeline runs end to end, and GRPO must still raise held-out accuracy by 10 points"
	DEMO=out/demo-short BIN=$(BIN) DEMO_SHORT=1 DEMO_MIN_GAIN=10 ./tools/demo.sh

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
	@echo "== checkpoints: earl's zstd container (byte shuffle, levels 1 and 3) vs safetensors F32 / BF16 on the small preset's f32 weights and AdamW-like m, v"
	$(BIN)/tools init-model --preset small --seed 1 --dtype f32 --out $(BENCHDIR)/small-model-f32
	$(BIN)/tools bench ckpt --model $(BENCHDIR)/small-model-f32 --levels 1,3 --sweep --dir $(BENCHDIR)/ckpt --json $(BENCHDIR)/ckpt-earl.json
	@echo "== GRPO step: time split and tokens/s of the tiny and small Omni presets on one rank (whole model training, beta 0.04)"
	rm -rf $(BENCHDIR)/grpo-src $(BENCHDIR)/grpo-shards $(BENCHDIR)/tiny-omni $(BENCHDIR)/small-omni
	$(BIN)/tools synth --task sweep --format jsonl -n 64 --seed 1 --out $(BENCHDIR)/grpo-src --duration 1:1.5 >/dev/null
	$(BIN)/launcher shard --in jsonl --src $(BENCHDIR)/grpo-src/synth.jsonl --out $(BENCHDIR)/grpo-shards --family qwen2.5-omni >/dev/null
	$(BIN)/tools init-model --family qwen2.5-omni --preset tiny --seed 1 --out $(BENCHDIR)/tiny-omni >/dev/null
	$(BIN)/tools init-model --family qwen2.5-omni --preset small --seed 1 --out $(BENCHDIR)/small-omni >/dev/null
	$(BIN)/tools bench grpo --model $(BENCHDIR)/tiny-omni --shards $(BENCHDIR)/grpo-shards --prompts 4 --max-completion 32 --steps 5 --json $(BENCHDIR)/grpo-tiny.json
	$(BIN)/tools bench grpo --model $(BENCHDIR)/small-omni --shards $(BENCHDIR)/grpo-shards --prompts 2 --max-completion 64 --steps 3 --json $(BENCHDIR)/grpo-small.json
	@echo "== GRPO step on 10-s clips (small Omni): the audio encoder's share grows with the clip"
	rm -rf $(BENCHDIR)/grpo-src10 $(BENCHDIR)/grpo-shards10
	$(BIN)/tools synth --task sweep --format jsonl -n 8 --seed 1 --out $(BENCHDIR)/grpo-src10 --duration 10:10 >/dev/null
	$(BIN)/launcher shard --in jsonl --src $(BENCHDIR)/grpo-src10/synth.jsonl --out $(BENCHDIR)/grpo-shards10 --family qwen2.5-omni >/dev/null
	$(BIN)/tools bench grpo --model $(BENCHDIR)/small-omni --shards $(BENCHDIR)/grpo-shards10 --prompts 2 --max-completion 32 --steps 2 --json $(BENCHDIR)/grpo-small-10s.json
	@echo "== collectives: earl's ring (launcher run) vs Open MPI (mpirun), 2 and 4 ranks on this host, 1 KiB to 64 MiB, every element checked"
	$(call apt_install,openmpi-bin libopenmpi-dev)
	mpicc -O2 -o $(BENCHDIR)/mpi_collectives tools/bench/mpi_collectives.c
	/usr/bin/python3 tools/bench/collective_table.py --tools $(BIN)/tools --launcher $(BIN)/launcher --mpi $(BENCHDIR)/mpi_collectives --out $(BENCHDIR)/collective --repeat 2

# The GPU code (build tag cuda: kernels/cuda, collective/nccl) built, vetted
# and its tests compiled on a machine without a GPU. Not part of `make test`:
# the CUDA toolkit is a 1.6 GB download. The tests themselves run only on a
# GPU node (docs/nccl.md).
#
# Debian ships CUDA 11.8 in contrib / non-free; cuda_sources adds those
# components for bookworm with the same URI and Signed-By keyring as the
# default sources (apt refuses two entries for one URI and suite whose
# Signed-By differ). NCCL has no Debian package: collective/nccl loads
# libnccl.so.2 at run time, so nothing is installed for it.
CUDA_DEB     := nvidia-cuda-dev nvidia-cuda-toolkit
CUDA_SOURCES := /etc/apt/sources.list.d/earl-cuda.list

define cuda_sources
	@if grep -rqsE --include='*.list' --include='*.sources' '^[^#]*bookworm[^#]*non-free( |$$)|^Components:.*non-free( |$$)' /etc/apt/sources.list /etc/apt/sources.list.d/; then \
	  exit 0; \
	fi; \
	ent=$$(awk 'BEGIN { RS = ""; FS = "\n" } \
	  /(^|\n)Suites:[^\n]*bookworm([ \t]|\n|$$)/ && /(^|\n)Components:/ { \
	    u = ""; k = ""; \
	    for (i = 1; i <= NF; i++) { \
	      if ($$i ~ /^URIs:/) { u = $$i; sub(/^URIs:[ \t]*/, "", u); sub(/[ \t].*/, "", u) } \
	      if ($$i ~ /^Signed-By:/) { k = $$i; sub(/^Signed-By:[ \t]*/, "", k) } \
	    } \
	    if (u != "") { print u " " k; exit } \
	  }' /etc/apt/sources.list.d/debian.sources 2>/dev/null); \
	if [ -z "$$ent" ]; then \
	  ent=$$(awk '$$1 == "deb" { \
	    k = ""; i = 2; \
	    if ($$2 ~ /^\[/) { \
	      while (i <= NF) { \
	        if ($$i ~ /^\[?signed-by=/) { k = $$i; sub(/^\[?signed-by=/, "", k); sub(/\]$$/, "", k) } \
	        if ($$i ~ /\]$$/) { i++; break } \
	        i++ \
	      } \
	    } \
	    if ($$(i + 1) == "bookworm") { print $$i " " k; exit } \
	  }' /etc/apt/sources.list 2>/dev/null); \
	fi; \
	set -- $$ent; uri=$${1:-http://deb.debian.org/debian}; key=$${2:-}; \
	opt=""; [ -n "$$key" ] && opt="[signed-by=$$key] "; \
	echo "make cuda-deps: adding bookworm contrib non-free ($$uri$${key:+, signed-by $$key}) in $(CUDA_SOURCES)"; \
	echo "deb $$opt$$uri bookworm contrib non-free" | $(SUDO) tee $(CUDA_SOURCES) >/dev/null
endef

cuda-deps: check-go
	@missing=""; for p in $(CUDA_DEB); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	$(MAKE) --no-print-directory cuda-sources && \
	echo "make cuda-deps: installing$$missing (about 1.6 GB, a few minutes)" && \
	$(SUDO) apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null

.PHONY: cuda-sources
cuda-sources:
	$(call cuda_sources)

# Beyond compiling, check-cuda runs collective/nccl's cuda tests against
# stand-ins for libcuda.so.1 and libnccl.so.2 built from
# collective/nccl/testdata/fake (host memory, host threads as streams,
# in-process ranks): they exercise earl's side — device offsets, padding,
# stream order, Avg fallback, timeouts and aborts — not CUDA or NCCL,
# which only a GPU node can (docs/nccl.md). The fakes take the place of
# the real libraries through LD_LIBRARY_PATH, for the test binary only.
FAKE_CUDA := out/fake-cuda
FAKE_SRC  := collective/nccl/testdata/fake
FAKE_RUN  := cd $(FAKE_CUDA) && LD_LIBRARY_PATH=$(CURDIR)/$(FAKE_CUDA)

check-cuda: deps cuda-deps
	$(GO) build -tags cuda ./...
	$(GO) vet -tags cuda ./collective/nccl/
	$(GO) test -tags cuda -c -o /dev/null ./collective/nccl/
	@echo "== padding plan, and the scale kernel's PTX through ptxas (sm_50, sm_80, sm_90)"
	EARL_REQUIRE_PTXAS=1 $(GO) test -count=1 -run 'TestPadPlan|TestScalePTX' ./collective/nccl/
	@echo "== collective/nccl's cuda tests against the fake libcuda.so.1 / libnccl.so.2"
	@mkdir -p $(FAKE_CUDA)
	gcc -shared -fPIC -O1 -Wall -Wextra -Wno-unused-parameter -Wl,-soname,libcuda.so.1 -o $(FAKE_CUDA)/libcuda.so.1 $(FAKE_SRC)/fakecuda.c -lpthread
	gcc -shared -fPIC -O1 -Wall -Wextra -Wl,-soname,libnccl.so.2 -o $(FAKE_CUDA)/libnccl.so.2 $(FAKE_SRC)/fakenccl.c -ldl -lpthread
	$(GO) test -tags cuda -c -o $(FAKE_CUDA)/nccl.test ./collective/nccl/
	$(FAKE_RUN) FAKE_CUDA_DEVICES=4 ./nccl.test -test.count=1
	@echo "== NCCL 2.8 (no ncclAvg: sum, then the scale kernel)"
	$(FAKE_RUN) FAKE_CUDA_DEVICES=3 FAKE_NCCL_VERSION=20804 ./nccl.test -test.count=1 -test.run 'TestCollectives|TestMissingLibrary'
	@echo "== one GPU, an NCCL that allowed two ranks on it"
	$(FAKE_RUN) FAKE_CUDA_DEVICES=1 FAKE_NCCL_SHARED_GPU=1 ./nccl.test -test.count=1 -test.run 'TestCollectives|TestTwoRanksOneGPU'
	@echo "check-cuda: cuda-tagged code builds and vets; collective/nccl passes against the fakes (the real thing: docs/nccl.md on a GPU node)"

# The main job on embedded defaults (tools/demo.sh): synthetic audio
# questions -> shards -> a tiny random Qwen2.5-Omni thinker -> SFT warm
# start -> GRPO on two ranks (ZeRO-1 over the TCP ring) -> held-out eval of
# the start and the end -> side-by-side table and out/demo/curve.png.
demo: build
	DEMO=$(DEMO) BIN=$(BIN) DEMO_MIN_GAIN=$(DEMO_MIN_GAIN) ./tools/demo.sh

clean:
	rm -rf $(BIN) out
