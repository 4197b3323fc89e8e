package audio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/bits"
)

// Encoding of a written WAV file.
type Encoding int

// The encodings WriteWAV writes and DecodeBytes reads back; PCM8 is unsigned
// as the WAV format demands, the other PCM widths are signed.
const (
	PCM8 Encoding = iota
	PCM16
	PCM24
	PCM32
	Float32
	Float64
)

// WAVE format tags from mmreg.h.
const (
	wavTagPCM        = 0x0001
	wavTagFloat      = 0x0003
	wavTagExtensible = 0xFFFE
)

// wavGUIDTail is bytes 2..15 of every KSDATAFORMAT_SUBTYPE_* GUID built from a
// plain format tag (xxxxxxxx-0000-0010-8000-00aa00389b71, stored little-endian);
// bytes 0..1 hold the tag itself.
var wavGUIDTail = [14]byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}

// wavTagNames names the compressed WAV formats met in the wild, so that the
// reject reason tells the user what the file really holds.
var wavTagNames = map[uint16]string{
	0x0002: "Microsoft ADPCM",
	0x0006: "A-law",
	0x0007: "mu-law",
	0x0011: "IMA ADPCM",
	0x0031: "GSM 6.10",
	0x0050: "MPEG",
	0x0055: "MPEG",
	0x0092: "AC-3 over S/PDIF",
	0x00FF: "AAC",
	0x0161: "WMA",
	0x0162: "WMA Pro",
	0x0163: "WMA Lossless",
	0x1610: "AAC",
	0x2000: "AC-3",
	0xF1AC: "FLAC",
}

// wavFormat is what decoding needs from the "fmt " chunk.
type wavFormat struct {
	channels int
	rate     int
	width    int  // container bytes per sample: the stepping unit
	float    bool // IEEE float rather than integer PCM
}

// name is Clip.Format: the container width, because that is what
// sets the scaling, even when fewer bits are valid.
func (f wavFormat) name() string {
	if f.float {
		return fmt.Sprintf("wav/float%d", 8*f.width)
	}
	return fmt.Sprintf("wav/pcm%d", 8*f.width)
}

// decodeWAV walks the RIFF chunks and converts the first data chunk.
func decodeWAV(data []byte, name string) (*Clip, error) {
	le := binary.LittleEndian
	var (
		fmtBody  []byte
		pcm      []byte
		haveFmt  bool
		haveData bool
	)
	// The RIFF size field is ignored: streamed writers leave it 0 or
	// 0xFFFFFFFF, and the file's real length is what bounds every read.
	pos := 12
	for pos+8 <= len(data) && !(haveFmt && haveData) {
		id := string(data[pos : pos+4])
		size := uint64(le.Uint32(data[pos+4:]))
		body := pos + 8
		end := uint64(body) + size
		overrun := end > uint64(len(data))
		switch id {
		case "fmt ":
			if overrun {
				return nil, failf(name, nil, "truncated WAV: the \"fmt \" chunk claims %d bytes but the file ends after %d: re-export the file", size, len(data)-body)
			}
			if !haveFmt {
				fmtBody, haveFmt = data[body:end], true
			}
		case "data":
			if overrun {
				// A writer that streamed and never patched the size (often
				// 0xFFFFFFFF): the audio runs to the end of the file.
				end = uint64(len(data))
			}
			if !haveData {
				pcm, haveData = data[body:end], true
			}
		}
		if overrun {
			break
		}
		pos = int(end + size&1) // chunks are padded to even sizes
	}
	if !haveFmt {
		return nil, failf(name, nil, "WAV has no \"fmt \" chunk: the file is corrupt or truncated; re-export it")
	}
	f, err := parseWAVFormat(fmtBody, name)
	if err != nil {
		return nil, err
	}
	if !haveData {
		return nil, failf(name, nil, "WAV has no \"data\" chunk: the file is corrupt or truncated; re-export it")
	}
	frameBytes := f.channels * f.width
	frames := len(pcm) / frameBytes // whole frames only
	if frames == 0 {
		return nil, failf(name, ErrEmpty, "WAV data chunk holds no whole frame (%d bytes, %d bytes per frame): the recording is empty; drop it", len(pcm), frameBytes)
	}
	clip := &Clip{SampleRate: f.rate, Channels: f.channels, Format: f.name(), Samples: make([]float32, frames)}
	wavToMono(clip.Samples, pcm[:frames*frameBytes], f)
	return clip, nil
}

