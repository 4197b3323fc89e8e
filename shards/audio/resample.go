package audio

import (
	"fmt"
	"math"
	"math/bits"
	"sync"
)

// Filter design. Every conversion uses one windowed-sinc low-pass whose
// frequencies scale with m = min(from, to): passband to 15/32·m, stopband from
// 17/32·m, cutoff m/2. For 44.1 kHz → 16 kHz that is pass to 7.5 kHz and stop
// from 8.5 kHz, so nothing that survives the filter can fold back below 7.5 kHz
// (the band the log-mel front end cares about). 70 dB of ripple and
// attenuation leaves 10 dB of margin over the −60 dB error budget.
const (
	// resampleAttenuationDB is the design ripple/attenuation fed to Kaiser's formulas.
	resampleAttenuationDB = 70.0
	// resampleBeta is Kaiser's empirical beta for resampleAttenuationDB (> 50 dB branch).
	resampleBeta = 0.1102 * (resampleAttenuationDB - 8.7)
	// maxResampleRate rejects rates that can only be mistakes (Hz vs mHz, a
	// sample count passed as a rate) before they size a table.
	maxResampleRate = 1_000_000
	// maxExactPhases is the largest reduced output step L for which every
	// phase gets its own exact row (1024 rows of 192 taps are 768 KiB).
	maxExactPhases = 1024
	// interpPhases is the row count of the interpolated table used when L is
	// larger (odd rates such as 44056 Hz). Linear interpolation between rows
	// Δ = 1/512 input sample apart errs by at most (2π·f·Δ)²/8 relative for
	// content at f ≤ 17/32 cycles per input sample (the stopband edge): below
	// −105 dB, far under the design ripple.
	interpPhases = 512
	// maxTableFloats bounds the filter table (64 MiB) so an extreme ratio
	// (1 MHz → 1 Hz needs ~70 million taps) fails at construction instead of
	// exhausting memory.
	maxTableFloats = 1 << 24
	// tapAlign pads each row so the dot kernel runs whole 8-wide vectors.
	tapAlign = 8
)

// Resampler converts mono float32 audio from one rate to another. Safe for
// concurrent use: all state is built by NewResampler and only read afterwards.
//
// Output sample k is the band-limited input at input time k·from/to (input
// and output sample 0 coincide); input outside [0, n) is taken as zero, so the
// first and last filter half-lengths of the output see zero padding.
type Resampler struct {
	from, to int
	// l and m are to and from divided by their gcd: output k sits at input
	// position k·m/l, i.e. integer part (k·m)/l and phase (k·m)%l.
	l, m int64
	// half is the first tap's distance before the integer input position:
	// row entry i multiplies input sample n0-half+1+i.
	half int
	// taps is the row stride (a multiple of tapAlign); entries beyond the
	// window are zero.
	taps int
	// exact says table has l rows, one per phase; otherwise it has
	// interpPhases+1 rows at fractions j/interpPhases and the output
	// interpolates linearly between the two rows around its phase.
	exact bool
	table []float32
}

// NewResampler designs the filter for converting from Hz to to Hz and
// precomputes its polyphase table. It returns an error for rates that are not
// positive, above 1 MHz, or so far apart that the table would not fit in 64 MiB.
func NewResampler(from, to int) (*Resampler, error) {
	if from <= 0 || to <= 0 {
		return nil, fmt.Errorf("audio: resample %d Hz → %d Hz: rates must be positive", from, to)
	}
	if from > maxResampleRate || to > maxResampleRate {
		return nil, fmt.Errorf("audio: resample %d Hz → %d Hz: rates above %d Hz are not supported (is the rate in Hz?)", from, to, maxResampleRate)
	}
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, l: int64(to / g), m: int64(from / g)}
	if from == to {
		return r, nil
	}

	// Work in units of input samples: the filter is a continuous function
	// h(τ) of the distance τ (in input samples) between the output time and
	// an input sample, so any fractional phase can be evaluated exactly.
	m := float64(min(from, to))
	cutoff := m / 2 / float64(from)                      // cycles per input sample
	transition := 2 * math.Pi * (m / 16) / float64(from) // radians per input sample
	// Kaiser's length estimate N−1 = (A−7.95)/(2.285·Δω); half of it is the
	// window's half-width.
	width := (resampleAttenuationDB - 7.95) / (2.285 * transition) / 2
	r.half = int(math.Floor(width)) + 1
	r.taps = (2*r.half + tapAlign - 1) / tapAlign * tapAlign

	rows := interpPhases + 1
	r.exact = r.l <= maxExactPhases
	if r.exact {
		rows = int(r.l)
	}
	if r.taps > maxTableFloats/rows {
		return nil, fmt.Errorf("audio: resample %d Hz → %d Hz: ratio too extreme (%d-tap filter); resample in two steps", from, to, r.taps)
	}
	r.table = make([]float32, rows*r.taps)
	i0Beta := besselI0(resampleBeta)
	for p := range rows {
		var frac float64
		if r.exact {
			frac = float64(p) / float64(r.l)
		} else {
			frac = float64(p) / interpPhases
		}
		out := r.table[p*r.taps : (p+1)*r.taps]
		for i := range out {
			tau := frac + float64(r.half-1-i)
			if math.Abs(tau) <= width {
				q := tau / width
				w := besselI0(resampleBeta*math.Sqrt(1-q*q)) / i0Beta
				// 2·cutoff·sinc is the ideal low-pass for unit-spaced input:
				// gain 1 when upsampling, to/from when downsampling.
				out[i] = float32(2 * cutoff * sinc(2*cutoff*tau) * w)
			}
		}
	}
	return r, nil
}

