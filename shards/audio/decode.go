package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Clip is decoded audio mixed down to one channel.
//
// Feature extraction wants one channel at the model's rate; decoding keeps the
// file's own rate and reports the channel count so that resampling and reject
// reasons can be decided by the caller. The mix is the exact mean of the
// channels (integer sums for PCM, FLAC and MP3, float64 for float WAV) rounded
// once to float32, so it does not depend on the order of additions.
type Clip struct {
	SampleRate int       // the file's own rate, Hz
	Channels   int       // the file's channel count before mixing
	Format     string    // e.g. "wav/pcm16", "wav/pcm24", "wav/float64", "flac/16", "mp3"
	Samples    []float32 // mono, full scale ±1: the channels averaged
}

// Duration is the clip's length in seconds; zero for a clip without a rate,
// so that callers never divide by zero.
func (c *Clip) Duration() float64 {
	if c == nil || c.SampleRate <= 0 {
		return 0
	}
	return float64(len(c.Samples)) / float64(c.SampleRate)
}

// ErrEmpty reports a file that decodes to zero samples, so that callers can
// reject it as empty rather than as corrupt.
var ErrEmpty = errors.New("no audio samples")

// ErrUnsupported reports a valid container whose encoding earl does not read;
// the fix is to convert the file, not to repair it.
var ErrUnsupported = errors.New("unsupported audio encoding")

// convertHint ends every unsupported-encoding message with what to do.
const convertHint = "convert to PCM16 or float32 WAV, FLAC or MP3"

// audioError carries the file name for the message and the sentinel (or the
// underlying cause) for errors.Is.
type audioError struct {
	name  string
	msg   string
	cause error
}

func (e *audioError) Error() string { return fmt.Sprintf("audio %q: %s", e.name, e.msg) }

func (e *audioError) Unwrap() error { return e.cause }

// failf builds an error that wraps cause (may be nil) for errors.Is.
func failf(name string, cause error, format string, args ...any) error {
	return &audioError{name: name, msg: fmt.Sprintf(format, args...), cause: cause}
}

// Decode reads the file at path and decodes it by its content, not its
// extension, because dataset files are often misnamed (MP3 saved as .wav).
// A missing file satisfies errors.Is(err, os.ErrNotExist).
func Decode(path string) (*Clip, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, failf(path, err, "file not found: check the path and the audio root")
		}
		return nil, failf(path, err, "cannot read file: %v", err)
	}
	return DecodeBytes(data, path)
}

// DecodeBytes decodes a whole file held in memory; name is used only in
// errors. The format is chosen by magic bytes: RIFF/WAVE, fLaC, an ID3 tag
// (followed by MPEG audio or, rarely, FLAC) or an MPEG audio frame sync, at
// the start or, for MP3s written after junk, as two chained frame headers in
// the first 64 KiB.
func DecodeBytes(data []byte, name string) (*Clip, error) {
	if len(data) == 0 {
		return nil, failf(name, ErrEmpty, "file is empty (0 bytes): re-export or drop it")
	}
	if len(data) >= 12 && string(data[0:4]) == "RIFF" && string(data[8:12]) == "WAVE" {
		return decodeWAV(data, name)
	}
	if len(data) < 12 && bytes.HasPrefix(data, []byte("RIFF")) {
		return nil, failf(name, nil, "truncated RIFF header (%d bytes): the file is cut short; re-export it", len(data))
	}
	if bytes.HasPrefix(data, []byte("fLaC")) {
		return decodeFLAC(data, name)
	}
	if bytes.HasPrefix(data, []byte("ID3")) {
		body, ok := skipID3v2(data)
		if !ok {
			return nil, failf(name, nil, "truncated ID3 tag (%d bytes): the file is cut short; re-download or re-encode it", len(data))
		}
		if bytes.HasPrefix(body, []byte("fLaC")) {
			return decodeFLAC(body, name)
		}
		return decodeMP3(body, name)
	}
	if h, ok := mpegHeaderAt(data, 0); ok {
		if h.layer() != 3 {
			return nil, failf(name, ErrUnsupported, "MPEG audio layer %d: %s", h.layer(), convertHint)
		}
		return decodeMP3(data, name)
	}
	if err := otherContainer(data, name); err != nil {
		return nil, err
	}
	// Some MP3s start with junk (zeros, a broken tag): accept them when two
	// chained layer III frames appear early in the file.
	if _, _, ok := findMPEGFrame(data, 64<<10, true); ok {
		return decodeMP3(data, name)
	}
	n := min(len(data), 4)
	return nil, failf(name, nil, "not a WAV, FLAC or MP3 file (starts with % x, %d bytes): check that the file is audio", data[:n], len(data))
}