// parseWAVFormat reads the "fmt " chunk, resolving WAVE_FORMAT_EXTENSIBLE to
// its subformat.
func parseWAVFormat(b []byte, name string) (wavFormat, error) {
	le := binary.LittleEndian
	if len(b) < 16 {
		return wavFormat{}, failf(name, nil, "WAV \"fmt \" chunk is %d bytes, needs at least 16: the header is corrupt; re-export the file", len(b))
	}
	tag := le.Uint16(b[0:])
	channels := int(le.Uint16(b[2:]))
	rate := int(le.Uint32(b[4:]))
	blockAlign := int(le.Uint16(b[12:]))
	bitsPer := int(le.Uint16(b[14:]))
	ext := tag == wavTagExtensible
	if ext {
		if len(b) < 40 {
			return wavFormat{}, failf(name, nil, "WAV extensible \"fmt \" chunk is %d bytes, needs 40: the header is corrupt; re-export the file", len(b))
		}
		guid := b[24:40]
		if [14]byte(guid[2:]) != wavGUIDTail {
			return wavFormat{}, failf(name, ErrUnsupported, "WAV extensible subformat GUID % x is not PCM or IEEE float: %s", guid, convertHint)
		}
		tag = le.Uint16(guid[0:])
		// Valid bits (b[18:20]) may be fewer than the container's; samples are
		// left-justified, so scaling by the container is right either way.
		if bitsPer%8 != 0 {
			return wavFormat{}, failf(name, nil, "WAV extensible container of %d bits is not a whole number of bytes: the header is corrupt; re-export the file", bitsPer)
		}
	}
	if channels == 0 {
		return wavFormat{}, failf(name, nil, "WAV header declares 0 channels: the header is corrupt; re-export the file")
	}
	if rate == 0 {
		return wavFormat{}, failf(name, nil, "WAV header declares a sample rate of 0 Hz: the header is corrupt; re-export the file")
	}
	f := wavFormat{channels: channels, rate: rate, width: (bitsPer + 7) / 8}
	kind := ""
	if ext {
		kind = "extensible "
	}
	switch tag {
	case wavTagPCM:
		if bitsPer < 1 || bitsPer > 32 {
			return wavFormat{}, failf(name, ErrUnsupported, "unsupported WAV %sPCM sample size of %d bits: %s", kind, bitsPer, convertHint)
		}
	case wavTagFloat:
		if bitsPer != 32 && bitsPer != 64 {
			return wavFormat{}, failf(name, ErrUnsupported, "unsupported WAV %sfloat sample size of %d bits: %s", kind, bitsPer, convertHint)
		}
		f.float = true
	default:
		what := wavTagNames[tag]
		if what == "" {
			what = "unknown"
		}
		return wavFormat{}, failf(name, ErrUnsupported, "unsupported WAV %sformat 0x%04X (%s): %s", kind, tag, what, convertHint)
	}
	// A block align that disagrees makes the layout ambiguous (for example 24
	// bits in 4-byte slots); libsndfile guesses, earl asks for a clean file.
	// Zero is a common writer bug that carries no information, so it passes.
	if blockAlign != 0 && blockAlign != channels*f.width {
		return wavFormat{}, failf(name, ErrUnsupported, "WAV block align %d does not match %d channels of %d-bit samples: %s", blockAlign, channels, bitsPer, convertHint)
	}
	return f, nil
}

