package ckpt

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// The outside reference for both 16-bit formats is their definition: the
// value of a bit pattern computed from its sign, exponent and mantissa
// fields in float64 with math.Ldexp, and IEEE 754 round-to-nearest-even
// against the sorted list of those values.

// format16 is a 16-bit binary floating-point format: 1 sign bit, expBits
// exponent bits, the rest mantissa.
type format16 struct {
	name    string
	expBits int
	widen   func(uint16) float32
	narrow  func(float32) uint16
}

var (
	bf16Format = format16{"bf16", 8, BF16ToFloat32, Float32ToBF16}
	f16Format  = format16{"f16", 5, F16ToFloat32, Float32ToF16}
)

func (f format16) manBits() int    { return 15 - f.expBits }
func (f format16) bias() int       { return 1<<(f.expBits-1) - 1 }
func (f format16) infBits() uint16 { return uint16((1<<f.expBits - 1) << f.manBits()) }

// value is the definition: (-1)^s × 1.m × 2^(e-bias), 0.m × 2^(1-bias) for
// e = 0, Inf / NaN for e all ones.
func (f format16) value(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	mb := f.manBits()
	e := int(h>>mb) & (1<<f.expBits - 1)
	m := int(h) & (1<<mb - 1)
	switch e {
	case 1<<f.expBits - 1:
		if m == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	case 0:
		return sign * math.Ldexp(float64(m), 1-f.bias()-mb)
	}
	return sign * math.Ldexp(float64(1<<mb+m), e-f.bias()-mb)
}

func isNaN16(f format16, h uint16) bool {
	return h&0x7fff > f.infBits()
}

func TestWidenExhaustive(t *testing.T) {
	for _, f := range []format16{bf16Format, f16Format} {
		t.Run(f.name, func(t *testing.T) {
			for i := range 1 << 16 {
				h := uint16(i)
				got, want := f.widen(h), f.value(h)
				if math.IsNaN(want) {
					if !math.IsNaN(float64(got)) {
						t.Fatalf("%#04x: widened to %v, want NaN", h, got)
					}
					if math.Signbit(float64(got)) != (h&0x8000 != 0) {
						t.Fatalf("%#04x: NaN lost its sign", h)
					}
					back := f.narrow(got)
					if !isNaN16(f, back) || back&0x8000 != h&0x8000 {
						t.Fatalf("%#04x: NaN narrowed back to %#04x", h, back)
					}
					quiet := uint16(1) << (f.manBits() - 1)
					if back&quiet == 0 {
						t.Fatalf("%#04x: NaN narrowed back to %#04x, not quiet", h, back)
					}
					if h&quiet != 0 && back != h {
						t.Fatalf("quiet NaN %#04x narrowed back to %#04x", h, back)
					}
					continue
				}
				if math.Float32bits(got) != math.Float32bits(float32(want)) || float64(float32(want)) != want {
					t.Fatalf("%#04x: widened to %v (%#08x), definition gives %v", h, got, math.Float32bits(got), want)
				}
				if back := f.narrow(got); back != h {
					t.Fatalf("%#04x: widened to %v, narrowed back to %#04x", h, got, back)
				}
			}
		})
	}
}

// TestNarrowMidpoints checks the rounding at every boundary: for every two
// neighbouring values a < b of the format, the float32 just below their
// midpoint goes to a, just above to b, and the midpoint itself (exact in
// float32) to the one with an even mantissa; past the largest finite value
// the next step is Inf, as IEEE 754 rounds overflow.
func TestNarrowMidpoints(t *testing.T) {
	for _, f := range []format16{bf16Format, f16Format} {
		t.Run(f.name, func(t *testing.T) {
			inf := f.infBits()
			for h := uint16(0); h < inf; h++ {
				next := h + 1 // inf when h is the largest finite value
				a := f.value(h)
				b := math.Ldexp(1, 1<<(f.expBits-1)) // 2^(emax+1), what next would be without overflow
				if next != inf {
					b = f.value(next)
				}
				mid := (a + b) / 2
				if float64(float32(mid)) != mid {
					t.Fatalf("midpoint of %#04x and %#04x: %v not exact in float32", h, next, mid)
				}
				even := h
				if h&1 == 1 {
					even = next
				}
				for _, sign := range []uint16{0, 0x8000} {
					m := float32(mid)
					if sign != 0 {
						m = -m
					}
					below := math.Nextafter32(m, 0) // toward a (smaller magnitude)
					above := math.Nextafter32(m, float32(math.Copysign(math.Inf(1), float64(m))))
					if got := f.narrow(below); got != h|sign {
						t.Fatalf("just inside the midpoint of %#04x,%#04x (%v): got %#04x", h|sign, next|sign, below, got)
					}
					if got := f.narrow(m); got != even|sign {
						t.Fatalf("midpoint of %#04x,%#04x (%v): got %#04x, want the even %#04x", h|sign, next|sign, m, got, even|sign)
					}
					if got := f.narrow(above); got != next|sign {
						t.Fatalf("just past the midpoint of %#04x,%#04x (%v): got %#04x", h|sign, next|sign, above, got)
					}
				}
			}
			for _, x := range []float32{math.MaxFloat32, float32(math.Inf(1))} {
				if got := f.narrow(x); got != inf {
					t.Errorf("%v narrowed to %#04x, want +Inf %#04x", x, got, inf)
				}
				if got := f.narrow(-x); got != inf|0x8000 {
					t.Errorf("%v narrowed to %#04x, want -Inf", -x, got)
				}
			}
		})
	}
}

