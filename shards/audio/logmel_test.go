package audio

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refLogMel re-derives transformers' WhisperFeatureExtractor (torch path) in
// float64 straight from its definition, sharing nothing with logmel.go: the
// clip is zero-padded or truncated to padLen, reflect-padded by n_fft/2
// (np.pad mode "reflect"), framed every hop samples, windowed, transformed
// with a direct DFT, squared, the last frame dropped, multiplied by the dense
// Slaney mel matrix, log10-clamped, floored at max-8 and scaled.
//
// The variant knobs reproduce common porting mistakes so the tests can show
// that the tolerance catches them.
type refVariant struct {
	symmetricWindow bool // np.hanning-style window instead of torch's periodic one
	zeroPadEdges    bool // constant instead of reflect padding at the edges
	validOnlyMax    bool // max over the valid frames instead of the padded matrix
}

func refLogMel(x []float32, padLen int, v refVariant) (out [][]float64, frames int) {
	const nfft, hop, nmels, sr = 400, 160, 128, 16000.0
	y := make([]float64, padLen)
	for i := 0; i < padLen && i < len(x); i++ {
		y[i] = float64(x[i])
	}
	// Reflect padding: z[j] = y[|j|] on the left, mirrored about the last
	// sample on the right.
	half := nfft / 2
	z := make([]float64, padLen+nfft)
	for j := range z {
		k := j - half
		switch {
		case k < 0:
			if v.zeroPadEdges {
				z[j] = 0
			} else {
				z[j] = y[-k]
			}
		case k >= padLen:
			if v.zeroPadEdges {
				z[j] = 0
			} else {
				z[j] = y[2*(padLen-1)-k]
			}
		default:
			z[j] = y[k]
		}
	}
	win := make([]float64, nfft)
	for n := range win {
		d := float64(nfft)
		if v.symmetricWindow {
			d = nfft - 1
		}
		win[n] = 0.5 * (1 - math.Cos(2*math.Pi*float64(n)/d))
	}
	bins := nfft/2 + 1
	cosT := make([]float64, bins*nfft)
	sinT := make([]float64, bins*nfft)
	for k := 0; k < bins; k++ {
		for n := 0; n < nfft; n++ {
			a := 2 * math.Pi * float64((k*n)%nfft) / nfft
			cosT[k*nfft+n], sinT[k*nfft+n] = math.Cos(a), math.Sin(a)
		}
	}
	// Dense mel matrix from the formulas (Slaney scale, Slaney norm).
	hz2mel := func(f float64) float64 {
		if f >= 1000 {
			return 15 + math.Log(f/1000)/(math.Log(6.4)/27)
		}
		return f / (200.0 / 3)
	}
	mel2hz := func(m float64) float64 {
		if m >= 15 {
			return 1000 * math.Exp((m-15)*math.Log(6.4)/27)
		}
		return m * 200.0 / 3
	}
	pts := make([]float64, nmels+2)
	for i := range pts {
		pts[i] = mel2hz(hz2mel(0) + (hz2mel(sr/2)-hz2mel(0))*float64(i)/float64(nmels+1))
	}
	fb := make([][]float64, nmels)
	for m := range fb {
		fb[m] = make([]float64, bins)
		for k := range fb[m] {
			f := float64(k) * (sr / 2) / float64(bins-1)
			lower := (f - pts[m]) / (pts[m+1] - pts[m])
			upper := (pts[m+2] - f) / (pts[m+2] - pts[m+1])
			fb[m][k] = math.Max(0, math.Min(lower, upper)) * 2 / (pts[m+2] - pts[m])
		}
	}

	frames = padLen / hop // padLen/hop + 1 STFT frames, the last dropped
	out = make([][]float64, nmels)
	for m := range out {
		out[m] = make([]float64, frames)
	}
	power := make([]float64, bins)
	buf := make([]float64, nfft)
	for t := 0; t < frames; t++ {
		nonzero := false
		for n := range buf {
			buf[n] = z[t*hop+n] * win[n]
			nonzero = nonzero || buf[n] != 0
		}
		for k := range power {
			power[k] = 0
			if !nonzero {
				continue // the DFT of zeros is zero
			}
			var re, im float64
			for n, b := range buf {
				re += b * cosT[k*nfft+n]
				im -= b * sinT[k*nfft+n]
			}
			power[k] = re*re + im*im
		}
		for m := range out {
			var s float64
			for k, p := range power {
				s += fb[m][k] * p
			}
			out[m][t] = math.Log10(math.Max(s, 1e-10))
		}
	}
	maxFrames := frames
	if v.validOnlyMax {
		maxFrames = max(1, min(frames, (len(x)+hop-1)/hop))
	}
	mx := math.Inf(-1)
	for m := range out {
		for t := 0; t < maxFrames; t++ {
			mx = math.Max(mx, out[m][t])
		}
	}
	for m := range out {
		for t := range out[m] {
			out[m][t] = (math.Max(out[m][t], mx-8) + 4) / 4
		}
	}
	return out, frames
}

