package audio

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"
)

// sines is a sum of sinusoids evaluated analytically, in float64, at any time.
type sines struct {
	freq, amp, phase []float64
}

// randomSines draws count sinusoids with frequencies spread over (0, fmax):
// one per equal sub-band, at a random place inside it, so the whole band is
// covered; amplitudes in [0.1, 1), phases in [0, 2π).
func randomSines(rng *rand.Rand, count int, fmax float64) sines {
	var s sines
	for i := range count {
		s.freq = append(s.freq, fmax*(float64(i)+rng.Float64())/float64(count))
		s.amp = append(s.amp, 0.1+0.9*rng.Float64())
		s.phase = append(s.phase, 2*math.Pi*rng.Float64())
	}
	return s
}

func (s sines) at(t float64) float64 {
	v := 0.0
	for i, f := range s.freq {
		v += s.amp[i] * math.Sin(2*math.Pi*f*t+s.phase[i])
	}
	return v
}

// sample returns n samples of s at rate Hz, rounded to float32.
func (s sines) sample(n, rate int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(s.at(float64(i) / float64(rate)))
	}
	return x
}

// edgeSkip is the number of output samples at each end that the filter's
// half-length reaches past the input (zero padding), plus one for rounding.
func edgeSkip(r *Resampler) int {
	return int(math.Ceil(float64(r.half)*float64(r.to)/float64(r.from))) + 1
}

func rms(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return math.Sqrt(s / float64(len(x)))
}

func dB(ratio float64) float64 { return 20 * math.Log10(ratio) }

// TestResampleAnalytic resamples a random sum of in-band sines and compares
// the result with the same sines evaluated exactly at the output times k/to.
func TestResampleAnalytic(t *testing.T) {
	type pair struct{ from, to int }
	var pairs []pair
	for _, from := range []int{8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000, 96000, 44056} {
		pairs = append(pairs, pair{from, 16000})
	}
	pairs = append(pairs, pair{16000, 44100}, pair{16000, 48000}, pair{44056, 22050}, pair{16000, 44056})
	for _, p := range pairs {
		t.Run(fmt.Sprintf("%d-%d", p.from, p.to), func(t *testing.T) {
			r, err := NewResampler(p.from, p.to)
			if err != nil {
				t.Fatal(err)
			}
			fmax := math.Min(7500, 15.0/32*float64(min(p.from, p.to)))
			rng := rand.New(rand.NewPCG(uint64(p.from), uint64(p.to)))
			worstRMS, worstMax := math.Inf(-1), math.Inf(-1)
			for range 4 {
				s := randomSines(rng, 12, fmax)
				x := s.sample(p.from, p.from) // one second
				y := r.Resample(nil, x)
				if len(y) != r.OutputLen(len(x)) {
					t.Fatalf("len %d, want %d", len(y), r.OutputLen(len(x)))
				}
				skip := edgeSkip(r)
				var errs, refs []float64
				peak, maxErr := 0.0, 0.0
				for k := skip; k < len(y)-skip; k++ {
					ref := s.at(float64(k) / float64(p.to))
					e := float64(y[k]) - ref
					errs = append(errs, e)
					refs = append(refs, ref)
					peak = math.Max(peak, math.Abs(ref))
					maxErr = math.Max(maxErr, math.Abs(e))
				}
				worstRMS = math.Max(worstRMS, dB(rms(errs)/rms(refs)))
				worstMax = math.Max(worstMax, dB(maxErr/peak))
			}
			t.Logf("%5d → %5d Hz (pass ≤ %.0f Hz, %d taps/phase): rms error %.1f dB, max error %.1f dB re peak",
				p.from, p.to, fmax, r.taps, worstRMS, worstMax)
			if worstRMS >= -60 {
				t.Errorf("rms error %.1f dB, want < -60 dB", worstRMS)
			}
			if worstMax >= -55 {
				t.Errorf("max error %.1f dB re peak, want < -55 dB", worstMax)
			}
		})
	}
}

// TestResampleStopband checks that tones above the output band are removed
// rather than aliased: output rms at least 60 dB below input rms.
func TestResampleStopband(t *testing.T) {
	for _, from := range []int{44100, 48000} {
		r, err := NewResampler(from, 16000)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []float64{8500, 9000, 12000, 20000} {
			if f >= float64(from)/2 {
				continue
			}
			s := sines{freq: []float64{f}, amp: []float64{1}, phase: []float64{0.3}}
			x := s.sample(from, from)
			y := r.Resample(nil, x)
			skip := edgeSkip(r)
			in := make([]float64, len(x))
			for i, v := range x {
				in[i] = float64(v)
			}
			out := make([]float64, 0, len(y))
			for _, v := range y[skip : len(y)-skip] {
				out = append(out, float64(v))
			}
			att := dB(rms(out) / rms(in))
			t.Logf("%d → 16000 Hz: %5.0f Hz tone at %.1f dB", from, f, att)
			if att > -60 {
				t.Errorf("%d → 16000 Hz: %.0f Hz tone at %.1f dB, want ≤ -60 dB", from, f, att)
			}
		}
	}
}