// wavToMono converts len(dst) frames of src to mono full-scale floats.
//
// Integer PCM is scaled as libsndfile reads it (x/2^(bits-1), 8-bit as
// (x-128)/128). Channels are averaged exactly: integer samples are summed as
// integers and floats in float64, and the mean is rounded to float32 once, so
// the result is the correctly rounded mean rather than depending on the order
// of float32 additions. Mono and stereo have their own loops because they are
// nearly all real data and the sharder is decode-bound.
func wavToMono(dst []float32, src []byte, f wavFormat) {
	le := binary.LittleEndian
	ch := f.channels
	// Each loop slices one frame with a three-index expression so that the
	// compiler checks bounds once per frame, not once per byte read.
	if f.float {
		switch {
		case f.width == 4 && ch == 1:
			for i := range dst {
				dst[i] = math.Float32frombits(le.Uint32(src[4*i : 4*i+4 : 4*i+4]))
			}
		case f.width == 4 && ch == 2:
			for i := range dst {
				fr := src[8*i : 8*i+8 : 8*i+8]
				a := float64(math.Float32frombits(le.Uint32(fr[0:4])))
				b := float64(math.Float32frombits(le.Uint32(fr[4:8])))
				dst[i] = float32((a + b) * 0.5)
			}
		case f.width == 8 && ch == 1:
			for i := range dst {
				dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i : 8*i+8 : 8*i+8])))
			}
		default:
			step := ch * f.width
			for i := range dst {
				fr := src[i*step : (i+1)*step]
				var s float64
				if f.width == 4 {
					for j := 0; j+4 <= len(fr); j += 4 {
						s += float64(math.Float32frombits(le.Uint32(fr[j:])))
					}
				} else {
					for j := 0; j+8 <= len(fr); j += 8 {
						s += math.Float64frombits(le.Uint64(fr[j:]))
					}
				}
				dst[i] = float32(s / float64(ch))
			}
		}
		return
	}

	switch {
	case f.width == 2 && ch == 1:
		for i := range dst {
			dst[i] = float32(int16(le.Uint16(src[2*i:2*i+2:2*i+2]))) * (1.0 / 32768)
		}
	case f.width == 2 && ch == 2:
		for i := range dst {
			fr := src[4*i : 4*i+4 : 4*i+4]
			a := int32(int16(le.Uint16(fr[0:2])))
			b := int32(int16(le.Uint16(fr[2:4])))
			dst[i] = float32(a+b) * (1.0 / 65536)
		}
	case f.width == 1 && ch == 1:
		for i, b := range src[:len(dst)] {
			dst[i] = float32(int32(b)-128) * (1.0 / 128)
		}
	case f.width == 1 && ch == 2:
		for i := range dst {
			fr := src[2*i : 2*i+2 : 2*i+2]
			dst[i] = float32(int32(fr[0])+int32(fr[1])-256) * (1.0 / 256)
		}
	case f.width == 3 && ch == 1:
		for i := range dst {
			dst[i] = float32(wavPCM24(src[3*i:3*i+3:3*i+3])) * (1.0 / 8388608)
		}
	case f.width == 3 && ch == 2:
		for i := range dst {
			fr := src[6*i : 6*i+6 : 6*i+6]
			dst[i] = float32(wavPCM24(fr[0:3])+wavPCM24(fr[3:6])) * (1.0 / 16777216)
		}
	case f.width == 4 && ch == 1:
		for i := range dst {
			// int32 → float32 rounds once; the power-of-two scale is exact.
			dst[i] = float32(int32(le.Uint32(src[4*i:4*i+4:4*i+4]))) * (1.0 / 2147483648)
		}
	default:
		// full is 2^(bits-1) for the container width: the integer full scale.
		full := float64(uint64(1) << (8*f.width - 1))
		step := ch * f.width
		pow2 := bits.OnesCount(uint(ch)) == 1
		inv := float32(1 / (full * float64(ch))) // exact when ch is a power of two
		div := full * float64(ch)
		for i := range dst {
			s := wavPCMSum(src[i*step:(i+1)*step], f.width)
			if pow2 {
				dst[i] = float32(s) * inv
			} else {
				dst[i] = float32(float64(s) / div)
			}
		}
	}
}

