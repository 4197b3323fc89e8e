package ref64

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// This file holds the elementary operations, each written the way PyTorch
// defines the module or function of the same name. Matrices are row-major
// [][]float64 with one backing array; a "row" is one time step / token.

// newMat returns a zeroed rows×cols matrix backed by one slice.
func newMat(rows, cols int) [][]float64 {
	back := make([]float64, rows*cols)
	m := make([][]float64, rows)
	for i := range m {
		m[i] = back[i*cols : (i+1)*cols : (i+1)*cols]
	}
	return m
}

// cloneMat deep-copies a matrix.
func cloneMat(a [][]float64) [][]float64 {
	if len(a) == 0 {
		return [][]float64{}
	}
	m := newMat(len(a), len(a[0]))
	for i := range a {
		copy(m[i], a[i])
	}
	return m
}

// parallelFor calls f(i) for i in [0, n) on GOMAXPROCS goroutines. Every
// f(i) must write only its own outputs; the result then does not depend on
// the scheduling (each output is computed by one fixed sequence of
// operations), so Forward is bitwise deterministic.
func parallelFor(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// dot is Σ a[i]·b[i] in float64 (four partial sums, then added pairwise).
func dot(a, b []float64) float64 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float64
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

// linear is nn.Linear: W is [out][in] row-major, b is [out] or nil (no
// bias).
type linear struct {
	W       []float64
	B       []float64
	Out, In int
}

// row returns W's row o (the weights of output feature o).
func (l *linear) row(o int) []float64 { return l.W[o*l.In : (o+1)*l.In] }

// apply computes y = x W^T + b for every row of x.
func (l *linear) apply(x [][]float64) [][]float64 {
	y := newMat(len(x), l.Out)
	parallelFor(len(x), func(i int) {
		xi, yi := x[i], y[i]
		for o := 0; o < l.Out; o++ {
			s := dot(xi, l.row(o))
			if l.B != nil {
				s += l.B[o]
			}
			yi[o] = s
		}
	})
	return y
}

// layerNorm is nn.LayerNorm over the last dimension: biased variance,
// (x − mean) / sqrt(var + eps) · w + b.
func layerNorm(x [][]float64, w, b []float64, eps float64) [][]float64 {
	y := newMat(len(x), len(w))
	for i, xi := range x {
		n := float64(len(xi))
		mean := 0.0
		for _, v := range xi {
			mean += v
		}
		mean /= n
		variance := 0.0
		for _, v := range xi {
			variance += (v - mean) * (v - mean)
		}
		variance /= n
		inv := 1 / math.Sqrt(variance+eps)
		for j, v := range xi {
			y[i][j] = (v-mean)*inv*w[j] + b[j]
		}
	}
	return y
}

// rmsNorm is Qwen2RMSNorm: x / sqrt(mean(x²) + eps) · w (no mean
// subtraction, no bias).
func rmsNorm(x [][]float64, w []float64, eps float64) [][]float64 {
	y := newMat(len(x), len(w))
	for i, xi := range x {
		ms := 0.0
		for _, v := range xi {
			ms += v * v
		}
		ms /= float64(len(xi))
		inv := 1 / math.Sqrt(ms+eps)
		for j, v := range xi {
			y[i][j] = v * inv * w[j]
		}
	}
	return y
}

// gelu is the exact GELU (PyTorch's default, approximate="none"):
// 0.5·x·(1 + erf(x/√2)). Not the tanh approximation.
func gelu(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }

// silu is x·sigmoid(x).
func silu(x float64) float64 { return x * (1 / (1 + math.Exp(-x))) }

// geluMat applies gelu to every element in place and returns x.
func geluMat(x [][]float64) [][]float64 {
	for _, r := range x {
		for j, v := range r {
			r[j] = gelu(v)
		}
	}
	return x
}

// add returns a + b elementwise (the residual connection).
func add(a, b [][]float64) [][]float64 {
	y := newMat(len(a), len(a[0]))
	for i := range a {
		for j := range a[i] {
			y[i][j] = a[i][j] + b[i][j]
		}
	}
	return y
}

// conv1d is nn.Conv1d with kernel 3, padding 1 and the given stride over a
// time-major input x [time][cin] (the transpose of PyTorch's [cin][time]),
// returning [outTime][cout] with outTime = (time + 2 − 3)/stride + 1. The
// weight has PyTorch's layout [cout][cin][3], flattened: w[o][c·3 + k]
// multiplies input time t·stride + k − 1 (zero outside [0, time)).
func conv1d(x [][]float64, cin int, w linear, stride int) [][]float64 {
	const kernel, pad = 3, 1
	tIn := len(x)
	tOut := (tIn+2*pad-kernel)/stride + 1
	y := newMat(tOut, w.Out)
	parallelFor(tOut, func(t int) {
		// im2col: the receptive field of output t in the weight's order.
		col := make([]float64, cin*kernel)
		for k := 0; k < kernel; k++ {
			if src := t*stride + k - pad; src >= 0 && src < tIn {
				for c := 0; c < cin; c++ {
					col[c*kernel+k] = x[src][c]
				}
			}
		}
		for o := 0; o < w.Out; o++ {
			y[t][o] = dot(col, w.row(o)) + w.B[o]
		}
	})
	return y
}

// avgPool2 is nn.AvgPool1d(kernel 2, stride 2) along time ([time][ch] →
// [time/2][ch], floor: an odd last row is dropped).
func avgPool2(x [][]float64) [][]float64 {
	if len(x) < 2 {
		return [][]float64{}
	}
	y := newMat(len(x)/2, len(x[0]))
	for i := range y {
		for j := range y[i] {
			y[i][j] = (x[2*i][j] + x[2*i+1][j]) / 2
		}
	}
	return y
}

// floorDiv is Python's // (rounds toward −∞; Go's / truncates toward 0).
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// ropeTables returns cos and sin [n][headDim/2] for positions 0..n−1:
// angle(p, i) = p · inv_freq[i], inv_freq[i] = theta^(−2i/headDim). All in
// float64 (transformers computes inv_freq and the angles in float32; the
// difference is a relative angle error of ~6e-8, far below float32 parity
// tolerances).
func ropeTables(n, headDim int, theta float64) (cos, sin [][]float64) {
	half := headDim / 2
	cos, sin = newMat(n, half), newMat(n, half)
	for p := 0; p < n; p++ {
		for i := 0; i < half; i++ {
			a := float64(p) * math.Pow(theta, -float64(2*i)/float64(headDim))
			cos[p][i], sin[p][i] = math.Cos(a), math.Sin(a)
		}
	}
	return cos, sin
}

// ropeHead rotates one head vector in place with the rotate-half layout
// (x1 = v[:half], x2 = v[half:]): [x1·cos − x2·sin, x2·cos + x1·sin].
func ropeHead(v, cos, sin []float64) {
	half := len(v) / 2
	for i := 0; i < half; i++ {
		x1, x2 := v[i], v[half+i]
		v[i] = x1*cos[i] - x2*sin[i]
		v[half+i] = x2*cos[i] + x1*sin[i]
	}
}

// attention is multi-head scaled dot-product attention over row-major q
// [n][heads·hd], k and v [n][kvHeads·hd]. Query head h reads KV head
// h / (heads/kvHeads) (transformers' repeat_kv). keys(i) gives the key
// rows [lo, hi) that query row i may see; every other key is masked
// (softmax weight exactly 0, as an additive −inf mask gives). scores are
// q·k · scale, softmax with the maximum subtracted.
func attention(q, k, v [][]float64, heads, kvHeads, hd int, scale float64, keys func(i int) (lo, hi int)) [][]float64 {
	n := len(q)
	rep := heads / kvHeads
	out := newMat(n, heads*hd)
	parallelFor(n, func(i int) {
		lo, hi := keys(i)
		p := make([]float64, hi-lo)
		for h := 0; h < heads; h++ {
			g := h / rep
			qh := q[i][h*hd : (h+1)*hd]
			m := math.Inf(-1)
			for j := lo; j < hi; j++ {
				s := dot(qh, k[j][g*hd:(g+1)*hd]) * scale
				p[j-lo] = s
				m = math.Max(m, s)
			}
			sum := 0.0
			for j := range p {
				p[j] = math.Exp(p[j] - m)
				sum += p[j]
			}
			oh := out[i][h*hd : (h+1)*hd]
			for j := lo; j < hi; j++ {
				w := p[j-lo] / sum
				vj := v[j][g*hd : (g+1)*hd]
				for d := range oh {
					oh[d] += w * vj[d]
				}
			}
		}
	})
	return out
}
