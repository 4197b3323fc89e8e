package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// dominantFreq scans 1 Hz steps for the strongest DFT bin near want.
func dominantFreq(x []float32, rate int, lo, hi float64) float64 {
	best, bestP := 0.0, -1.0
	for f := lo; f <= hi; f++ {
		var re, im float64
		for n, v := range x {
			w := 2 * math.Pi * f * float64(n) / float64(rate)
			re += float64(v) * math.Cos(w)
			im += float64(v) * math.Sin(w)
		}
		if p := re*re + im*im; p > bestP {
			best, bestP = f, p
		}
	}
	return best
}

// LAME 3.100's own decoder (lame --decode, see gen.sh) on the committed
// files: 32 frames from offset 5000 or 10000, the two 16-bit output channels
// summed, so 65536 is full scale.
var (
	lameRef44 = []int{-31094, -30576, -29436, -27700, -25402, -22590, -19320, -15658, -11678, -7464, -3096, 1332, 5736, 10022, 14104, 17902, 21338, 24340, 26848, 28814, 30194, 30962, 31104, 30614, 29506, 27800, 25530, 22742, 19492, 15848, 11884, 7678}
	lameRef22 = []int{-31094, -29434, -25402, -19320, -11680, -3100, 5732, 14102, 21332, 26846, 30192, 31102, 29506, 25530, 19494, 11886, 3318, -5514, -13902, -21172, -26732, -30136, -31112, -29576, -25656, -19666, -12090, -3540, 5296, 13706, 21008, 26618}
)

// TestMP3Sine decodes the committed LAME files. MP3 is lossy, so the checks
// are: rate, channel mode, the gapless length (LAME's tag gives the encoder
// delay and padding, so it is the source's length exactly, as LAME's own
// decoder gives), the dominant frequency within 2 Hz, the amplitude within
// 6% (LAME at 128 kbit/s itself returns the 0.5 tone at 0.475), the phase
// within 0.2 rad (1.4 samples at 44.1 kHz, so a trim off by a sample or two
// fails), and a stretch of samples within 2 LSB per channel of LAME's
// decoder.
func TestMP3Sine(t *testing.T) {
	for _, tc := range []struct {
		file     string
		rate     int
		channels int
		frames   int
		refAt    int
		ref      []int
	}{
		{"testdata/sine_44k_stereo_128k.mp3", 44100, 2, 22050, 10000, lameRef44},
		{"testdata/sine_22k_mono_64k.mp3", 22050, 1, 11025, 5000, lameRef22},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := Decode(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.SampleRate != tc.rate || c.Channels != tc.channels || c.Format != "mp3" || len(c.Samples) != tc.frames {
				t.Fatalf("got %d Hz, %d channels, %q, %d samples; want %d Hz, %d, mp3, %d",
					c.SampleRate, c.Channels, c.Format, len(c.Samples), tc.rate, tc.channels, tc.frames)
			}
			// Skip the first and last 10 ms, where the codec's transients sit.
			edge := tc.rate / 100
			mid := c.Samples[edge : len(c.Samples)-edge]
			if f := dominantFreq(mid, tc.rate, 900, 1100); math.Abs(f-1000) > 2 {
				t.Errorf("dominant frequency %v Hz, want 1000", f)
			}
			amp, phase := fitSine(c.Samples, tc.rate, 1000)
			if math.Abs(amp/0.5-1) > 0.06 || math.Abs(phase) > 0.2 {
				t.Errorf("fitted amplitude %.4f phase %.3f rad, want 0.5 and 0", amp, phase)
			}
			for i, want := range tc.ref {
				got := float64(c.Samples[tc.refAt+i]) * 65536
				if math.Abs(got-float64(want)) > 4 {
					t.Fatalf("sample %d = %.0f/65536, LAME's decoder gives %d/65536", tc.refAt+i, got, want)
				}
			}
		})
	}
}

// TestMP3WithoutLAMETag checks the documented fallback: with the LAME tag
// unreadable only the Info frame is dropped, so delay and padding stay and
// the clip is the encoded frames' length (21 frames of 1152 samples).
func TestMP3WithoutLAMETag(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_44k_stereo_128k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.Replace(data, []byte("LAME3.100"), []byte("XXXX3.100"), 1)
	c, err := DecodeBytes(data, "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Samples) != 21*1152 {
		t.Errorf("got %d samples, want %d", len(c.Samples), 21*1152)
	}
}

