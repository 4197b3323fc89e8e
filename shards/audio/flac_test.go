package audio

import (
	"errors"
	"math"
	"os"
	"testing"
)

// quantisedSine is the integer sine gen.sh feeds the encoders:
// floor(amp * 2^(bits-1) * sin(2*pi*1000*n/rate) + 0.5).
func quantisedSine(n, rate, bits int, amp float64) int64 {
	s := math.Sin(2 * math.Pi * 1000 * float64(n) / float64(rate))
	return int64(math.Floor(amp*float64(int64(1)<<(bits-1))*s + 0.5))
}

// fitSine is the least-squares amplitude and phase of a 1 kHz sinusoid
// a*sin + b*cos over x, phase measured against sin(2*pi*1000*n/rate).
func fitSine(x []float32, rate int, freq float64) (amp, phase float64) {
	var ss, cc, sc, xs, xc float64
	for n, v := range x {
		w := 2 * math.Pi * freq * float64(n) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		cc += c * c
		sc += s * c
		xs += float64(v) * s
		xc += float64(v) * c
	}
	det := ss*cc - sc*sc
	a := (xs*cc - xc*sc) / det
	b := (xc*ss - xs*sc) / det
	return math.Hypot(a, b), math.Atan2(b, a)
}

// TestFLACSine decodes the committed FLAC files and compares them sample for
// sample with the integers gen.sh gave the reference encoder: FLAC is
// lossless, so any difference is a decoding error.
func TestFLACSine(t *testing.T) {
	for _, tc := range []struct {
		file     string
		rate     int
		channels int
		bits     int
		amps     []float64 // per channel
		frames   int
		format   string
	}{
		{"testdata/sine_44k_16_mono.flac", 44100, 1, 16, []float64{0.5}, 22050, "flac/16"},
		{"testdata/sine_48k_24_stereo.flac", 48000, 2, 24, []float64{0.5, 0.25}, 4800, "flac/24"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Decode(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.SampleRate != tc.rate || c.Channels != tc.channels || c.Format != tc.format || len(c.Samples) != tc.frames {
				t.Fatalf("got %d Hz, %d channels, %q, %d samples; want %d Hz, %d, %q, %d",
					c.SampleRate, c.Channels, c.Format, len(c.Samples), tc.rate, tc.channels, tc.format, tc.frames)
			}
			full := float64(int64(1) << (tc.bits - 1))
			for n := range tc.frames {
				var sum int64
				for _, a := range tc.amps {
					sum += quantisedSine(n, tc.rate, tc.bits, a)
				}
				// The sum is exact in float64, the division by a power of
				// two too: one rounding, to float32.
				want := float32(float64(sum) / (full * float64(len(tc.amps))))
				if c.Samples[n] != want {
					t.Fatalf("sample %d = %v, want %v", n, c.Samples[n], want)
				}
			}
			var mean float64
			for _, a := range tc.amps {
				mean += a / float64(len(tc.amps))
			}
			amp, phase := fitSine(c.Samples, c.SampleRate, 1000)
			if math.Abs(amp/mean-1) > 0.01 || math.Abs(phase) > 0.01 {
				t.Errorf("fitted amplitude %.5f phase %.4f rad, want %.5f and 0", amp, phase, mean)
			}
		})
	}
}

func TestFLACBad(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_44k_16_mono.flac")
	if err != nil {
		t.Fatal(err)
	}
	// The frames start after the metadata: signature, STREAMINFO and the
	// VORBIS_COMMENT block, whose length is in its header.
	meta := 4 + 4 + 34
	meta += 4 + int(data[meta+1])<<16 | int(data[meta+2])<<8 | int(data[meta+3])

	flipped := append([]byte(nil), data...)
	flipped[len(flipped)/2] ^= 0x55

	for _, tc := range []struct {
		name string
		file []byte
		is   error
	}{
		{"truncated mid-stream", data[:len(data)/2], nil},
		{"truncated in STREAMINFO", data[:20], nil},
		{"signature only", data[:4], nil},
		{"no frames", data[:meta], ErrEmpty},
		{"corrupt byte", flipped, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeBytes(tc.file, "x.flac")
			if err == nil {
				t.Fatalf("decoded %d samples, want an error", len(c.Samples))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if tc.is == nil && (errors.Is(err, ErrEmpty) || errors.Is(err, ErrUnsupported)) {
				t.Errorf("error %q is classified as empty/unsupported", err)
			}
			t.Log(err)
		})
	}
}

// TestFLACAfterID3 checks the rare ID3-tagged FLAC goes to the FLAC decoder.
func TestFLACAfterID3(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_44k_16_mono.flac")
	if err != nil {
		t.Fatal(err)
	}
	tag := []byte("ID3\x04\x00\x00\x00\x00\x00\x0b" + "TIT2\x00\x00\x00\x01\x00\x00\x00")
	c, err := DecodeBytes(append(tag, data...), "x.flac")
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != "flac/16" || len(c.Samples) != 22050 {
		t.Errorf("got %q, %d samples", c.Format, len(c.Samples))
	}
}
