package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/hajimehoshi/go-mp3"
)

// decodeMP3 decodes MPEG-1/2 layer III with github.com/hajimehoshi/go-mp3.
//
// The library always yields 16-bit stereo (mono streams duplicated), so the
// samples are scaled by 1/32768 and the two outputs averaged; Channels comes
// from the first frame header (1 for single-channel mode, else 2) because the
// library does not report it.
//
// The library decodes whole frames and trims nothing, so the raw output
// starts with the Xing/Info frame's silence plus the encoder and decoder
// delay (1152 + 576 + 529 samples for LAME at 44.1 kHz) and ends with
// padding. As ffmpeg and mpg123 do by default, and so the audio reference
// pipelines load, the Xing/Info frame is dropped and, when LAME's tag gives
// the encoder delay and padding, the output is trimmed to the encoder's input
// exactly (LAME's own decoder gives the same length and alignment). Files
// without that tag keep the delay and padding: up to about two frames
// (~50 ms at 44.1 kHz) more than the source.
func decodeMP3(data []byte, name string) (clip *Clip, err error) {
	defer recoverDecoder(name, "MP3", &clip, &err)
	data = trimMP3Tags(data)
	if len(data) == 0 {
		return nil, failf(name, ErrEmpty, "MP3 holds tags but no audio: drop it")
	}
	first, h, ok := findMPEGFrame(data, len(data), true)
	if !ok {
		first, h, ok = findMPEGFrame(data, len(data), false)
	}
	if !ok {
		return nil, failf(name, nil, "no MPEG audio frame found: the file is corrupt or not audio; re-encode it")
	}
	switch {
	case h.layer() != 3:
		return nil, failf(name, ErrUnsupported, "MPEG audio layer %d: %s", h.layer(), convertHint)
	case h.version() == 0:
		return nil, failf(name, ErrUnsupported, "MPEG-2.5 layer III (8-12 kHz MP3): %s", convertHint)
	case h.bitrateIx() == 0:
		return nil, failf(name, ErrUnsupported, "free-format bitrate MP3: %s", convertHint)
	}
	channels := 2
	if h.mono() {
		channels = 1
	}

	// Hiding Seek keeps the library from scanning every frame header up
	// front to compute a length that is not needed.
	dec, err := mp3.NewDecoder(struct{ io.Reader }{bytes.NewReader(data[first:])})
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, failf(name, ErrEmpty, "MP3 holds no complete frame: the file is empty or cut short; drop it")
		}
		return nil, failf(name, err, "corrupt MP3: %v: re-encode the file", err)
	}
	samples := make([]float32, 0, mp3SampleGuess(h, len(data)-first))
	buf := make([]byte, 1<<14)
	have := 0
	le := binary.LittleEndian
	for {
		n, rerr := dec.Read(buf[have:])
		have += n
		whole := have &^ 3 // one 16-bit stereo frame is 4 bytes
		for i := 0; i < whole; i += 4 {
			l := int32(int16(le.Uint16(buf[i:])))
			r := int32(int16(le.Uint16(buf[i+2:])))
			samples = append(samples, float32(l+r)*(1.0/65536))
		}
		have = copy(buf, buf[whole:have])
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return nil, failf(name, rerr, "corrupt MP3 after %d samples: %v: re-encode the file", len(samples), rerr)
		}
	}
	samples = trimGapless(samples, data[first:], h)
	if len(samples) == 0 {
		return nil, failf(name, ErrEmpty, "MP3 decodes to no samples: the recording is empty; drop it")
	}
	return &Clip{SampleRate: dec.SampleRate(), Channels: channels, Format: "mp3", Samples: samples}, nil
}

// mp3SampleGuess sizes the output from the first frame's bitrate; it is only
// a capacity hint, bounded by the file size.
func mp3SampleGuess(h mpegHeader, size int) int {
	n := h.frameLen()
	if n <= 0 {
		return 0
	}
	return size / n * h.frameSamples()
}

// trimMP3Tags drops trailing ID3v1 and APEv2 tags, whose bytes the library
// would otherwise scan for a frame sync and could mistake for audio.
func trimMP3Tags(data []byte) []byte {
	if n := len(data); n >= 128 && string(data[n-128:n-125]) == "TAG" {
		data = data[:n-128]
	}
	if n := len(data); n >= 32 && string(data[n-32:n-24]) == "APETAGEX" {
		size := int64(binary.LittleEndian.Uint32(data[n-20:])) // tag items + footer
		if flags := binary.LittleEndian.Uint32(data[n-12:]); flags&(1<<31) != 0 {
			size += 32 // header present
		}
		if size <= int64(n) {
			data = data[:n-int(size)]
		}
	}
	return data
}