// TestResampleDC checks that a constant stays that constant away from the
// edges, up- and downsampling.
func TestResampleDC(t *testing.T) {
	for _, p := range [][2]int{{16000, 44100}, {16000, 48000}, {8000, 16000}, {44100, 16000}, {48000, 16000}, {44056, 16000}, {96000, 16000}} {
		r, err := NewResampler(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		const c = 0.7
		x := make([]float32, p[0]/2)
		for i := range x {
			x[i] = c
		}
		y := r.Resample(nil, x)
		skip := edgeSkip(r)
		worst := 0.0
		for _, v := range y[skip : len(y)-skip] {
			worst = math.Max(worst, math.Abs(float64(v)-c))
		}
		t.Logf("%d → %d Hz: max DC deviation %.2g", p[0], p[1], worst)
		if worst > 1e-4 {
			t.Errorf("%d → %d Hz: constant %g comes out off by %g, want ≤ 1e-4", p[0], p[1], c, worst)
		}
	}
}

// TestResampleIdentity checks that equal rates give a bit-exact copy in a
// new array.
func TestResampleIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 1001)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	x[3] = float32(math.Inf(1))
	x[4] = float32(math.Copysign(0, -1))
	r, err := NewResampler(22050, 22050)
	if err != nil {
		t.Fatal(err)
	}
	for _, y := range [][]float32{Resample(x, 22050, 22050), r.Resample(nil, x)} {
		if len(y) != len(x) {
			t.Fatalf("len %d, want %d", len(y), len(x))
		}
		for i := range x {
			if math.Float32bits(y[i]) != math.Float32bits(x[i]) {
				t.Fatalf("sample %d: %v, want %v", i, y[i], x[i])
			}
		}
		if &y[0] == &x[0] {
			t.Fatal("identity shares the input's array; want a copy")
		}
	}
}

// TestResampleOutputLen compares OutputLen with ceil(n·to/from) in big integers.
func TestResampleOutputLen(t *testing.T) {
	ns := []int{0, 1, 2, 3, 7, 159, 160, 161, 440, 441, 442, 1000, 44099, 44100, 44101, 441000, 1 << 30, math.MaxInt / 1_000_000}
	for _, p := range [][2]int{{44100, 16000}, {16000, 44100}, {48000, 16000}, {44056, 16000}, {16000, 16000}, {7, 1000000}, {1000000, 3000}} {
		r, err := NewResampler(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			num := new(big.Int).Mul(big.NewInt(int64(n)), big.NewInt(int64(p[1])))
			den := big.NewInt(int64(p[0]))
			q, m := new(big.Int).QuoRem(num, den, new(big.Int))
			if m.Sign() != 0 {
				q.Add(q, big.NewInt(1))
			}
			if !q.IsInt64() || q.Int64() > math.MaxInt {
				// Only reachable with 32-bit ints: the length must not wrap.
				if got, ok := outputLen(r, n); ok {
					t.Errorf("%d → %d Hz: OutputLen(%d) = %d, want a panic (%s overflows int)", p[0], p[1], n, got, q)
				}
				continue
			}
			if got := r.OutputLen(n); int64(got) != q.Int64() {
				t.Errorf("%d → %d Hz: OutputLen(%d) = %d, want %s", p[0], p[1], n, got, q)
			}
		}
		for _, n := range ns[:5] {
			if got := len(r.Resample(nil, make([]float32, n))); got != r.OutputLen(n) {
				t.Errorf("%d → %d Hz: %d input samples gave %d outputs, want %d", p[0], p[1], n, got, r.OutputLen(n))
			}
		}
	}
}

// outputLen calls r.OutputLen(n), reporting a panic as ok == false.
func outputLen(r *Resampler, n int) (got int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return r.OutputLen(n), true
}

// TestResampleBadRates checks that impossible rates are refused.
func TestResampleBadRates(t *testing.T) {
	for _, p := range [][2]int{{0, 16000}, {16000, 0}, {-44100, 16000}, {44100, -1}, {2_000_000, 16000}, {16000, 1_000_001}, {1_000_000, 1}} {
		if _, err := NewResampler(p[0], p[1]); err == nil {
			t.Errorf("NewResampler(%d, %d) succeeded, want an error", p[0], p[1])
		}
	}
}

