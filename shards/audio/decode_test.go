package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecodeByContent checks that dispatch ignores the file extension.
func TestDecodeByContent(t *testing.T) {
	dir := t.TempDir()
	var wav bytes.Buffer
	if err := WriteWAV(&wav, []float32{0.5, -0.5, 0.25}, 16000, 1, PCM16, false); err != nil {
		t.Fatal(err)
	}
	flacData, err := os.ReadFile("testdata/sine_44k_16_mono.flac")
	if err != nil {
		t.Fatal(err)
	}
	mp3Data, err := os.ReadFile("testdata/sine_44k_stereo_128k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		data   []byte
		format string
	}{
		{"clip.mp3", wav.Bytes(), "wav/pcm16"},
		{"clip.wav", flacData, "flac/16"},
		{"clip.flac", mp3Data, "mp3"},
		{"clip", mp3Data, "mp3"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, tc.data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Decode(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c.Format != tc.format {
			t.Errorf("%s decoded as %q, want %q", tc.name, c.Format, tc.format)
		}
	}
}

func TestDecodeMissingFile(t *testing.T) {
	_, err := Decode(filepath.Join(t.TempDir(), "nope.wav"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want os.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), `audio "`) || !strings.Contains(err.Error(), "nope.wav") {
		t.Errorf("error %q does not name the file", err)
	}
	if errors.Is(err, ErrEmpty) || errors.Is(err, ErrUnsupported) {
		t.Errorf("error %q is classified as empty/unsupported", err)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		c    *Clip
		want float64
	}{
		{&Clip{SampleRate: 16000, Samples: make([]float32, 8000)}, 0.5},
		{&Clip{SampleRate: 44100, Samples: make([]float32, 441000)}, 10},
		{&Clip{}, 0},
		{nil, 0},
	} {
		if got := tc.c.Duration(); got != tc.want {
			t.Errorf("Duration = %v, want %v", got, tc.want)
		}
	}
}

// mmauSample is the real MMAU clip beside the project (../shared from the
// repository root, as in CI).
const mmauSample = "../../../shared/testdata/mmau/mmau_sample.wav"

// TestMMAUSample decodes a real dataset clip and compares it with its raw
// int16 samples read here without the decoder. Python's wave module reports
// the file as 1 channel, 16-bit, 32000 Hz, 320000 frames.
func TestMMAUSample(t *testing.T) {
	raw, err := os.ReadFile(mmauSample)
	if err != nil {
		t.Fatalf("the real MMAU clip must be present: %v", err)
	}
	c, err := Decode(mmauSample)
	if err != nil {
		t.Fatal(err)
	}
	if c.SampleRate != 32000 || c.Channels != 1 || c.Format != "wav/pcm16" || len(c.Samples) != 320000 || c.Duration() != 10 {
		t.Fatalf("got %d Hz, %d channels, %q, %d samples", c.SampleRate, c.Channels, c.Format, len(c.Samples))
	}
	// A canonical 44-byte header: "data" and its size end at byte 44.
	if string(raw[36:40]) != "data" || binary.LittleEndian.Uint32(raw[40:]) != 640000 {
		t.Fatalf("unexpected header % x", raw[:44])
	}
	pcm := raw[44:]
	var peak float32
	for i, got := range c.Samples {
		v := int16(uint16(pcm[2*i]) | uint16(pcm[2*i+1])<<8)
		if want := float32(v) / 32768; got != want {
			t.Fatalf("sample %d = %v, want %v", i, got, want)
		}
		peak = max(peak, float32(math.Abs(float64(got))))
	}
	if peak < 0.01 {
		t.Errorf("peak %v: the clip decodes to near silence", peak)
	}
}

// FuzzDecodeBytes feeds arbitrary bytes to every decoder: nothing may panic,
// and a WAV may never yield more samples than it has bytes.
func FuzzDecodeBytes(f *testing.F) {
	for _, name := range []string{"sine_44k_16_mono.flac", "sine_48k_24_stereo.flac", "sine_44k_stereo_128k.mp3", "sine_22k_mono_64k.mp3"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)/3])
	}
	in := []float32{0.5, -0.25, 1, -1, 0, 0.125, 0.75, -0.5, 0.3, -0.3, 0.1, 0.9}
	for _, enc := range []Encoding{PCM8, PCM16, PCM24, PCM32, Float32, Float64} {
		for _, ch := range []int{1, 2, 3} {
			for _, ext := range []bool{false, true} {
				var buf bytes.Buffer
				if err := WriteWAV(&buf, in, 8000, ch, enc, ext); err != nil {
					f.Fatal(err)
				}
				f.Add(buf.Bytes())
			}
		}
	}
	fmt16 := chunk("fmt ", fmtPCM(1, 1, 16000, 2, 16))
	f.Add(riff(fmt16, chunk("LIST", []byte("INFOabc")), chunkSized("data", 0xFFFFFFFF, []byte{1, 2, 3, 4, 5})))
	f.Add(riff(chunk("data", []byte{1, 2, 3, 4}), fmt16))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeBytes(data, "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), `audio "fuzz": `) {
				t.Fatalf("error without the file name: %v", err)
			}
			return
		}
		if len(c.Samples) == 0 || c.SampleRate <= 0 || c.Channels <= 0 || c.Format == "" {
			t.Fatalf("accepted clip: %d samples, %d Hz, %d channels, %q", len(c.Samples), c.SampleRate, c.Channels, c.Format)
		}
		if strings.HasPrefix(c.Format, "wav/") && len(c.Samples) > len(data) {
			t.Fatalf("%d samples from %d bytes", len(c.Samples), len(data))
		}
	})
}

// benchWAV is a 10-s 44.1 kHz stereo PCM16 clip: the sharder's typical input.
func benchWAV(b *testing.B, enc Encoding, channels int) []byte {
	b.Helper()
	const rate = 44100
	in := make([]float32, 10*rate*channels)
	for i := range in {
		in[i] = 0.5 * float32(math.Sin(2*math.Pi*440*float64(i/channels)/rate))
	}
	var buf bytes.Buffer
	if err := WriteWAV(&buf, in, rate, channels, enc, false); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkDecodeWAV measures decoding a 10-s 44.1 kHz stereo PCM16 WAV held
// in memory; the sharder needs it near 1 ms.
func BenchmarkDecodeWAV(b *testing.B) {
	data := benchWAV(b, PCM16, 2)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBytes(data, "bench.wav"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeWAVFormats covers the other layouts of the same clip.
func BenchmarkDecodeWAVFormats(b *testing.B) {
	for _, tc := range []struct {
		name string
		enc  Encoding
		ch   int
	}{
		{"pcm16-mono", PCM16, 1},
		{"pcm24-stereo", PCM24, 2},
		{"float32-stereo", Float32, 2},
		{"pcm16-6ch", PCM16, 6},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := benchWAV(b, tc.enc, tc.ch)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeBytes(data, "bench.wav"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeCompressed measures the library decoders per committed
// 0.5-s file.
func BenchmarkDecodeCompressed(b *testing.B) {
	for _, name := range []string{"sine_44k_16_mono.flac", "sine_44k_stereo_128k.mp3"} {
		b.Run(name, func(b *testing.B) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeBytes(data, name); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
