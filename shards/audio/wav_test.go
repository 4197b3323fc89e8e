package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
	"testing"
)

// riff assembles a RIFF/WAVE file from ready-made chunks, so that tests can
// build layouts WriteWAV never produces.
func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	out := []byte("RIFF")
	out = binary.LittleEndian.AppendUint32(out, uint32(len(body)))
	return append(out, body...)
}

// chunk is one RIFF chunk with its declared size and, for odd sizes, the pad
// byte the format requires.
func chunk(id string, body []byte) []byte {
	out := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	out = append(out, body...)
	if len(body)%2 == 1 {
		out = append(out, 0)
	}
	return out
}

// chunkSized declares a size that need not match the body, for lying headers.
func chunkSized(id string, size uint32, body []byte) []byte {
	out := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], size)
	return append(out, body...)
}

// fmtPCM is a plain 16-byte "fmt " body, fields in the order of the spec.
func fmtPCM(tag, channels uint16, rate uint32, blockAlign, bits uint16) []byte {
	le := binary.LittleEndian
	b := le.AppendUint16(nil, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(blockAlign))
	b = le.AppendUint16(b, blockAlign)
	return le.AppendUint16(b, bits)
}

// fmtExt is a 40-byte WAVE_FORMAT_EXTENSIBLE body with the subformat GUID
// written out byte by byte as mmreg.h defines it.
func fmtExt(channels uint16, rate uint32, container, valid uint16, mask uint32, sub uint16) []byte {
	le := binary.LittleEndian
	b := fmtPCM(0xFFFE, channels, rate, channels*container/8, container)
	b = le.AppendUint16(b, 22)
	b = le.AppendUint16(b, valid)
	b = le.AppendUint32(b, mask)
	b = le.AppendUint16(b, sub)
	return append(b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
}

func mustDecode(t *testing.T, data []byte) *Clip {
	t.Helper()
	c, err := DecodeBytes(data, "test.wav")
	if err != nil {
		t.Fatalf("DecodeBytes: %v", err)
	}
	return c
}

func equalSamples(t *testing.T, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("sample %d = %v (%#08x), want %v (%#08x)", i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestWAVScalingByHand checks the integer scaling conventions of libsndfile
// (and so soundfile and librosa) on byte streams written out by hand.
func TestWAVScalingByHand(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fmt    []byte
		data   []byte
		format string
		want   []float32
	}{
		{"pcm8", fmtPCM(1, 1, 8000, 1, 8), []byte{0x00, 0x80, 0xFF, 0x40, 0xC0}, "wav/pcm8",
			[]float32{-1, 0, 127.0 / 128, -0.5, 0.5}},
		{"pcm16", fmtPCM(1, 1, 8000, 2, 16), []byte{0x00, 0x80, 0x00, 0x40, 0xFF, 0x7F, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xC0}, "wav/pcm16",
			[]float32{-1, 0.5, 32767.0 / 32768, -1.0 / 32768, 0, -0.5}},
		{"pcm24", fmtPCM(1, 1, 8000, 3, 24), []byte{0x00, 0x00, 0x80, 0x00, 0x00, 0x40, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0x00, 0x00}, "wav/pcm24",
			[]float32{-1, 0.5, -1.0 / 8388608, 8388607.0 / 8388608, 1.0 / 8388608}},
		{"pcm32", fmtPCM(1, 1, 8000, 4, 32), []byte{0, 0, 0, 0x80, 0, 0, 0, 0x40, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, 0x00, 0x00}, "wav/pcm32",
			[]float32{-1, 0.5, -1.0 / 2147483648, 256.0 / 2147483648}},
		{"float32", append(fmtPCM(3, 1, 8000, 4, 32), 0, 0), []byte{0x00, 0x00, 0x80, 0x3E, 0x00, 0x00, 0xC0, 0xBF}, "wav/float32",
			[]float32{0.25, -1.5}},
		{"float64", append(fmtPCM(3, 1, 8000, 8, 64), 0, 0), []byte{0, 0, 0, 0, 0, 0, 0xE0, 0x3F, 0, 0, 0, 0, 0, 0, 0xD0, 0xBF}, "wav/float64",
			[]float32{0.5, -0.25}},
		// Stereo: (L+R)/2.
		{"pcm16 stereo", fmtPCM(1, 2, 8000, 4, 16), []byte{0x00, 0x40, 0x00, 0x00, 0x00, 0x80, 0x00, 0x80, 0xFF, 0x7F, 0x01, 0x80}, "wav/pcm16",
			[]float32{0.25, -1, 0}},
		{"pcm8 stereo", fmtPCM(1, 2, 8000, 2, 8), []byte{0x00, 0xFF, 0xC0, 0xC0}, "wav/pcm8",
			[]float32{-1.0 / 256, 0.5}},
		// 12 valid bits in a 16-bit container are left-justified, so the
		// container scale applies: 0x7FF0 is 2047/2048.
		{"extensible 12-in-16", fmtExt(1, 16000, 16, 12, 0x4, 1), []byte{0xF0, 0x7F, 0x10, 0x80, 0x00, 0x00}, "wav/pcm16",
			[]float32{2047.0 / 2048, -2047.0 / 2048, 0}},
		{"extensible 20-in-24", fmtExt(1, 16000, 24, 20, 0x4, 1), []byte{0x00, 0x00, 0x40, 0xF0, 0xFF, 0xFF}, "wav/pcm24",
			[]float32{0.5, -16.0 / 8388608}},
		{"extensible float32", fmtExt(2, 48000, 32, 32, 0x3, 3), []byte{0x00, 0x00, 0x80, 0x3E, 0x00, 0x00, 0x00, 0x3F}, "wav/float32",
			[]float32{0.375}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDecode(t, riff(chunk("fmt ", tc.fmt), chunk("data", tc.data)))
			if c.Format != tc.format {
				t.Errorf("Format = %q, want %q", c.Format, tc.format)
			}
			equalSamples(t, c.Samples, tc.want)
		})
	}
}

// TestWriteWAVBytes pins WriteWAV's output to byte streams written by hand
// from the WAVE specification.
func TestWriteWAVBytes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    []float32
		rate  int
		ch    int
		enc   Encoding
		ext   bool
		bytes string
	}{
		{"pcm16 mono", []float32{-1, 0.5, 1, -2, 0.25}, 16000, 1, PCM16, false,
			"RIFF\x2e\x00\x00\x00WAVE" +
				"fmt \x10\x00\x00\x00\x01\x00\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00\x02\x00\x10\x00" +
				"data\x0a\x00\x00\x00\x00\x80\x00\x40\xff\x7f\x00\x80\x00\x20"},
		// Odd data size: a pad byte follows and counts in the RIFF size.
		{"pcm8 mono odd", []float32{-1, 0, 0.5}, 8000, 1, PCM8, false,
			"RIFF\x28\x00\x00\x00WAVE" +
				"fmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x40\x1f\x00\x00\x01\x00\x08\x00" +
				"data\x03\x00\x00\x00\x00\x80\xc0\x00"},
		{"float32 stereo", []float32{0.25, -0.25}, 8000, 2, Float32, false,
			"RIFF\x3a\x00\x00\x00WAVE" +
				"fmt \x12\x00\x00\x00\x03\x00\x02\x00\x40\x1f\x00\x00\x00\xfa\x00\x00\x08\x00\x20\x00\x00\x00" +
				"fact\x04\x00\x00\x00\x01\x00\x00\x00" +
				"data\x08\x00\x00\x00\x00\x00\x80\x3e\x00\x00\x80\xbe"},
		{"extensible pcm24 5.1", []float32{0.5, 0, 0, 0, 0, -1}, 48000, 6, PCM24, true,
			"RIFF\x4e\x00\x00\x00WAVE" +
				"fmt \x28\x00\x00\x00\xfe\xff\x06\x00\x80\xbb\x00\x00\x00\x2f\x0d\x00\x12\x00\x18\x00" +
				"\x16\x00\x18\x00\x3f\x00\x00\x00" +
				"\x01\x00\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71" +
				"data\x12\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteWAV(&buf, tc.in, tc.rate, tc.ch, tc.enc, tc.ext); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tc.bytes {
				t.Fatalf("WriteWAV wrote\n% x\nwant\n% x", got, tc.bytes)
			}
		})
	}
}