// OutputLen returns the number of samples Resample produces for n input
// samples: ceil(n·to/from), as librosa does. It is 0 for n <= 0 and panics
// if the length does not fit in an int.
func (r *Resampler) OutputLen(n int) int {
	if n <= 0 {
		return 0
	}
	// 128-bit product so that no n·to overflows; only a result that does
	// not fit in an int (no such slice could exist) panics.
	hi, lo := bits.Mul64(uint64(n), uint64(r.l))
	var q, rem uint64
	if hi < uint64(r.m) {
		q, rem = bits.Div64(hi, lo, uint64(r.m))
	}
	if hi >= uint64(r.m) || q > math.MaxInt || q == math.MaxInt && rem != 0 {
		panic(fmt.Sprintf("audio: OutputLen(%d) for %d Hz → %d Hz overflows int", n, r.from, r.to))
	}
	if rem != 0 {
		q++
	}
	return int(q)
}

// Resample converts src and appends the result to dst[:0], reusing dst's
// capacity, and returns it. src and dst must not overlap.
func (r *Resampler) Resample(dst, src []float32) []float32 {
	n := r.OutputLen(len(src))
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	if r.from == r.to {
		copy(dst, src)
		return dst
	}
	taps, half := r.taps, r.half
	// pos = k·m split into n0 = pos/l and phase = pos%l, advanced
	// incrementally so the loop has no division.
	stepInt, stepFrac := r.m/r.l, r.m%r.l
	var n0, phase int64
	for k := range dst {
		start := int(n0) - half + 1
		// Clip the window to the input: samples outside are zero.
		lo, hi := 0, taps
		if start < 0 {
			lo = -start
		}
		if start+hi > len(src) {
			hi = len(src) - start
		}
		var y float32
		if lo < hi {
			x := src[start+lo : start+hi]
			if r.exact {
				off := int(phase) * taps
				y = dot(x, r.table[off+lo:off+hi])
			} else {
				// Row j and j+1 bracket the phase; interpolating the two dot
				// products equals filtering with the interpolated taps.
				u := float64(phase) / float64(r.l) * interpPhases
				j := int(u)
				a := float32(u - float64(j))
				off := j * taps
				y0 := dot(x, r.table[off+lo:off+hi])
				y1 := dot(x, r.table[off+taps+lo:off+taps+hi])
				y = y0 + a*(y1-y0)
			}
		}
		dst[k] = y
		n0 += stepInt
		phase += stepFrac
		if phase >= r.l {
			phase -= r.l
			n0++
		}
	}
	return dst
}

// resamplers caches one Resampler per (from, to) for the package-level
// Resample, so the table is designed once per rate pair per process.
var resamplers sync.Map // [2]int → *Resampler

// Resample is a convenience for NewResampler(from, to).Resample(nil, src)
// that caches the Resampler per rate pair. from == to returns a copy. It
// panics on rates NewResampler rejects; call NewResampler to get the error.
func Resample(src []float32, from, to int) []float32 {
	key := [2]int{from, to}
	v, ok := resamplers.Load(key)
	if !ok {
		r, err := NewResampler(from, to)
		if err != nil {
			panic(err)
		}
		v, _ = resamplers.LoadOrStore(key, r)
	}
	return v.(*Resampler).Resample(nil, src)
}

// dotGeneric is the portable float32 dot product of x and h[:len(x)]. Four
// independent accumulators break the add dependency chain; the fixed
// summation order keeps results bit-identical run to run.
func dotGeneric(x, h []float32) float32 {
	h = h[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, hs := x[i:i+4:i+4], h[i:i+4:i+4]
		s0 += xs[0] * hs[0]
		s1 += xs[1] * hs[1]
		s2 += xs[2] * hs[2]
		s3 += xs[3] * hs[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * h[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sinc is the normalised sinc sin(πx)/(πx).
func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by its
// power series Σ ((x/2)^k / k!)²; for the x ≤ ~8 a Kaiser window needs, the
// terms fall below 1e-17 of the sum within 40 iterations.
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 200; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
