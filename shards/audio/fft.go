package audio

import (
	"fmt"
	"math"
)

// realFFT computes the spectrum of a real sequence of even length n through
// one complex FFT of length n/2 (even samples as the real part, odd samples
// as the imaginary part) and a split step. The complex FFT is a Stockham
// autosort with radix-4, 2, 3 and 5 butterflies and precomputed twiddles:
// for Whisper's n_fft = 400 it is about twice as fast as the generic
// FFTPACK port, and the log-mel is about two thirds FFT.
type realFFT struct {
	n      int
	m      int // n/2
	stages []fftStage
	split  []complex128 // exp(-2*pi*i*k/n), k = 0..m
	z, w   []complex128 // work buffers
}

type fftStage struct {
	p   int          // radix
	m   int          // sub-transform length after this stage (n/p at its entry)
	s   int          // stride
	tw  []complex128 // twiddles: tw[j*(p-1) + t-1] = exp(-2*pi*i*j*t/len)
	len int          // transform length at this stage's entry
}

func newRealFFT(n int) (*realFFT, error) {
	if n < 2 || n%2 != 0 {
		return nil, fmt.Errorf("real FFT length %d: must be even", n)
	}
	m := n / 2
	f := &realFFT{n: n, m: m, z: make([]complex128, m), w: make([]complex128, m), split: make([]complex128, m+1)}
	for k := range f.split {
		a := -2 * math.Pi * float64(k) / float64(n)
		f.split[k] = complex(math.Cos(a), math.Sin(a))
	}
	// Factor m, preferring radix 4.
	var radices []int
	r := m
	for _, p := range []int{4, 2, 3, 5} {
		for r%p == 0 {
			radices = append(radices, p)
			r /= p
		}
	}
	if r != 1 {
		return nil, fmt.Errorf("real FFT length %d: n/2 has a prime factor other than 2, 3, 5", n)
	}
	length, s := m, 1
	for _, p := range radices {
		st := fftStage{p: p, len: length, m: length / p, s: s}
		st.tw = make([]complex128, st.m*(p-1))
		for j := 0; j < st.m; j++ {
			for t := 1; t < p; t++ {
				a := -2 * math.Pi * float64(j*t) / float64(length)
				st.tw[j*(p-1)+t-1] = complex(math.Cos(a), math.Sin(a))
			}
		}
		f.stages = append(f.stages, st)
		length /= p
		s *= p
	}
	return f, nil
}

// power writes |X[k]|^2 for k = 0..n/2 of the real input x (len n).
func (f *realFFT) power(dst, x []float64) {
	m := f.m
	z := f.z
	for i := range z {
		z[i] = complex(x[2*i], x[2*i+1])
	}
	z = f.complexFFT(z, f.w)
	// Split: the DFTs of the even and odd samples are the Hermitian and
	// anti-Hermitian parts of Z.
	z0 := z[0]
	dst[0] = sq(real(z0) + imag(z0))
	dst[m] = sq(real(z0) - imag(z0))
	for k := 1; k < m; k++ {
		a, b := z[k], z[m-k]
		cb := complex(real(b), -imag(b))
		even := (a + cb) * 0.5
		d := (a - cb) * 0.5
		odd := complex(imag(d), -real(d)) // d / i
		v := even + f.split[k]*odd
		dst[k] = real(v)*real(v) + imag(v)*imag(v)
	}
}

func sq(v float64) float64 { return v * v }

// complexFFT transforms x in place or into w and returns the slice that
// holds the result (Stockham stages alternate between the two buffers).
func (f *realFFT) complexFFT(x, y []complex128) []complex128 {
	const (
		c3 = -0.5
		c1 = 0.30901699437494745 // cos(2pi/5)
		c2 = -0.8090169943749473 // cos(4pi/5)
		s1 = 0.9510565162951535  // sin(2pi/5)
		s2 = 0.5877852522924732  // sin(4pi/5)
		s3 = 0.8660254037844386  // sin(2pi/3)
	)
	for _, st := range f.stages {
		m, s := st.m, st.s
		switch st.p {
		case 4:
			for j := 0; j < m; j++ {
				w1, w2, w3 := st.tw[3*j], st.tw[3*j+1], st.tw[3*j+2]
				for q := 0; q < s; q++ {
					a0 := x[q+s*j]
					a1 := x[q+s*(j+m)]
					a2 := x[q+s*(j+2*m)]
					a3 := x[q+s*(j+3*m)]
					t0, t1 := a0+a2, a0-a2
					t2, t3 := a1+a3, a1-a3
					t3i := complex(imag(t3), -real(t3)) // -i * t3
					o := q + s*4*j
					y[o] = t0 + t2
					y[o+s] = (t1 + t3i) * w1
					y[o+2*s] = (t0 - t2) * w2
					y[o+3*s] = (t1 - t3i) * w3
				}
			}
		case 2:
			for j := 0; j < m; j++ {
				w1 := st.tw[j]
				for q := 0; q < s; q++ {
					a0, a1 := x[q+s*j], x[q+s*(j+m)]
					o := q + s*2*j
					y[o] = a0 + a1
					y[o+s] = (a0 - a1) * w1
				}
			}
		case 3:
			for j := 0; j < m; j++ {
				w1, w2 := st.tw[2*j], st.tw[2*j+1]
				for q := 0; q < s; q++ {
					a0, a1, a2 := x[q+s*j], x[q+s*(j+m)], x[q+s*(j+2*m)]
					t := a1 + a2
					d := a1 - a2
					base := a0 + t*c3
					rot := complex(s3*imag(d), -s3*real(d)) // -i * s3 * d
					o := q + s*3*j
					y[o] = a0 + t
					y[o+s] = (base + rot) * w1
					y[o+2*s] = (base - rot) * w2
				}
			}
		case 5:
			for j := 0; j < m; j++ {
				tw := st.tw[4*j : 4*j+4]
				for q := 0; q < s; q++ {
					a0 := x[q+s*j]
					a1 := x[q+s*(j+m)]
					a2 := x[q+s*(j+2*m)]
					a3 := x[q+s*(j+3*m)]
					a4 := x[q+s*(j+4*m)]
					t1, t2 := a1+a4, a2+a3
					t3, t4 := a1-a4, a2-a3
					b1 := a0 + t1*c1 + t2*c2
					b2 := a0 + t1*c2 + t2*c1
					// -i*(s1*t3 + s2*t4) and -i*(s2*t3 - s1*t4)
					u := t3*s1 + t4*s2
					v := t3*s2 - t4*s1
					ui := complex(imag(u), -real(u))
					vi := complex(imag(v), -real(v))
					o := q + s*5*j
					y[o] = a0 + t1 + t2
					y[o+s] = (b1 + ui) * tw[0]
					y[o+2*s] = (b2 + vi) * tw[1]
					y[o+3*s] = (b2 - vi) * tw[2]
					y[o+4*s] = (b1 - ui) * tw[3]
				}
			}
		}
		x, y = y, x
	}
	return x
}