func TestMP3Bad(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_22k_mono_64k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	// A layer II header: MPEG-1, layer bits 10, 128 kbit/s, 44.1 kHz.
	layer2 := append([]byte{0xFF, 0xFD, 0x90, 0x00}, make([]byte, 600)...)
	// MPEG-2.5 layer III, 8 kHz.
	mpeg25 := append([]byte{0xFF, 0xE3, 0x18, 0xC4}, make([]byte, 600)...)
	for _, tc := range []struct {
		name string
		file []byte
		is   error
	}{
		{"layer II", layer2, ErrUnsupported},
		{"MPEG-2.5", mpeg25, ErrUnsupported},
		{"ID3 tag only", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), ErrEmpty},
		{"ID3 tag and no frame", []byte("ID3\x04\x00\x00\x00\x00\x00\x00" + "no audio here"), nil},
		{"ID3 tag claiming more than the file", []byte("ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + "abc"), nil},
		{"first frame cut short", data[:30], ErrEmpty},
		{"ADTS AAC", []byte{0xFF, 0xF1, 0x50, 0x80, 0x02, 0x1F, 0xFC}, ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DecodeBytes(tc.file, "x.mp3")
			if err == nil {
				t.Fatalf("decoded %d samples, want an error", len(c.Samples))
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			t.Log(err)
		})
	}
}

// TestMP3Truncated checks a file cut mid-stream decodes what it holds: the
// library treats a short last frame as the end of the stream.
func TestMP3Truncated(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_44k_stereo_128k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeBytes(data[:len(data)/2], "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Samples); n < 8000 || n > 14000 {
		t.Errorf("half the file decoded to %d samples, want about 11000", n)
	}
}

// TestMP3LibraryPanicIsError replays a fuzz find: go-mp3 indexes out of range
// on this corrupt MPEG-2 frame, and the decoder must turn that into an error.
func TestMP3LibraryPanicIsError(t *testing.T) {
	raw, err := os.ReadFile("testdata/fuzz/FuzzDecodeBytes/435026a93a5598e4")
	if err != nil {
		t.Fatal(err)
	}
	lit, ok := strings.CutPrefix(strings.TrimSpace(string(raw)), "go test fuzz v1\n[]byte(")
	if !ok {
		t.Fatal("not a fuzz corpus file")
	}
	data, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = DecodeBytes([]byte(data), "x.mp3")
	if err == nil || !strings.Contains(err.Error(), "MP3 decoder failed on corrupt data") {
		t.Fatalf("err = %v, want the recovered decoder failure", err)
	}
}

// TestMP3JunkBefore checks that an MP3 preceded by junk rather than a tag is
// still found (by two chained frame headers), while junk holding one stray
// header-like word is not taken for MP3.
func TestMP3JunkBefore(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_22k_mono_64k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	junk := append(make([]byte, 1000), "junk\xff\xf3\x84\xc4junk"...) // one valid-looking header
	c, err := DecodeBytes(append(junk, data...), "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != "mp3" || len(c.Samples) != 11025 {
		t.Errorf("got %q, %d samples; want mp3, 11025", c.Format, len(c.Samples))
	}
	if _, err := DecodeBytes(append(junk, make([]byte, 3000)...), "x.mp3"); err == nil || !strings.Contains(err.Error(), "not a WAV, FLAC or MP3") {
		t.Errorf("junk alone: err = %v, want not-audio", err)
	}
}

// TestMP3TrailingTags checks that ID3v1 and APEv2 tags after the audio are
// cut before decoding: their bytes here hold a frame-header-like word the
// library would otherwise decode as audio.
func TestMP3TrailingTags(t *testing.T) {
	data, err := os.ReadFile("testdata/sine_22k_mono_64k.mp3")
	if err != nil {
		t.Fatal(err)
	}
	plain, err := DecodeBytes(data, "x.mp3")
	if err != nil {
		t.Fatal(err)
	}
	// One item (value size, flags, key, value) whose 400-byte value starts
	// like a frame and is long enough to be decoded as one.
	item := []byte("\x90\x01\x00\x00\x00\x00\x00\x00Cover\x00\xff\xf3\x84\xc4")
	for i := 4; i < 400; i++ {
		item = append(item, byte(i*37))
	}
	apeFooter := func(flags uint32) []byte {
		b := []byte("APETAGEX\xd0\x07\x00\x00")
		b = binary.LittleEndian.AppendUint32(b, uint32(len(item)+32)) // items + footer
		b = binary.LittleEndian.AppendUint32(b, 1)
		b = binary.LittleEndian.AppendUint32(b, flags)
		return append(b, make([]byte, 8)...)
	}
	ape := append(append(apeFooter(1<<31|1<<29), item...), apeFooter(1<<31)...)
	id3v1 := append([]byte("TAG\xff\xf3\x84\xc4"), make([]byte, 121)...)
	for _, tc := range []struct {
		name string
		tail []byte
	}{
		{"ID3v1", id3v1},
		{"APEv2", ape},
		{"APEv2 then ID3v1", append(append([]byte(nil), ape...), id3v1...)},
	} {
		c, err := DecodeBytes(append(append([]byte(nil), data...), tc.tail...), "x.mp3")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		equalSamples(t, c.Samples, plain.Samples)
	}
}
