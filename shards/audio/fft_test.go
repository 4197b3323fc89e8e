package audio

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// The power spectrum against a direct O(n^2) DFT in float64, over lengths
// that use every radix.
func TestRealFFTPowerMatchesDFT(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{2, 4, 6, 8, 10, 12, 16, 30, 48, 60, 90, 100, 128, 200, 240, 400, 512, 1000} {
		f, err := newRealFFT(n)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		got := make([]float64, n/2+1)
		f.power(got, x)
		var scale float64
		for k := 0; k <= n/2; k++ {
			var s complex128
			for i, v := range x {
				s += complex(v, 0) * cmplx.Exp(complex(0, -2*math.Pi*float64(k*i%n)/float64(n)))
			}
			want := real(s)*real(s) + imag(s)*imag(s)
			scale = math.Max(scale, want)
			if d := math.Abs(got[k] - want); d > 1e-9*math.Max(1, scale) {
				t.Fatalf("n=%d bin %d: got %g, want %g", n, k, got[k], want)
			}
		}
	}
	if _, err := newRealFFT(14); err == nil {
		t.Error("length 14 (factor 7) accepted")
	}
	if _, err := newRealFFT(9); err == nil {
		t.Error("odd length accepted")
	}
}

func BenchmarkRealFFT400(b *testing.B) {
	f, _ := newRealFFT(400)
	x := make([]float64, 400)
	for i := range x {
		x[i] = math.Sin(float64(i))
	}
	p := make([]float64, 201)
	for i := 0; i < b.N; i++ {
		f.power(p, x)
	}
}

func TestLog10MatchesMath(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	worst := 0.0
	check := func(x float64) {
		d := math.Abs(log10(x) - math.Log10(x))
		worst = math.Max(worst, d)
		if d > 1e-11 {
			t.Fatalf("log10(%g) = %.17g, math.Log10 %.17g", x, log10(x), math.Log10(x))
		}
	}
	for i := 0; i < 200000; i++ {
		check(math.Exp(r.Float64()*200 - 100))
	}
	for _, x := range []float64{1e-10, 1, 2, math.Sqrt2, math.Nextafter(math.Sqrt2, 2), 10, 1e300, 0x1p-1022, 5e-324} {
		check(x)
	}
	for _, x := range []float64{math.NaN(), math.Inf(1), -1} {
		if !math.IsNaN(log10(x)) {
			t.Errorf("log10(%v) = %v, want NaN", x, log10(x))
		}
	}
	t.Logf("max |log10 - math.Log10| = %.2e", worst)
}