// testClip is a deterministic test signal: tones, a chirp, noise and a
// quiet stretch, so the floor at max-8 is exercised.
func testClip(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		t := float64(i) / 16000
		v := 0.3*math.Sin(2*math.Pi*440*t) + 0.2*math.Sin(2*math.Pi*(300+900*t)*t) + 0.05*r.NormFloat64()
		if (i/4000)%5 == 3 {
			v *= 1e-5 // a near-silent stretch
		}
		x[i] = float32(v)
	}
	return x
}

func maxAbsDiff(t *testing.T, got []float32, want [][]float64, frames int) float64 {
	t.Helper()
	if len(got) != len(want)*frames {
		t.Fatalf("got %d values, want %d x %d", len(got), len(want), frames)
	}
	var d float64
	for m := range want {
		for f := 0; f < frames; f++ {
			d = math.Max(d, math.Abs(float64(got[m*frames+f])-want[m][f]))
		}
	}
	return d
}

func TestLogMelMatchesFloat64Reference(t *testing.T) {
	clips := []struct {
		name string
		x    []float32
	}{
		{"0.37s", testClip(5920, 1)},
		{"12345 samples", testClip(12345, 2)},
		{"exactly 30s", testClip(480000, 3)},
		{"31.3s", testClip(500800, 4)},
		{"silent 2s", make([]float32, 32000)},
		{"1 sample", []float32{0.5}},
	}
	for _, fam := range Families() {
		cfg, err := ConfigFor(fam)
		if err != nil {
			t.Fatal(err)
		}
		e, err := NewExtractor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range clips {
			want, frames := refLogMel(c.x, cfg.PadSamples, refVariant{})
			if frames != cfg.TotalFrames() {
				t.Fatalf("%s: reference has %d frames, config %d", fam, frames, cfg.TotalFrames())
			}
			m := e.Compute(c.x)
			d := maxAbsDiff(t, m.Padded(), want, frames)
			t.Logf("%s %-14s max |earl - float64 ref| = %.2e (stored %d of %d frames)", fam, c.name, d, m.StoredFrames, m.TotalFrames)
			if d > 2e-4 {
				t.Errorf("%s %s: max abs diff %.3g > 2e-4", fam, c.name, d)
			}
			// The valid frames are the leading columns of the padded matrix.
			valid := m.Valid()
			wantT := min((len(c.x)+159)/160, frames)
			if m.ValidFrames != wantT || len(valid) != 128*wantT {
				t.Fatalf("%s %s: valid frames %d (len %d), want %d", fam, c.name, m.ValidFrames, len(valid), wantT)
			}
			padded := m.Padded()
			for k := 0; k < 128; k++ {
				for f := 0; f < wantT; f++ {
					if valid[k*wantT+f] != padded[k*frames+f] {
						t.Fatalf("%s %s: Valid()[%d][%d] differs from Padded()", fam, c.name, k, f)
					}
				}
			}
		}
	}
}