// wavPCM24 sign-extends one little-endian 24-bit sample.
func wavPCM24(b []byte) int32 {
	_ = b[2]
	return int32(uint32(b[0])<<8|uint32(b[1])<<16|uint32(b[2])<<24) >> 8
}

// wavPCMSum adds the integer samples of one frame exactly, 8-bit ones re-centred
// on zero.
func wavPCMSum(fr []byte, width int) int64 {
	le := binary.LittleEndian
	var s int64
	switch width {
	case 1:
		for _, b := range fr {
			s += int64(b) - 128
		}
	case 2:
		for j := 0; j+2 <= len(fr); j += 2 {
			s += int64(int16(le.Uint16(fr[j:])))
		}
	case 3:
		for j := 0; j+3 <= len(fr); j += 3 {
			s += int64(wavPCM24(fr[j:]))
		}
	case 4:
		for j := 0; j+4 <= len(fr); j += 4 {
			s += int64(int32(le.Uint32(fr[j:])))
		}
	}
	return s
}

// wavChannelMasks are the usual Microsoft speaker layouts for 1–8 channels
// (mono is front centre, 6 is 5.1, 8 is 7.1); other counts get 0, which the
// format defines as "no speaker assignment".
var wavChannelMasks = [...]uint32{1: 0x4, 2: 0x3, 3: 0x7, 4: 0x33, 5: 0x37, 6: 0x3F, 7: 0x13F, 8: 0x63F}