// TestResampleReuseAndDeterminism checks that dst's capacity is reused and
// that the output is bit-identical across calls and goroutines.
func TestResampleReuseAndDeterminism(t *testing.T) {
	for _, p := range [][2]int{{44100, 16000}, {44056, 16000}} {
		r, err := NewResampler(p[0], p[1])
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(3, 4))
		x := make([]float32, 30000)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		want := r.Resample(nil, x)
		buf := make([]float32, 5, 2*len(want))
		got := r.Resample(buf, x)
		if &got[0] != &buf[0] {
			t.Error("Resample did not reuse dst's capacity")
		}
		var wg sync.WaitGroup
		outs := make([][]float32, 8)
		for g := range outs {
			wg.Go(func() { outs[g] = Resample(x, p[0], p[1]) })
		}
		wg.Wait()
		for _, y := range append(outs, got) {
			for i := range want {
				if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%d → %d Hz: sample %d differs between runs: %v vs %v", p[0], p[1], i, y[i], want[i])
				}
			}
		}
	}
}

// TestBesselI0 checks the Kaiser window's Bessel function against published
// values (Abramowitz & Stegun table 9.8, as printed by scipy.special.i0).
func TestResampleBesselI0(t *testing.T) {
	for _, c := range []struct{ x, want float64 }{
		{0, 1},
		{1, 1.2660658777520082},
		{2, 2.279585302336067},
		{5, 27.239871823604442},
		{10, 2815.716628466254},
	} {
		if got := besselI0(c.x); math.Abs(got-c.want) > 1e-13*c.want {
			t.Errorf("I0(%g) = %.17g, want %.17g", c.x, got, c.want)
		}
	}
}

// TestResampleDotKernel compares the assembly dot product (where this build
// and CPU have one) with the Go loop and with a float64 sum, on every length
// 0..300 at random alignments, within 1e-6 of Σ|x·h| (the scale float32
// rounding errors are relative to; the sum itself may cancel to near zero).
func TestResampleDotKernel(t *testing.T) {
	if dotAccel == nil {
		t.Skip("no assembly dot product in this build or on this CPU")
	}
	rng := rand.New(rand.NewPCG(7, 8))
	bx, bh := make([]float32, 400), make([]float32, 400)
	for i := range bx {
		bx[i] = float32(rng.NormFloat64())
		bh[i] = float32(rng.NormFloat64())
	}
	worst := 0.0
	for n := 0; n <= 300; n++ {
		ox, oh := rng.IntN(64), rng.IntN(64)
		x := bx[ox : ox+n]
		h := bh[oh : oh+n+rng.IntN(16)] // the kernel reads only len(x) taps
		ref, scale := 0.0, 0.0
		for i := range x {
			ref += float64(x[i]) * float64(h[i])
			scale += math.Abs(float64(x[i]) * float64(h[i]))
		}
		a, g := dotAccel(x, h), dotGeneric(x, h)
		if n == 0 {
			if a != 0 || g != 0 {
				t.Fatalf("empty dot: asm %v, generic %v, want 0", a, g)
			}
			continue
		}
		for _, d := range []float64{float64(a) - ref, float64(g) - ref, float64(a) - float64(g)} {
			worst = math.Max(worst, math.Abs(d)/scale)
		}
		if math.Abs(float64(a)-float64(g)) > 1e-6*scale || math.Abs(float64(a)-ref) > 1e-6*scale {
			t.Errorf("n=%d: asm %v, generic %v, float64 %v (scale %v)", n, a, g, ref, scale)
		}
		if b := dotAccel(x, h); math.Float32bits(b) != math.Float32bits(a) {
			t.Errorf("n=%d: asm gave %v then %v", n, a, b)
		}
	}
	t.Logf("worst difference re Σ|x·h|: %.2g", worst)
}

// BenchmarkResampleDot192 times the dot products alone on one 44.1 kHz →
// 16 kHz row (192 taps).
func BenchmarkResampleDot192(b *testing.B) {
	rng := rand.New(rand.NewPCG(9, 10))
	x, h := make([]float32, 192), make([]float32, 192)
	for i := range x {
		x[i], h[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	kernels := map[string]func(x, h []float32) float32{"generic": dotGeneric, "dot": dot}
	if dotAccel != nil {
		kernels["asm"] = dotAccel
	}
	for _, name := range []string{"generic", "asm", "dot"} {
		k, ok := kernels[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			var s float32
			for b.Loop() {
				s += k(x, h)
			}
			sink = s
		})
	}
}

var sink float32

func benchmarkResample(b *testing.B, from, to int) {
	r, err := NewResampler(from, to)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	x := make([]float32, 10*from) // a 10-second clip
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	dst := make([]float32, r.OutputLen(len(x)))
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		dst = r.Resample(dst, x)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/clip")
}

// BenchmarkResample44100to16000 resamples a 10-second 44.1 kHz mono clip.
func BenchmarkResample44100to16000(b *testing.B) { benchmarkResample(b, 44100, 16000) }

// BenchmarkResample48000to16000 resamples a 10-second 48 kHz mono clip.
func BenchmarkResample48000to16000(b *testing.B) { benchmarkResample(b, 48000, 16000) }

// BenchmarkResample44056to16000 covers the interpolated-table path.
func BenchmarkResample44056to16000(b *testing.B) { benchmarkResample(b, 44056, 16000) }