// Over 300 s the Omni extractor truncates; checked separately because the
// float64 reference needs a few seconds for 30000 frames.
func TestLogMelOmniTruncates(t *testing.T) {
	cfg, _ := ConfigFor(Qwen25Omni)
	e, _ := NewExtractor(cfg)
	x := testClip(cfg.PadSamples+16000*7/10, 9)
	want, frames := refLogMel(x, cfg.PadSamples, refVariant{})
	m := e.Compute(x)
	if m.StoredFrames != frames || m.ValidFrames != frames {
		t.Fatalf("stored %d valid %d, want %d", m.StoredFrames, m.ValidFrames, frames)
	}
	d := maxAbsDiff(t, m.Padded(), want, frames)
	t.Logf("qwen2.5-omni 300.7s max |earl - float64 ref| = %.2e", d)
	if d > 2e-4 {
		t.Errorf("max abs diff %.3g > 2e-4", d)
	}
}

// The 2e-4 tolerance must be tight enough to catch real porting mistakes.
func TestLogMelReferenceCatchesMistakes(t *testing.T) {
	cfg, _ := ConfigFor(Qwen2Audio)
	e, _ := NewExtractor(cfg)
	x := testClip(16000*3+77, 5)
	m := e.Compute(x)
	for _, v := range []struct {
		name string
		v    refVariant
	}{
		{"symmetric window", refVariant{symmetricWindow: true}},
		{"zero edge padding", refVariant{zeroPadEdges: true}},
	} {
		want, frames := refLogMel(x, cfg.PadSamples, v.v)
		d := maxAbsDiff(t, m.Padded(), want, frames)
		t.Logf("%s: max diff %.3g", v.name, d)
		if d <= 0.1 {
			t.Errorf("%s: reference differs by only %.3g; the parity test would not catch it", v.name, d)
		}
	}
}

// Padded() rebuilt from the stored frames and the fill value equals, bit for
// bit, the matrix computed frame by frame over the whole padded clip.
func TestLogMelCompactFormIsExact(t *testing.T) {
	for _, fam := range Families() {
		cfg, _ := ConfigFor(fam)
		short, _ := NewExtractor(cfg)
		full, _ := NewExtractor(cfg)
		full.all = true
		for _, n := range []int{1, 159, 160, 161, 200, 201, 5000, 16000*4 + 3, cfg.PadSamples - 100, cfg.PadSamples} {
			x := testClip(n, uint64(n))
			a, b := short.Compute(x), full.Compute(x)
			if b.StoredFrames != b.TotalFrames {
				t.Fatalf("full computation stored %d frames", b.StoredFrames)
			}
			pa, pb := a.Padded(), b.Padded()
			for i := range pa {
				if math.Float32bits(pa[i]) != math.Float32bits(pb[i]) {
					t.Fatalf("%s n=%d: value %d differs: %v vs %v (stored %d)", fam, n, i, pa[i], pb[i], a.StoredFrames)
				}
			}
		}
	}
}

func TestFrameCounts(t *testing.T) {
	cfg, _ := ConfigFor(Qwen2Audio)
	for _, c := range []struct{ n, valid, stored int }{
		{0, 0, 2},
		{1, 1, 2},
		{160, 1, 3},
		{161, 2, 3},
		{16000, 100, 102},
		{480000, 3000, 3000},
		{960000, 3000, 3000},
	} {
		if v, s := cfg.ValidFrames(c.n), cfg.StoredFrames(c.n); v != c.valid || s != c.stored {
			t.Errorf("n=%d: valid %d stored %d, want %d %d", c.n, v, s, c.valid, c.stored)
		}
	}
}

func BenchmarkLogMel10s(b *testing.B) {
	cfg, _ := ConfigFor(Qwen2Audio)
	e, _ := NewExtractor(cfg)
	x := testClip(160000, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Compute(x)
	}
}
