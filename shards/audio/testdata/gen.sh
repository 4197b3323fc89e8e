#!/bin/sh
# Regenerates the committed FLAC and MP3 test files from a sine written by
# Python's standard library, with Debian's reference encoders. Only needed to
# change the files; the tests read the committed copies and need none of these
# tools.
#
#   apt-get install -y flac lame python3     # flac 1.4.2, LAME 3.100 here
#   sh shards/audio/testdata/gen.sh
#
# Every file holds a 1 kHz sine, 0.5 s long (the 24-bit one 0.1 s, to stay
# small), sample n = floor(A * 2^(bits-1) * sin(2*pi*1000*n/rate) + 0.5);
# flac_test.go recomputes the same integers.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

python3 - "$tmp" <<'PY'
import math, sys

def raw(path, rate, bits, amps, secs=0.5, freq=1000):
    full = 1 << (bits - 1)
    out = bytearray()
    for n in range(int(rate * secs)):
        s = math.sin(2 * math.pi * freq * n / rate)
        for a in amps:  # one amplitude per channel, interleaved
            v = math.floor(a * full * s + 0.5)
            out += v.to_bytes(bits // 8, "little", signed=True)
    open(path, "wb").write(out)

d = sys.argv[1]
raw(d + "/mono16.raw", 44100, 16, [0.5])
raw(d + "/stereo24.raw", 48000, 24, [0.5, 0.25], secs=0.1)
raw(d + "/stereo16.raw", 44100, 16, [0.5, 0.5])
raw(d + "/mono16_22k.raw", 22050, 16, [0.5])
PY

# Mono, 16-bit, 44.1 kHz.
flac --silent --force --best --no-padding --no-seektable \
	--force-raw-format --endian=little --sign=signed \
	--channels=1 --bps=16 --sample-rate=44100 \
	-o sine_44k_16_mono.flac "$tmp/mono16.raw"

# Stereo, 24-bit, 48 kHz, 0.1 s: left at 0.5, right at 0.25, so the mix is 0.375.
flac --silent --force --best --no-padding --no-seektable \
	--force-raw-format --endian=little --sign=signed \
	--channels=2 --bps=24 --sample-rate=48000 \
	-o sine_48k_24_stereo.flac "$tmp/stereo24.raw"

# Stereo, 44.1 kHz, 128 kbit/s CBR joint stereo, with an ID3v2 tag in front
# (exercising the ID3 sniffing) and LAME's Xing/Info frame.
lame --silent -r -s 44.1 --bitwidth 16 --signed --little-endian \
	-m j -b 128 --cbr --tt "earl sine" --add-id3v2 \
	"$tmp/stereo16.raw" sine_44k_stereo_128k.mp3 2>/dev/null

# Mono, MPEG-2 layer III at 22.05 kHz, 64 kbit/s (at 32 kbit/s a frame is too
# small for LAME to write its tag): the half-length frames and
# single-channel side information; no ID3 tag, so the file starts with a
# frame sync.
lame --silent -r -s 22.05 --bitwidth 16 --signed --little-endian \
	-m m -b 64 --cbr \
	"$tmp/mono16_22k.raw" sine_22k_mono_64k.mp3 2>/dev/null

# The excerpts of LAME's own decoder output that mp3_test.go compares with
# (lameRef44, lameRef22): 32 frames from the middle of each file, each the sum
# of the two 16-bit output channels (the decoder writes mono as two copies).
lame --silent --decode sine_44k_stereo_128k.mp3 "$tmp/ref44.wav"
lame --silent --decode sine_22k_mono_64k.mp3 "$tmp/ref22.wav"
python3 - "$tmp" <<'PY'
import struct, sys, wave
for name, start in (("ref44", 10000), ("ref22", 5000)):
    w = wave.open(sys.argv[1] + "/" + name + ".wav")
    ch = w.getnchannels()
    w.setpos(start)
    d = w.readframes(32)
    x = struct.unpack("<%dh" % (len(d) // 2), d)
    sums = [sum(x[i:i + ch]) * (2 // ch) for i in range(0, len(x), ch)]
    print(name, w.getnframes(), start, sums)
PY