// wavCodes are the integer codes each encoding round-trips: the extremes,
// zero, halves and odd low bits. PCM32 codes are multiples of 128 so that
// they survive float32 on the way in.
var wavCodes = map[Encoding][]int64{
	PCM8:  {0, 1, 64, 127, 128, 129, 192, 255},
	PCM16: {-32768, -32767, -16384, -1, 0, 1, 16384, 32767},
	PCM24: {-8388608, -8388607, -4194304, -1, 0, 1, 4194304, 8388607},
	PCM32: {-2147483648, -2147483520, -1073741824, -128, 0, 128, 1073741824, 2147483520},
}

// wavFloats are the float samples for the float encodings: exact binary
// fractions, a value out of ±1 (floats are not clipped), 0.1 (inexact) and a
// subnormal.
var wavFloats = []float32{-1, -0.5, 0, 0.1, 0.25, 1, 1.5, 1e-40}

var encNames = map[Encoding]string{PCM8: "pcm8", PCM16: "pcm16", PCM24: "pcm24", PCM32: "pcm32", Float32: "float32", Float64: "float64"}

// TestWAVRoundTrip writes every encoding × channel count × header style and
// checks the decoded mono against the exact rational mean of the known
// values, computed with math/big rather than the decoder's arithmetic.
func TestWAVRoundTrip(t *testing.T) {
	for _, enc := range []Encoding{PCM8, PCM16, PCM24, PCM32, Float32, Float64} {
		for _, ch := range []int{1, 2, 6} {
			for _, ext := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%dch/ext=%v", encNames[enc], ch, ext), func(t *testing.T) {
					const frames = 37
					in := make([]float32, frames*ch)
					exact := make([]*big.Rat, frames*ch)
					codes, isPCM := wavCodes[enc]
					for i := range in {
						// A stride coprime to the table length mixes values
						// across channels differently in every frame.
						k := (i*3 + i/ch) % 8
						if isPCM {
							code := codes[k]
							full := int64(1) << 31
							switch enc {
							case PCM8:
								code, full = code-128, 128
							case PCM16:
								full = 32768
							case PCM24:
								full = 8388608
							}
							exact[i] = big.NewRat(code, full)
							f, _ := exact[i].Float32()
							in[i] = f
						} else {
							in[i] = wavFloats[k]
							exact[i] = new(big.Rat).SetFloat64(float64(in[i]))
						}
					}
					var buf bytes.Buffer
					if err := WriteWAV(&buf, in, 22050, ch, enc, ext); err != nil {
						t.Fatal(err)
					}
					c := mustDecode(t, buf.Bytes())
					if c.SampleRate != 22050 || c.Channels != ch || c.Format != "wav/"+encNames[enc] {
						t.Fatalf("got %d Hz, %d channels, %q", c.SampleRate, c.Channels, c.Format)
					}
					want := make([]float32, frames)
					for f := range want {
						sum := new(big.Rat)
						for j := 0; j < ch; j++ {
							sum.Add(sum, exact[f*ch+j])
						}
						want[f], _ = sum.Quo(sum, big.NewRat(int64(ch), 1)).Float32()
					}
					equalSamples(t, c.Samples, want)
					checkHeader(t, buf.Bytes(), enc, ch, ext)
				})
			}
		}
	}
}

