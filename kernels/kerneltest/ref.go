package kerneltest

import (
	"math"

	"earl/kernels"
)

// The float64 references: each op's formula as plain loops, written from
// the math (and, for RoPE's angle, from Hugging Face's float32 recipe),
// sharing nothing with any device.

// refLinear is out (n, oc) = x (n, ic) @ w (oc, ic)^T + b (oc; nil: none).
func refLinear(x, w, b []float64, n, ic, oc int) []float64 {
	out := make([]float64, n*oc)
	for i := range n {
		for o := range oc {
			s := 0.0
			if b != nil {
				s = b[o]
			}
			for k := range ic {
				s += x[i*ic+k] * w[o*ic+k]
			}
			out[i*oc+o] = s
		}
	}
	return out
}

// refRMSNorm is out = x / sqrt(mean(x^2) + eps) * w, rows of c.
func refRMSNorm(x, w []float64, n, c int, eps float64) (out, rstd []float64) {
	out, rstd = make([]float64, n*c), make([]float64, n)
	for i := range n {
		ss := 0.0
		for k := range c {
			ss += x[i*c+k] * x[i*c+k]
		}
		rstd[i] = 1 / math.Sqrt(ss/float64(c)+eps)
		for k := range c {
			out[i*c+k] = x[i*c+k] * rstd[i] * w[k]
		}
	}
	return out, rstd
}

// refLayerNorm is out = (x - mean) / sqrt(var + eps) * w + b, with the
// biased variance.
func refLayerNorm(x, w, b []float64, n, c int, eps float64) (out, mean, rstd []float64) {
	out, mean, rstd = make([]float64, n*c), make([]float64, n), make([]float64, n)
	for i := range n {
		s := 0.0
		for k := range c {
			s += x[i*c+k]
		}
		m := s / float64(c)
		v := 0.0
		for k := range c {
			v += (x[i*c+k] - m) * (x[i*c+k] - m)
		}
		mean[i], rstd[i] = m, 1/math.Sqrt(v/float64(c)+eps)
		for k := range c {
			out[i*c+k] = (x[i*c+k]-m)*rstd[i]*w[k] + b[k]
		}
	}
	return out, mean, rstd
}

// ropeAngle is Hugging Face's angle for frequency i of a head of dim at
// position pos: inv_freq = 1 / theta^(float32(2i) / dim) rounded to
// float32 at each step, times pos in float32. Only the angle follows the
// float32 recipe; the rotation is float64.
func ropeAngle(pos int32, i, dim int, theta float32) float64 {
	e := float32(2*i) / float32(dim)
	inv := 1 / float32(math.Pow(float64(theta), float64(e)))
	return float64(float32(float32(pos) * inv))
}

// refRoPE rotates pairs (i, i + dim/2) of each head by ropeAngle.
func refRoPE(x []float64, pos []int32, n, heads, dim int, theta float32) []float64 {
	out := make([]float64, len(x))
	half := dim / 2
	for r := range n {
		for h := range heads {
			base := (r*heads + h) * dim
			for i := range half {
				s, c := math.Sincos(ropeAngle(pos[r], i, dim, theta))
				x1, x2 := x[base+i], x[base+i+half]
				out[base+i] = x1*c - x2*s
				out[base+i+half] = x2*c + x1*s
			}
		}
	}
	return out
}

// refAttention is softmax attention over packed sequences, row by row.
func refAttention(q, k, v []float64, offs []int32, a kernels.Attn) (out, lse []float64) {
	H, KV, D := a.Heads, a.KVHeads, a.HeadDim
	total := int(offs[len(offs)-1])
	out, lse = make([]float64, total*H*D), make([]float64, total*H)
	for s := 0; s+1 < len(offs); s++ {
		st, en := int(offs[s]), int(offs[s+1])
		for i := st; i < en; i++ {
			last := en - 1
			if a.Causal {
				last = i
			}
			for h := range H {
				g := h / (H / KV)
				sc := make([]float64, last-st+1)
				m := math.Inf(-1)
				for j := st; j <= last; j++ {
					d := 0.0
					for c := range D {
						d += q[(i*H+h)*D+c] * k[(j*KV+g)*D+c]
					}
					sc[j-st] = float64(a.Scale) * d
					m = max(m, sc[j-st])
				}
				sum := 0.0
				for _, x := range sc {
					sum += math.Exp(x - m)
				}
				l := m + math.Log(sum)
				lse[i*H+h] = l
				for j := st; j <= last; j++ {
					p := math.Exp(sc[j-st] - l)
					for c := range D {
						out[(i*H+h)*D+c] += p * v[(j*KV+g)*D+c]
					}
				}
			}
		}
	}
	return out, lse
}

// refSwiGLU is silu(gate) * up.
func refSwiGLU(gate, up []float64) []float64 {
	out := make([]float64, len(gate))
	for i, g := range gate {
		out[i] = g / (1 + math.Exp(-g)) * up[i]
	}
	return out
}

// refGELU is x * Phi(x), the exact form.
func refGELU(x []float64) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
	}
	return out
}

// refConv1d is the kernel-3, padding-1 convolution written directly.
func refConv1d(x, w, bias []float64, b, cin, cout, tin, stride int) []float64 {
	tout := (tin-1)/stride + 1
	out := make([]float64, b*cout*tout)
	for bi := range b {
		for o := range cout {
			for t := range tout {
				s := bias[o]
				for i := range cin {
					for k := range 3 {
						if src := t*stride + k - 1; src >= 0 && src < tin {
							s += w[(o*cin+i)*3+k] * x[(bi*cin+i)*tin+src]
						}
					}
				}
				out[(bi*cout+o)*tout+t] = s
			}
		}
	}
	return out
}

// refAvgPool averages pairs of frames, dropping an odd last one.
func refAvgPool(x []float64, rows, tin int) []float64 {
	tout := tin / 2
	out := make([]float64, rows*tout)
	for r := range rows {
		for t := range tout {
			out[r*tout+t] = (x[r*tin+2*t] + x[r*tin+2*t+1]) / 2
		}
	}
	return out
}

// refLogProbs is the full softmax of z = h w^T / temperature per row: the
// target's log-probability, the entropy -sum p log p, and lse.
func refLogProbs(h, w []float64, targets []int32, n, c, v int, temperature float64) (logp, ent, lse []float64) {
	logp, ent, lse = make([]float64, n), make([]float64, n), make([]float64, n)
	z := make([]float64, v)
	for i := range n {
		m := math.Inf(-1)
		for j := range v {
			s := 0.0
			for k := range c {
				s += h[i*c+k] * w[j*c+k]
			}
			z[j] = s / temperature
			m = max(m, z[j])
		}
		sum := 0.0
		for _, x := range z {
			sum += math.Exp(x - m)
		}
		l := m + math.Log(sum)
		lse[i], logp[i] = l, z[targets[i]]-l
		for _, x := range z {
			p := math.Exp(x - l)
			ent[i] -= p * (x - l)
		}
	}
	return logp, ent, lse
}
