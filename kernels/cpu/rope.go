package cpu

import (
	"fmt"
	"math"

	"earl/kernels"
)

// ropeTable holds inv_freq for one (theta, headDim), computed as Hugging
// Face transformers does, in float32:
//
//	inv_freq = 1.0 / (theta ** (arange(0, dim, 2, dtype=int64).float() / dim))
//
// The exponent is rounded to float32 before the power, and the power to
// float32 before the division (math.Pow in float64, then rounded: the
// correctly rounded powf).
type ropeTable struct {
	theta float32
	dim   int
	inv   []float32
}

func (t *ropeTable) get(theta float32, dim int) []float32 {
	if t.dim == dim && t.theta == theta && t.inv != nil {
		return t.inv
	}
	half := dim / 2
	if cap(t.inv) < half {
		t.inv = make([]float32, half)
	}
	t.inv = t.inv[:half]
	for i := range t.inv {
		e := float32(2*i) / float32(dim)
		t.inv[i] = 1 / float32(math.Pow(float64(theta), float64(e)))
	}
	t.theta, t.dim = theta, dim
	return t.inv
}

// RoPEForward rotates each head of x (n, heads, headDim) in place by its
// row's position (Hugging Face Qwen2's rotate-half layout). For i in
// [0, headDim/2), with x1 = x[i] and x2 = x[i + headDim/2]:
//
//	angle = float32(pos) * inv_freq[i]      (a float32 product, as in HF)
//	x[i]          = x1 * cos(angle) - x2 * sin(angle)
//	x[i + half]   = x2 * cos(angle) + x1 * sin(angle)
//
// cos and sin of that float32 angle are taken in float64 and rounded. At
// position 30000 the float32 angle is up to 2e-3 rad (head size 128) from
// the exact one; matching Hugging Face is the point.
func (d *Device) RoPEForward(x kernels.T, pos kernels.I, n, heads, headDim int, theta float32) {
	d.rotate(x, pos, n, heads, headDim, theta, 1, "RoPEForward")
}

// RoPEBackward rotates dx (n, heads, headDim) in place by the negated
// angles: the rotation is orthogonal, so its transpose is its inverse.
func (d *Device) RoPEBackward(dx kernels.T, pos kernels.I, n, heads, headDim int, theta float32) {
	d.rotate(dx, pos, n, heads, headDim, theta, -1, "RoPEBackward")
}

func (d *Device) rotate(x kernels.T, pos kernels.I, n, heads, headDim int, theta, sign float32, op string) {
	if headDim%2 != 0 {
		panic(fmt.Sprintf("cpu: %s: odd head size %d", op, headDim))
	}
	if n*heads*headDim == 0 {
		return
	}
	j := &d.jobs.rope
	*j = ropeJob{
		x: need(x, n*heads*headDim, op, "x"), pos: needInts(pos, n, op, "pos"),
		inv: d.ropeInv.get(theta, headDim), heads: heads, dim: headDim, sign: sign,
	}
	d.pool.do(n, grain(headDim*10+heads*headDim*3), j)
}

type ropeJob struct {
	x          []float32
	pos        []int32
	inv        []float32
	heads, dim int
	sign       float32 // -1 rotates back
}

func (j *ropeJob) run(_, lo, hi int) {
	half, hd := j.dim/2, j.heads*j.dim
	for i := lo; i < hi; i++ {
		p, row := float32(j.pos[i]), j.x[i*hd:(i+1)*hd]
		for f, inv := range j.inv {
			sn, cs := math.Sincos(float64(float32(p * inv)))
			c, s := float32(cs), j.sign*float32(sn)
			for h := 0; h < hd; h += j.dim {
				x1, x2 := row[h+f], row[h+f+half]
				row[h+f] = x1*c - x2*s
				row[h+f+half] = x2*c + x1*s
			}
		}
	}
}