// checkHeader reads WriteWAV's fmt chunk field by field against the spec.
func checkHeader(t *testing.T, b []byte, enc Encoding, ch int, ext bool) {
	t.Helper()
	le := binary.LittleEndian
	width := map[Encoding]int{PCM8: 1, PCM16: 2, PCM24: 3, PCM32: 4, Float32: 4, Float64: 8}[enc]
	float := enc == Float32 || enc == Float64
	if string(b[12:16]) != "fmt " {
		t.Fatalf("first chunk %q, want fmt", b[12:16])
	}
	size := le.Uint32(b[16:])
	f := b[20 : 20+size]
	tag := uint16(1)
	if float {
		tag = 3
	}
	wantSize := uint32(16)
	switch {
	case ext:
		wantSize = 40
	case float:
		wantSize = 18
	}
	if size != wantSize {
		t.Errorf("fmt size %d, want %d", size, wantSize)
	}
	if got := le.Uint16(f[0:]); ext && got != 0xFFFE || !ext && got != tag {
		t.Errorf("format tag %#x", got)
	}
	if int(le.Uint16(f[2:])) != ch || le.Uint32(f[4:]) != 22050 ||
		int(le.Uint32(f[8:])) != 22050*ch*width || int(le.Uint16(f[12:])) != ch*width || int(le.Uint16(f[14:])) != 8*width {
		t.Errorf("fmt fields % x", f[:16])
	}
	if ext {
		masks := map[int]uint32{1: 0x4, 2: 0x3, 6: 0x3F} // mono centre, FL|FR, 5.1
		guid := []byte{byte(tag), 0, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
		if le.Uint16(f[16:]) != 22 || int(le.Uint16(f[18:])) != 8*width || le.Uint32(f[20:]) != masks[ch] || !bytes.Equal(f[24:40], guid) {
			t.Errorf("extensible fields % x", f[16:40])
		}
	}
}

// TestWAVChunkWalk covers chunks real writers put around the audio.
func TestWAVChunkWalk(t *testing.T) {
	fmt16 := chunk("fmt ", fmtPCM(1, 1, 16000, 2, 16))
	pcm := []byte{0x00, 0x40, 0x00, 0xC0, 0xFF, 0x7F}
	want := []float32{0.5, -0.5, 32767.0 / 32768}
	list := chunk("LIST", []byte("INFOISFT\x0e\x00\x00\x00Lavf58.29.100\x00"))
	for _, tc := range []struct {
		name string
		file []byte
		want []float32
	}{
		{"LIST before data", riff(fmt16, list, chunk("data", pcm)), want},
		{"odd-sized chunks padded", riff(chunk("junk", []byte{1, 2, 3}), fmt16, chunk("bext", []byte{9}), chunk("data", pcm)), want},
		{"fact and JUNK", riff(chunk("JUNK", make([]byte, 28)), fmt16, chunk("fact", []byte{3, 0, 0, 0}), chunk("data", pcm)), want},
		{"fmt after data", riff(chunk("data", pcm), list, fmt16), want},
		{"trailing chunk after data", riff(fmt16, chunk("data", pcm), list), want},
		// Streamed writers leave 0xFFFFFFFF; the audio runs to the end of
		// the file and a trailing half frame is dropped.
		{"oversize data length", riff(fmt16, list, chunkSized("data", 0xFFFFFFFF, append(pcm, 0x11))), want},
		{"oversize by a little", riff(fmt16, chunkSized("data", 100, pcm)), want},
		{"RIFF size wrong", func() []byte {
			b := riff(fmt16, chunk("data", pcm))
			binary.LittleEndian.PutUint32(b[4:], 0)
			return b
		}(), want},
		{"trailing garbage shorter than a chunk header", append(riff(fmt16, chunk("data", pcm)), 'x', 'y', 'z'), want},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDecode(t, tc.file)
			if c.SampleRate != 16000 || c.Channels != 1 {
				t.Errorf("got %d Hz, %d channels", c.SampleRate, c.Channels)
			}
			equalSamples(t, c.Samples, tc.want)
		})
	}
}

