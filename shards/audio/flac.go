package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/mewkiz/flac"
	"github.com/mewkiz/flac/frame"
)

// decodeFLAC decodes a FLAC stream with github.com/mewkiz/flac, which checks
// every frame's CRC, so corruption surfaces as an error rather than noise.
// Samples are scaled by 2^(bits-1), as libsndfile does, at any depth the
// library reads.
func decodeFLAC(data []byte, name string) (clip *Clip, err error) {
	defer recoverDecoder(name, "FLAC", &clip, &err)
	st, err := flac.New(bytes.NewReader(data))
	if err != nil {
		return nil, failf(name, err, "bad FLAC header: %v: the file is corrupt or truncated; re-encode it", err)
	}
	info := st.Info
	channels, bps, rate := int(info.NChannels), int(info.BitsPerSample), int(info.SampleRate)
	if channels < 1 || channels > 8 || bps < 4 || bps > 32 || rate < 1 {
		return nil, failf(name, nil, "bad FLAC stream info (%d channels, %d bits, %d Hz): the header is corrupt; re-encode the file", channels, bps, rate)
	}
	// The declared length may lie; a first guess bounded by the file size
	// keeps a forged header from reserving gigabytes, and append grows past
	// it for real, highly compressed audio.
	samples := make([]float32, 0, min(info.NSamples, 16*uint64(len(data))))
	full := float64(uint64(1) << (bps - 1))
	for {
		fr, err := st.ParseNext()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, failf(name, err, "truncated FLAC after %d samples: the file is cut short; re-download or re-encode it", len(samples))
			}
			return nil, failf(name, err, "corrupt FLAC frame after %d samples: %v: re-encode the file", len(samples), err)
		}
		if err := checkFLACFrame(fr, channels, bps); err != nil {
			return nil, failf(name, ErrUnsupported, "%v: %s", err, convertHint)
		}
		samples = appendFLACMono(samples, fr.Subframes, full)
	}
	if len(samples) == 0 {
		return nil, failf(name, ErrEmpty, "FLAC stream holds no samples: the recording is empty; drop it")
	}
	return &Clip{SampleRate: rate, Channels: channels, Format: fmt.Sprintf("flac/%d", bps), Samples: samples}, nil
}

// checkFLACFrame rejects frames whose layout differs from the stream header;
// the library would otherwise decode them with the wrong depth or mix
// channels of different lengths.
func checkFLACFrame(fr *frame.Frame, channels, bps int) error {
	if fr.BitsPerSample == 0 {
		// The library decodes such a frame with 0 bits, so it is refused
		// rather than turned to noise.
		return errors.New("FLAC frame takes its sample size from the stream header, which the decoder does not handle")
	}
	if int(fr.BitsPerSample) != bps {
		return fmt.Errorf("FLAC frame of %d bits in a %d-bit stream", fr.BitsPerSample, bps)
	}
	if len(fr.Subframes) != channels {
		return fmt.Errorf("FLAC frame of %d channels in a %d-channel stream", len(fr.Subframes), channels)
	}
	for _, sf := range fr.Subframes {
		if len(sf.Samples) != int(fr.BlockSize) {
			return fmt.Errorf("FLAC subframe of %d samples in a %d-sample block", len(sf.Samples), fr.BlockSize)
		}
	}
	return nil
}

// appendFLACMono averages the subframes of one frame exactly (integer sum,
// one rounding to float32), the same rule as WAV.
func appendFLACMono(dst []float32, subs []*frame.Subframe, full float64) []float32 {
	n := len(subs[0].Samples)
	if len(subs) == 1 {
		inv := float32(1 / full) // a power of two: exact
		for _, v := range subs[0].Samples {
			dst = append(dst, float32(v)*inv)
		}
		return dst
	}
	div := full * float64(len(subs))
	for i := 0; i < n; i++ {
		var s int64
		for _, sf := range subs {
			s += int64(sf.Samples[i])
		}
		dst = append(dst, float32(float64(s)/div))
	}
	return dst
}

// recoverDecoder turns a panic inside a third-party decoder into an error:
// those decoders are written for well-formed streams, and one corrupt file
// must not stop a shard run.
func recoverDecoder(name, kind string, clip **Clip, err *error) {
	if r := recover(); r != nil {
		*clip = nil
		*err = failf(name, nil, "%s decoder failed on corrupt data (%v): re-encode the file", kind, r)
	}
}