// WriteWAV writes interleaved frames (len = frames*channels, values in ±1,
// clipped for PCM) as a WAV file; extensible=true writes
// WAVE_FORMAT_EXTENSIBLE (0xFFFE) with the right subformat GUID and channel
// mask.
//
// PCM is scaled by 2^(bits-1) and rounded, the exact inverse of the reader,
// so samples read from a file write back bit-identical (+1.0 itself clips to
// the largest code). NaN is written as silence. Float files carry the "fact"
// chunk the format requires for non-PCM data. It exists so tests and tools
// can produce every layout the decoder accepts.
func WriteWAV(w io.Writer, interleaved []float32, rate, channels int, enc Encoding, extensible bool) error {
	if channels < 1 || channels > math.MaxUint16 {
		return fmt.Errorf("audio: WriteWAV: %d channels, want 1..65535", channels)
	}
	if rate < 1 || int64(rate) > math.MaxUint32 {
		return fmt.Errorf("audio: WriteWAV: sample rate %d Hz, want 1..%d", rate, uint32(math.MaxUint32))
	}
	if len(interleaved)%channels != 0 {
		return fmt.Errorf("audio: WriteWAV: %d samples is not a whole number of %d-channel frames", len(interleaved), channels)
	}
	var width int
	var float bool
	switch enc {
	case PCM8:
		width = 1
	case PCM16:
		width = 2
	case PCM24:
		width = 3
	case PCM32:
		width = 4
	case Float32:
		width, float = 4, true
	case Float64:
		width, float = 8, true
	default:
		return fmt.Errorf("audio: WriteWAV: unknown encoding %d", int(enc))
	}
	frames := len(interleaved) / channels
	blockAlign := channels * width
	if blockAlign > math.MaxUint16 {
		return fmt.Errorf("audio: WriteWAV: %d channels of %d bytes exceed the 65535-byte frame limit", channels, width)
	}
	dataSize := uint64(len(interleaved)) * uint64(width)

	le := binary.LittleEndian
	tag := uint16(wavTagPCM)
	if float {
		tag = wavTagFloat
	}
	hdrTag := tag
	if extensible {
		hdrTag = wavTagExtensible
	}
	var fmtBody []byte
	fmtBody = le.AppendUint16(fmtBody, hdrTag)
	fmtBody = le.AppendUint16(fmtBody, uint16(channels))
	fmtBody = le.AppendUint32(fmtBody, uint32(rate))
	fmtBody = le.AppendUint32(fmtBody, uint32(uint64(rate)*uint64(blockAlign)))
	fmtBody = le.AppendUint16(fmtBody, uint16(blockAlign))
	fmtBody = le.AppendUint16(fmtBody, uint16(8*width))
	switch {
	case extensible:
		var mask uint32
		if channels < len(wavChannelMasks) {
			mask = wavChannelMasks[channels]
		}
		fmtBody = le.AppendUint16(fmtBody, 22)
		fmtBody = le.AppendUint16(fmtBody, uint16(8*width)) // valid bits
		fmtBody = le.AppendUint32(fmtBody, mask)
		fmtBody = le.AppendUint16(fmtBody, tag)
		fmtBody = append(fmtBody, wavGUIDTail[:]...)
	case float:
		fmtBody = le.AppendUint16(fmtBody, 0) // cbSize: non-PCM fmt is 18 bytes
	}

	hdr := []byte("RIFF\x00\x00\x00\x00WAVE")
	hdr = append(hdr, "fmt "...)
	hdr = le.AppendUint32(hdr, uint32(len(fmtBody)))
	hdr = append(hdr, fmtBody...)
	if float {
		hdr = append(hdr, "fact"...)
		hdr = le.AppendUint32(hdr, 4)
		hdr = le.AppendUint32(hdr, uint32(frames))
	}
	hdr = append(hdr, "data"...)
	hdr = le.AppendUint32(hdr, uint32(dataSize))
	pad := dataSize & 1
	riff := uint64(len(hdr)-8) + dataSize + pad
	if riff > math.MaxUint32 {
		return fmt.Errorf("audio: WriteWAV: %d bytes of audio exceed the 4 GiB WAV limit", dataSize)
	}
	le.PutUint32(hdr[4:], uint32(riff))
	if _, err := w.Write(hdr); err != nil {
		return err
	}

	const chunk = 8192
	buf := make([]byte, 0, chunk*width)
	for start := 0; start < len(interleaved); start += chunk {
		buf = buf[:0]
		for _, x := range interleaved[start:min(start+chunk, len(interleaved))] {
			switch enc {
			case PCM8:
				buf = append(buf, byte(wavQuantize(x, 128, -128, 127)+128))
			case PCM16:
				buf = le.AppendUint16(buf, uint16(int16(wavQuantize(x, 32768, math.MinInt16, math.MaxInt16))))
			case PCM24:
				v := uint32(wavQuantize(x, 8388608, -8388608, 8388607))
				buf = append(buf, byte(v), byte(v>>8), byte(v>>16))
			case PCM32:
				buf = le.AppendUint32(buf, uint32(int32(wavQuantize(x, 2147483648, math.MinInt32, math.MaxInt32))))
			case Float32:
				buf = le.AppendUint32(buf, math.Float32bits(x))
			case Float64:
				buf = le.AppendUint64(buf, math.Float64bits(float64(x)))
			}
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
	}
	if pad != 0 {
		if _, err := w.Write([]byte{0}); err != nil {
			return err
		}
	}
	return nil
}

// wavQuantize scales, rounds half away from zero and clips one sample.
func wavQuantize(x float32, scale float64, lo, hi int64) int64 {
	if x != x { // NaN
		return 0
	}
	v := math.Round(float64(x) * scale)
	if v <= float64(lo) {
		return lo
	}
	if v >= float64(hi) {
		return hi
	}
	return int64(v)
}