// TestWAVBad checks that bad input gives a clear, classified error.
func TestWAVBad(t *testing.T) {
	fmt16 := chunk("fmt ", fmtPCM(1, 1, 16000, 2, 16))
	pcm := chunk("data", []byte{1, 2, 3, 4})
	good := riff(fmt16, pcm)
	for _, tc := range []struct {
		name  string
		file  []byte
		is    error  // sentinel the error must wrap, or nil
		isNot error  // sentinel it must not wrap
		text  string // fragment the message must hold
	}{
		{"truncated in the RIFF header", []byte("RIFF\x24\x00\x00\x00WAV"), nil, ErrUnsupported, "truncated RIFF header"},
		{"truncated in the fmt chunk", good[:30], nil, ErrUnsupported, "truncated WAV"},
		{"truncated before any chunk", good[:12], nil, ErrUnsupported, "no \"fmt \" chunk"},
		{"fmt chunk missing", riff(chunk("LIST", []byte("INFO")), pcm), nil, ErrUnsupported, "no \"fmt \" chunk"},
		{"data chunk missing", riff(fmt16, chunk("LIST", []byte("INFO"))), nil, ErrUnsupported, "no \"data\" chunk"},
		{"fmt chunk too short", riff(chunk("fmt ", fmtPCM(1, 1, 16000, 2, 16)[:14]), pcm), nil, ErrUnsupported, "needs at least 16"},
		{"extensible fmt too short", riff(chunk("fmt ", fmtExt(1, 16000, 16, 16, 4, 1)[:30]), pcm), nil, ErrUnsupported, "needs 40"},
		{"zero channels", riff(chunk("fmt ", fmtPCM(1, 0, 16000, 2, 16)), pcm), nil, ErrUnsupported, "0 channels"},
		{"zero rate", riff(chunk("fmt ", fmtPCM(1, 1, 0, 2, 16)), pcm), nil, ErrUnsupported, "0 Hz"},
		{"zero samples", riff(fmt16, chunk("data", nil)), ErrEmpty, ErrUnsupported, "no whole frame"},
		{"less than one frame", riff(chunk("fmt ", fmtPCM(1, 2, 16000, 4, 16)), chunk("data", []byte{1, 2, 3})), ErrEmpty, nil, "no whole frame"},
		{"empty file", nil, ErrEmpty, nil, "0 bytes"},
		{"MPEG in WAV", riff(chunk("fmt ", fmtPCM(0x0055, 2, 44100, 1, 0)), pcm), ErrUnsupported, nil, "unsupported WAV format 0x0055 (MPEG): convert to PCM16 or float32 WAV, FLAC or MP3"},
		{"mu-law", riff(chunk("fmt ", fmtPCM(7, 1, 8000, 1, 8)), pcm), ErrUnsupported, nil, "0x0007 (mu-law)"},
		{"unknown tag", riff(chunk("fmt ", fmtPCM(0x1234, 1, 8000, 1, 8)), pcm), ErrUnsupported, nil, "0x1234 (unknown)"},
		{"float16", riff(chunk("fmt ", fmtPCM(3, 1, 8000, 2, 16)), pcm), ErrUnsupported, nil, "float sample size of 16 bits"},
		{"pcm 40-bit", riff(chunk("fmt ", fmtPCM(1, 1, 8000, 5, 40)), pcm), ErrUnsupported, nil, "PCM sample size of 40 bits"},
		{"24 bits in 4-byte slots", riff(chunk("fmt ", fmtPCM(1, 1, 8000, 4, 24)), pcm), ErrUnsupported, nil, "block align 4"},
		{"extensible mu-law", riff(chunk("fmt ", fmtExt(1, 8000, 8, 8, 4, 7)), pcm), ErrUnsupported, nil, "extensible format 0x0007"},
		{"extensible foreign GUID", riff(chunk("fmt ", append(fmtExt(1, 8000, 16, 16, 4, 1)[:30], 0x21, 0x07, 0xD3, 0x11, 0x86, 0x44, 0xC8, 0xC1, 0xCA, 0x00)), pcm), ErrUnsupported, nil, "subformat GUID"},
		{"RF64", append([]byte("RF64\xff\xff\xff\xffWAVEds64"), make([]byte, 40)...), ErrUnsupported, nil, "RF64"},
		{"Ogg", []byte("OggS\x00\x02\x00\x00\x00\x00"), ErrUnsupported, nil, "Ogg"},
		{"random garbage", []byte("\x13\x37this is not audio at all, just some text"), nil, ErrUnsupported, "not a WAV, FLAC or MP3 file (starts with 13 37 74 68"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeBytes(tc.file, "x.wav")
			if err == nil {
				t.Fatalf("decoded %d samples, want an error", len(c.Samples))
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, `audio "x.wav": `) || !strings.Contains(msg, tc.text) {
				t.Errorf("error %q, want the file name and %q", msg, tc.text)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", msg, tc.is)
			}
			if tc.isNot != nil && errors.Is(err, tc.isNot) {
				t.Errorf("error %q is %v", msg, tc.isNot)
			}
		})
	}
}