// refNarrow rounds x to the format by the definition: the nearest of the
// sorted finite values (pos[i] is the value of bit pattern i), ties to the
// even pattern, overflow to Inf from the midpoint past the largest value.
func refNarrow(f format16, pos []float64, x float32) uint16 {
	v := float64(x)
	var sign uint16
	if math.Signbit(v) {
		sign, v = 0x8000, -v
	}
	inf := f.infBits()
	last := pos[len(pos)-1]
	if v >= (last+math.Ldexp(1, 1<<(f.expBits-1)))/2 {
		return sign | inf
	}
	i := sort.SearchFloat64s(pos, v) // first pos[i] >= v
	if i == len(pos) {               // above the largest value, below the overflow midpoint
		return sign | uint16(i-1)
	}
	if pos[i] == v {
		return sign | uint16(i)
	}
	lo, hi := pos[i-1], pos[i]
	switch {
	case v-lo < hi-v:
		return sign | uint16(i-1)
	case v-lo > hi-v:
		return sign | uint16(i)
	case (i-1)&1 == 0:
		return sign | uint16(i-1)
	}
	return sign | uint16(i)
}

// TestNarrowSampled compares narrowing with refNarrow on random float32
// bit patterns, on float32 subnormals and on the range around each format's
// smallest values.
func TestNarrowSampled(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, f := range []format16{bf16Format, f16Format} {
		t.Run(f.name, func(t *testing.T) {
			inf := f.infBits()
			pos := make([]float64, inf)
			for i := range pos {
				pos[i] = f.value(uint16(i))
			}
			check := func(bits uint32) {
				x := math.Float32frombits(bits)
				got := f.narrow(x)
				if math.IsNaN(float64(x)) {
					if !isNaN16(f, got) {
						t.Fatalf("NaN %#08x narrowed to %#04x", bits, got)
					}
					return
				}
				if want := refNarrow(f, pos, x); got != want {
					t.Fatalf("%v (%#08x) narrowed to %#04x, want %#04x", x, bits, got, want)
				}
			}
			for range 1_000_000 {
				check(rng.Uint32())
			}
			for b := uint32(0); b < 1<<23; b += 7 { // float32 subnormals
				check(b)
				check(b | 0x80000000)
			}
			// Around the format's smallest subnormal, 2^(1-bias-manBits).
			tiny := math.Float32bits(float32(math.Ldexp(1, 1-f.bias()-f.manBits())))
			for b := tiny - 1<<20; b < tiny+1<<20; b++ {
				check(b)
			}
		})
	}
}

func TestNaNStaysNaN(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, f := range []format16{bf16Format, f16Format} {
		quiet := uint16(1) << (f.manBits() - 1)
		for range 100_000 {
			bits := 0x7f800000 | rng.Uint32()&0x807fffff
			if bits&0x7fffff == 0 {
				continue
			}
			got := f.narrow(math.Float32frombits(bits))
			if !isNaN16(f, got) || got&quiet == 0 || (got&0x8000 != 0) != (bits>>31 == 1) {
				t.Fatalf("%s: NaN %#08x narrowed to %#04x, want a quiet NaN of the same sign", f.name, bits, got)
			}
		}
	}
}

func TestSliceHelpers(t *testing.T) {
	src := []float32{1, -2.5, 65504, 65520, 1e-8, 3.0e-8, float32(math.Inf(-1)), 0.1}
	for _, f := range []format16{bf16Format, f16Format} {
		pos := make([]float64, f.infBits())
		for i := range pos {
			pos[i] = f.value(uint16(i))
		}
		narrowed := make([]uint16, len(src))
		widened := make([]float32, len(src))
		if f.name == "bf16" {
			Float32SliceToBF16(narrowed, src)
			BF16SliceToFloat32(widened, narrowed)
		} else {
			Float32SliceToF16(narrowed, src)
			F16SliceToFloat32(widened, narrowed)
		}
		for i, x := range src {
			if want := refNarrow(f, pos, x); narrowed[i] != want {
				t.Errorf("%s slice: %v narrowed to %#04x, want %#04x", f.name, x, narrowed[i], want)
			}
			if float64(widened[i]) != f.value(narrowed[i]) {
				t.Errorf("%s slice: %#04x widened to %v, want %v", f.name, narrowed[i], widened[i], f.value(narrowed[i]))
			}
		}
	}
	defer func() {
		if recover() == nil {
			t.Error("length mismatch did not panic")
		}
	}()
	BF16SliceToFloat32(make([]float32, 2), make([]uint16, 3))
}
