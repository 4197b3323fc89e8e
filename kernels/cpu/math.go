package cpu

import "math"

// expf is e^x for float32, within one unit in the last place and almost
// always correctly rounded (checked against math.Exp in the tests), in
// about half the time of float32(math.Exp(float64(x))): the softmaxes over
// keys and vocabularies take one per score. With k = round(x * 64 / ln 2)
// = 64n + j and r = x - k ln 2 / 64 (|r| <= 0.0055),
//
//	e^x = 2^n * 2^(j/64) * e^r
//
// in float64, 2^(j/64) from a table and e^r from a degree-4 Taylor
// polynomial (error below 4e-14).
func expf(x float32) float32 {
	if !(x > -104 && x < 88.72284) { // NaN, overflow, underflow to 0
		return expfEdge(x)
	}
	const shift = 0x1.8p52 // adding it rounds to an integer, held in the low bits
	kf := float64(x)*(64/math.Ln2) + shift
	k := int64(int32(math.Float64bits(kf)))
	r := float64(x) - (kf-shift)*(math.Ln2/64)
	p := 1 + r*(1+r*(1.0/2+r*(1.0/6+r*(1.0/24))))
	return float32(p * exp2Table[k&63] * math.Float64frombits(uint64((k>>6)+1023)<<52))
}

// expfEdge is expf outside (-104, ln(MaxFloat32)), and of NaN.
func expfEdge(x float32) float32 {
	switch {
	case x != x:
		return x
	case x > 0:
		return float32(math.Inf(1))
	}
	return 0 // below half the smallest subnormal
}

// exp2Table[j] is 2^(j/64).
var exp2Table = func() (t [64]float64) {
	for j := range t {
		t[j] = math.Exp2(float64(j) / 64)
	}
	return t
}()

// dot is sum(a[i] * b[i]) in float32 with four running sums, which the
// CPU can add in parallel; the order is fixed, so the result is too.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// axpy is y += alpha * x.
func axpy(y []float32, alpha float32, x []float32) {
	x = x[:len(y)]
	for i := range y {
		y[i] += alpha * x[i]
	}
}

// maxf is the largest value of x (-Inf for none).
func maxf(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}