// otherContainer names the container when it is one earl knows of but does
// not read, so the message says "convert" rather than "corrupt"; nil if the
// bytes are no such container.
func otherContainer(data []byte, name string) error {
	known := []struct{ magic, what string }{
		{"RIFF", "RIFF file that is not WAVE"},
		{"RIFX", "big-endian WAV (RIFX)"},
		{"RF64", "RF64 WAV"},
		{"BW64", "BW64 WAV"},
		{"FORM", "AIFF"},
		{"OggS", "Ogg (Vorbis/Opus/FLAC-in-Ogg)"},
		{"\x1aE\xdf\xa3", "Matroska/WebM"},
		{".snd", "Sun/NeXT AU"},
		{"#!AMR", "AMR"},
	}
	for _, k := range known {
		if bytes.HasPrefix(data, []byte(k.magic)) {
			return failf(name, ErrUnsupported, "%s: %s", k.what, convertHint)
		}
	}
	if len(data) >= 12 && string(data[4:8]) == "ftyp" {
		return failf(name, ErrUnsupported, "MP4/M4A (AAC or ALAC): %s", convertHint)
	}
	if len(data) >= 2 && data[0] == 0xFF && data[1]&0xF6 == 0xF0 {
		return failf(name, ErrUnsupported, "AAC (ADTS): %s", convertHint)
	}
	return nil
}

// skipID3v2 returns what follows one or more leading ID3v2 tags; ok is false
// when a tag claims more bytes than the file has.
func skipID3v2(data []byte) (body []byte, ok bool) {
	for len(data) >= 3 && string(data[:3]) == "ID3" {
		if len(data) < 10 {
			return nil, false
		}
		// Sizes are "synchsafe": 7 bits per byte.
		size := int(data[6]&0x7F)<<21 | int(data[7]&0x7F)<<14 | int(data[8]&0x7F)<<7 | int(data[9]&0x7F)
		total := 10 + size
		if data[5]&0x10 != 0 { // footer present
			total += 10
		}
		if total > len(data) {
			return nil, false
		}
		data = data[total:]
	}
	return data, true
}

// mpegHeader is the 32-bit header that starts every MPEG audio frame.
type mpegHeader uint32

func (h mpegHeader) version() int   { return int(h>>19) & 3 } // 0: 2.5, 2: 2, 3: 1
func (h mpegHeader) layer() int     { return 4 - int(h>>17)&3 }
func (h mpegHeader) bitrateIx() int { return int(h>>12) & 15 }
func (h mpegHeader) rateIx() int    { return int(h>>10) & 3 }
func (h mpegHeader) mono() bool     { return int(h>>6)&3 == 3 }

// mpegHeaderAt reads a frame header at data[i:] and accepts it only when every
// field is legal, so that random bytes starting with 0xFF are not taken for
// MPEG audio.
func mpegHeaderAt(data []byte, i int) (mpegHeader, bool) {
	if i < 0 || i+4 > len(data) {
		return 0, false
	}
	h := mpegHeader(uint32(data[i])<<24 | uint32(data[i+1])<<16 | uint32(data[i+2])<<8 | uint32(data[i+3]))
	if h>>21 != 0x7FF || // sync
		h.version() == 1 || // reserved
		(h>>17)&3 == 0 || // reserved layer
		h.bitrateIx() == 15 ||
		h.rateIx() == 3 ||
		h&3 == 2 { // reserved emphasis
		return 0, false
	}
	return h, true
}
