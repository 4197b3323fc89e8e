package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strings"

	"earl/kernels"
	"earl/worker/ckpt"
)

// LoRAConfig configures low-rank adapters on decoder projections:
// W x + (Alpha/Rank) B A x, A (Rank, in), B (out, Rank), as PEFT does.
type LoRAConfig struct {
	Rank  int
	Alpha float64
	// Targets are module names or regular expressions matched against the
	// projection name ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
	// "up_proj", "down_proj"); empty means all seven.
	Targets []string
	Seed    uint64
}

var loraModules = []string{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

// adapter is one projection's A and B and the cached A x of the last
// forward.
type adapter struct {
	a, b, da, db kernels.T
	in, out      int
	u            kernels.T // (MaxTokens, Rank): A x for the backward
	du           kernels.T
}

// LoRA holds every adapter in one flat trainable buffer (its own ZeRO
// range) with gradients of the same layout.
type LoRA struct {
	Cfg     LoRAConfig
	Buf     kernels.T
	Grad    kernels.T
	Enabled bool // false: the base model (the frozen reference policy)
	scale   float32
	byName  map[string]*adapter // keyed by the base weight's name
	names   []string
}

// AddLoRA attaches adapters to the decoder projections the config targets.
// The base weights should be frozen (Freeze.Text) so only adapters train.
func (m *Model) AddLoRA(lc LoRAConfig) (*LoRA, error) {
	if lc.Rank <= 0 {
		return nil, fmt.Errorf("LoRA rank must be positive, got %d", lc.Rank)
	}
	if lc.Alpha == 0 {
		lc.Alpha = float64(lc.Rank)
	}
	targets := lc.Targets
	if len(targets) == 0 {
		targets = loraModules
	}
	var res []*regexp.Regexp
	for _, t := range targets {
		re, err := regexp.Compile("^(?:" + t + ")$")
		if err != nil {
			return nil, fmt.Errorf("LoRA target %q: %w", t, err)
		}
		res = append(res, re)
	}
	matches := func(module string) bool {
		for _, re := range res {
			if re.MatchString(module) {
				return true
			}
		}
		return false
	}
	c, dev := m.Cfg, m.Dev
	h, qw, kv, inter := c.Text.HiddenSize, c.Text.NumHeads*c.HeadDim(), c.Text.NumKVHeads*c.HeadDim(), c.Text.IntermediateSize
	shapes := map[string][2]int{ // module -> in, out
		"q_proj": {h, qw}, "k_proj": {h, kv}, "v_proj": {h, kv}, "o_proj": {qw, h},
		"gate_proj": {h, inter}, "up_proj": {h, inter}, "down_proj": {inter, h},
	}
	L := &LoRA{Cfg: lc, Enabled: true, scale: float32(lc.Alpha / float64(lc.Rank)), byName: map[string]*adapter{}}
	total := 0
	type plan struct {
		name    string
		in, out int
	}
	var plans []plan
	used := map[string]bool{}
	for _, w := range m.dec.layers {
		for _, name := range []string{w.q, w.k, w.v, w.o, w.gate, w.up, w.down} {
			module := strings.TrimSuffix(name[strings.LastIndex(strings.TrimSuffix(name, ".weight"), ".")+1:], ".weight")
			if !matches(module) {
				continue
			}
			used[module] = true
			sh := shapes[module]
			plans = append(plans, plan{name, sh[0], sh[1]})
			total += lc.Rank * (sh[0] + sh[1])
		}
	}
	for _, t := range targets {
		found := false
		for mod := range used {
			if regexp.MustCompile("^(?:" + t + ")$").MatchString(mod) {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("LoRA target %q matches none of %v", t, loraModules)
		}
	}
	L.Buf, L.Grad = dev.Alloc(total), dev.Alloc(total)
	r := rand.New(rand.NewPCG(lc.Seed, 0x10a))
	off := 0
	for _, pl := range plans {
		na, nb := lc.Rank*pl.in, pl.out*lc.Rank
		ad := &adapter{a: L.Buf.View(off, na), b: L.Buf.View(off+na, nb), da: L.Grad.View(off, na), db: L.Grad.View(off+na, nb),
			in: pl.in, out: pl.out}
		off += na + nb
		// PEFT: A from kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)); B = 0,
		// so the adapted model starts equal to the base model.
		bound := 1 / math.Sqrt(float64(pl.in))
		host := make([]float32, na)
		for i := range host {
			host[i] = float32((2*r.Float64() - 1) * bound)
		}
		dev.Upload(ad.a, host)
		ad.u, ad.du = dev.Alloc(m.Limits.MaxTokens*lc.Rank), dev.Alloc(m.Limits.MaxTokens*lc.Rank)
		L.byName[pl.name] = ad
		L.names = append(L.names, pl.name)
	}
	m.lora = L
	return L, nil
}

// Adapter names lists the adapted weights in layout order.
func (l *LoRA) AdapterNames() []string { return append([]string(nil), l.names...) }

// A and B return an adapter's matrices (PEFT names them
// base_model.model.<module>.lora_A.weight / lora_B.weight).
func (l *LoRA) A(name string) kernels.T { return l.byName[name].a }

// B returns an adapter's up-projection.
func (l *LoRA) B(name string) kernels.T { return l.byName[name].b }

// GradA and GradB return the gradients of A and B.
func (l *LoRA) GradA(name string) kernels.T { return l.byName[name].da }

// GradB returns the gradient of B.
func (l *LoRA) GradB(name string) kernels.T { return l.byName[name].db }

// Scale is Alpha / Rank, the factor on B A x.
func (l *LoRA) Scale() float32 { return l.scale }

// linear computes out = x W^T + bias (+ LoRA when enabled on this weight).
func (m *Model) linear(out, x kernels.T, w, bias string, n, in, outDim int) {
	var b kernels.T
	if bias != "" {
		b = m.P.Get(bias)
	}
	m.Dev.LinearForward(out, x, m.P.Get(w), b, n, in, outDim)
	if ad := m.adapterFor(w); ad != nil {
		u := ad.u.View(0, n*m.lora.Cfg.Rank)
		m.Dev.LinearForward(u, x, ad.a, kernels.T{}, n, in, m.lora.Cfg.Rank)
		// out += scale * u B^T
		m.Dev.Gemm(false, true, n, outDim, m.lora.Cfg.Rank, m.lora.scale, u, m.lora.Cfg.Rank, ad.b, m.lora.Cfg.Rank, 1, out, outDim)
	}
}

// linearBackward accumulates dx and the weight (or adapter) gradients.
func (m *Model) linearBackward(dx, dout, x kernels.T, w, bias string, n, in, outDim int) {
	var db kernels.T
	if bias != "" {
		db = m.P.GradOf(bias)
	}
	m.Dev.LinearBackward(dx, m.P.GradOf(w), db, dout, x, m.P.Get(w), n, in, outDim)
	if ad := m.adapterFor(w); ad != nil {
		r := m.lora.Cfg.Rank
		u, du := ad.u.View(0, n*r), ad.du.View(0, n*r)
		// out = scale * u B^T: dB += scale * dout^T u; du = scale * dout B.
		m.Dev.Gemm(true, false, outDim, r, n, m.lora.scale, dout, outDim, u, r, 1, ad.db, r)
		m.Dev.Gemm(false, false, n, r, outDim, m.lora.scale, dout, outDim, ad.b, r, 0, du, r)
		// u = x A^T.
		m.Dev.LinearBackward(dx, ad.da, kernels.T{}, du, x, ad.a, n, in, r)
	}
}

func (m *Model) adapterFor(w string) *adapter {
	if m.lora == nil || !m.lora.Enabled {
		return nil
	}
	return m.lora.byName[w]
}

// Refs is the tensor table of Buf under PEFT's names
// (base_model.model.<module>.lora_A.weight, (Rank, in); lora_B, (out, Rank)).
func (l *LoRA) Refs() []ckpt.TensorRef {
	var refs []ckpt.TensorRef
	for _, name := range l.names {
		a := l.byName[name]
		mod := "base_model.model." + strings.TrimSuffix(name, ".weight")
		refs = append(refs,
			ckpt.TensorRef{Name: mod + ".lora_A.weight", Offset: a.a.Off - l.Buf.Off, Shape: []int{l.Cfg.Rank, a.in}},
			ckpt.TensorRef{Name: mod + ".lora_B.weight", Offset: a.b.Off - l.Buf.Off, Shape: []int{a.out, l.Cfg.Rank}})
	}
	return refs
}