func TestWriteWAVErrors(t *testing.T) {
	var buf bytes.Buffer
	for _, tc := range []struct {
		name         string
		in           []float32
		rate, ch     int
		enc          Encoding
		wantFragment string
	}{
		{"no channels", []float32{0}, 8000, 0, PCM16, "channels"},
		{"no rate", []float32{0}, 0, 1, PCM16, "sample rate"},
		{"partial frame", []float32{0, 0, 0}, 8000, 2, PCM16, "whole number"},
		{"bad encoding", []float32{0}, 8000, 1, Encoding(42), "encoding"},
	} {
		if err := WriteWAV(&buf, tc.in, tc.rate, tc.ch, tc.enc, false); err == nil || !strings.Contains(err.Error(), tc.wantFragment) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.wantFragment)
		}
	}
}

// TestWriteWAVClips checks PCM clipping and NaN handling at every width.
func TestWriteWAVClips(t *testing.T) {
	in := []float32{2, -2, 1, float32(math.NaN()), float32(math.Inf(-1))}
	for _, enc := range []Encoding{PCM8, PCM16, PCM24, PCM32} {
		var buf bytes.Buffer
		if err := WriteWAV(&buf, in, 8000, 1, enc, false); err != nil {
			t.Fatal(err)
		}
		c := mustDecode(t, buf.Bytes())
		top := map[Encoding]float32{PCM8: 127.0 / 128, PCM16: 32767.0 / 32768, PCM24: 8388607.0 / 8388608, PCM32: 1}[enc]
		// PCM32's largest code, 2^31-1, rounds to 1 in float32.
		equalSamples(t, c.Samples, []float32{top, -1, top, 0, -1})
	}
}