// mp3DecoderDelay is the synthesis filterbank's delay in samples, which the
// LAME tag's encoder delay does not include (the value mpg123 and ffmpeg
// add; the test file confirms it for go-mp3).
const mp3DecoderDelay = 529

// trimGapless drops the Xing/Info frame's samples and, given a LAME tag, the
// encoder delay and padding. frame holds the stream from its first frame
// header h. Tags that do not fit the decoded length are ignored.
func trimGapless(samples []float32, frame []byte, h mpegHeader) []float32 {
	spf := h.frameSamples()
	side := 32 // side information bytes: MPEG-1 stereo
	if h.version() != 3 {
		side = 17
		if h.mono() {
			side = 9
		}
	} else if h.mono() {
		side = 17
	}
	off := 4 + side
	if uint32(h)&0x10000 == 0 { // protection bit clear: a CRC follows the header
		off += 2
	}
	if off+8 > len(frame) || (string(frame[off:off+4]) != "Xing" && string(frame[off:off+4]) != "Info") {
		return samples
	}
	if len(samples) < spf {
		return samples
	}
	be := binary.BigEndian
	flags := be.Uint32(frame[off+4:])
	p := off + 8
	frames := -1
	if flags&1 != 0 {
		if p+4 > len(frame) {
			return samples[spf:]
		}
		frames = int(be.Uint32(frame[p:]))
		p += 4
	}
	if flags&2 != 0 {
		p += 4
	}
	if flags&4 != 0 {
		p += 100
	}
	if flags&8 != 0 {
		p += 4
	}
	audio := samples[spf:] // the Info frame decodes to silence, not audio
	if p+24 > len(frame) {
		return audio
	}
	enc := string(frame[p : p+4])
	if enc != "LAME" && enc != "Lavc" && enc != "Lavf" {
		return audio
	}
	dp := frame[p+21:]
	delay := int(dp[0])<<4 | int(dp[1])>>4
	padding := int(dp[1]&0x0F)<<8 | int(dp[2])
	start := delay + mp3DecoderDelay
	end := len(audio) - padding + mp3DecoderDelay
	if frames >= 0 && frames <= len(audio)/spf+1 {
		end = frames*spf - padding + mp3DecoderDelay
	}
	end = min(end, len(audio))
	if start >= end {
		return audio
	}
	return audio[start:end]
}

// Layer III bitrates in kbit/s by bitrate index, MPEG-1 and MPEG-2/2.5.
var mp3Kbps = [2][15]int{
	{0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
	{0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
}

// rate is the sample rate in Hz: MPEG-2 halves MPEG-1's, MPEG-2.5 quarters.
func (h mpegHeader) rate() int {
	base := [3]int{44100, 48000, 32000}[h.rateIx()]
	switch h.version() {
	case 2:
		return base / 2
	case 0:
		return base / 4
	}
	return base
}

// frameSamples is the samples per channel one layer III frame decodes to.
func (h mpegHeader) frameSamples() int {
	if h.version() == 3 {
		return 1152
	}
	return 576
}

// frameLen is a layer III frame's length in bytes, header included; 0 for
// other layers and free-format streams, whose length the header does not give.
func (h mpegHeader) frameLen() int {
	if h.layer() != 3 || h.bitrateIx() == 0 {
		return 0
	}
	lsf := 0
	if h.version() != 3 {
		lsf = 1
	}
	pad := int(h>>9) & 1
	return h.frameSamples()/8*1000*mp3Kbps[lsf][h.bitrateIx()]/h.rate() + pad
}

// findMPEGFrame returns the first valid frame header in data[:limit]. With
// confirm, a layer III header counts only when the next frame's header
// follows where its length says (or the data ends there): the bytes 0xFF 0xFx
// turn up by chance in tags and junk, two chained headers rarely do.
func findMPEGFrame(data []byte, limit int, confirm bool) (int, mpegHeader, bool) {
	limit = min(limit, len(data)-4)
	for i := 0; i <= limit; i++ {
		if data[i] != 0xFF {
			continue
		}
		h, ok := mpegHeaderAt(data, i)
		if !ok {
			continue
		}
		if !confirm {
			return i, h, true
		}
		if n := h.frameLen(); n > 0 {
			if next := i + n; next == len(data) {
				return i, h, true
			} else if _, ok := mpegHeaderAt(data, next); ok {
				return i, h, true
			}
		}
	}
	return 0, 0, false
}
