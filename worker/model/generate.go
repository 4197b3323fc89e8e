package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"earl/kernels"
)

// SampleOptions control generation.
type SampleOptions struct {
	// Temperature 0 means greedy (argmax); otherwise logits are divided
	// by it before sampling.
	Temperature  float32
	TopK         int     // keep the K most likely tokens (0: all)
	TopP         float32 // keep the smallest set with this much mass (0 or 1: all)
	MaxNewTokens int
	// Stop ends a sample when it produces one of these ids (the stop
	// token is kept in the output). Typically <|im_end|> and <|endoftext|>.
	Stop []int32
	// Suppress are ids never generated (their logits become -inf), as
	// transformers' suppress_tokens: the audio placeholder and markers,
	// which a completion must not contain.
	Suppress []int32
}

// Prompt is one generation input: its token ids (audio placeholders
// expanded) and audio clips, and the seed of its samples. Sample j of a
// prompt draws from PCG(SampleSeed(Seed, j), 0): the same seed gives the
// same samples whatever else is in the batch, and a prompt run alone with
// seed SampleSeed(S, j) reproduces sample j of a prompt forked with seed S.
type Prompt struct {
	Tokens []int32
	Audio  []Clip
	Seed   uint64
}

// kvCache holds keys and values of every layer for Slots sequences of up
// to MaxLen tokens.
type kvCache struct {
	slots, maxLen int
	k, v          []kernels.T // per layer: (slots, maxLen, kvHeads, headDim)
}

// GenLimits size the generation buffers.
type GenLimits struct {
	Slots  int // concurrent samples (prompts x G)
	MaxLen int // prompt + completion tokens per sample
}

// Generator samples completions with a KV cache. Each prompt is prefilled
// once (its audio encoded once) and forked into G samples.
type Generator struct {
	m     *Model
	lim   GenLimits
	cache kvCache

	// Decode-step scratch for up to Slots rows.
	x, ln, q, k, v, att, mid, gate, up, act, tmp, rstd kernels.T
	logits                                             kernels.T
	ids, pos, slot, lens                               kernels.I
	rows                                               kernels.I
	host                                               []float32
}

// NewGenerator allocates the cache and scratch.
func (m *Model) NewGenerator(lim GenLimits) (*Generator, error) {
	if lim.Slots <= 0 || lim.MaxLen <= 0 {
		return nil, fmt.Errorf("generation limits need positive Slots and MaxLen, got %+v", lim)
	}
	if lim.Slots > m.Limits.MaxTokens {
		return nil, fmt.Errorf("%d generation slots exceed the model's MaxTokens %d (decode steps reuse its buffers)", lim.Slots, m.Limits.MaxTokens)
	}
	c, dev := m.Cfg, m.Dev
	g := &Generator{m: m, lim: lim, cache: kvCache{slots: lim.Slots, maxLen: lim.MaxLen}}
	kvw := c.Text.NumKVHeads * c.HeadDim()
	for range c.Text.NumLayers {
		g.cache.k = append(g.cache.k, dev.Alloc(lim.Slots*lim.MaxLen*kvw))
		g.cache.v = append(g.cache.v, dev.Alloc(lim.Slots*lim.MaxLen*kvw))
	}
	s, h, qw, inter := lim.Slots, c.Text.HiddenSize, c.Text.NumHeads*c.HeadDim(), c.Text.IntermediateSize
	g.x, g.ln, g.mid, g.tmp = dev.Alloc(s*h), dev.Alloc(s*h), dev.Alloc(s*h), dev.Alloc(s*h)
	g.q, g.att = dev.Alloc(s*qw), dev.Alloc(s*qw)
	g.k, g.v = dev.Alloc(s*kvw), dev.Alloc(s*kvw)
	g.gate, g.up, g.act = dev.Alloc(s*inter), dev.Alloc(s*inter), dev.Alloc(s*inter)
	g.rstd = dev.Alloc(s)
	g.logits = dev.Alloc(s * c.Text.VocabSize)
	g.ids, g.pos, g.slot, g.lens, g.rows = dev.AllocInt(s), dev.AllocInt(s), dev.AllocInt(s), dev.AllocInt(s), dev.AllocInt(s)
	g.host = make([]float32, s*c.Text.VocabSize)
	return g, nil
}

// SampleSeed is the seed of sample j of a prompt seeded with seed. It
// mixes both (SplitMix64's finaliser) rather than adding them: with a
// linear combination, sample j+1 of prompt s would draw the same numbers as
// sample j of prompt s+1 whenever prompt seeds are consecutive, and a
// batch's samples would be correlated across its prompts. Sample 0 keeps
// the prompt's seed, so a prompt generated alone with seed
// SampleSeed(S, j) reproduces sample j of a prompt with seed S.
func SampleSeed(seed uint64, j int) uint64 {
	if j == 0 {
		return seed
	}
	return mix64(seed ^ mix64(uint64(j)+0x9e3779b97f4a7c15))
}

// mix64 is SplitMix64's output function, a bijection that spreads every
// input bit over the output.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// sample is one sequence being generated.
type sample struct {
	slot   int
	length int // tokens in the cache
	out    []int32
	rng    *rand.Rand
	done   bool
}

// Generate returns G completions per prompt, sample j of prompt i at
// index i*G+j. Prompts must fit the model's Limits together (they are
// prefilled in one forward pass).
func (g *Generator) Generate(prompts []Prompt, G int, opt SampleOptions) ([][]int32, error) {
	m, dev, c := g.m, g.m.Dev, g.m.Cfg
	if len(prompts)*G > g.lim.Slots {
		return nil, fmt.Errorf("%d prompts x %d samples exceed the %d generation slots", len(prompts), G, g.lim.Slots)
	}
	if opt.MaxNewTokens <= 0 {
		return nil, fmt.Errorf("MaxNewTokens must be positive")
	}
	// Prefill all prompts in one packed forward pass.
	b := &Batch{Seqs: kernels.Seqs{Offsets: []int32{0}}}
	for i, p := range prompts {
		if len(p.Tokens) == 0 {
			return nil, fmt.Errorf("prompt %d is empty", i)
		}
		if len(p.Tokens)+opt.MaxNewTokens > g.lim.MaxLen {
			return nil, fmt.Errorf("prompt %d: %d tokens + %d new exceed the generation length %d", i, len(p.Tokens), opt.MaxNewTokens, g.lim.MaxLen)
		}
		b.Tokens = append(b.Tokens, p.Tokens...)
		b.Seqs.Offsets = append(b.Seqs.Offsets, int32(len(b.Tokens)))
		b.Audio = append(b.Audio, p.Audio...)
	}
	b.Targets = make([]int32, len(b.Tokens))
	for i := range b.Targets {
		b.Targets[i] = -1
	}
	if err := b.check(c, m.Limits); err != nil {
		return nil, err
	}
	na, err := m.prepareAudio(b.Tokens, b.Audio)
	if err != nil {
		return nil, err
	}
	d := m.dec
	n := len(b.Tokens)
	dev.UploadInt(d.ids.View(0, n), b.Tokens)
	pos := positions(b.Seqs)
	dev.UploadInt(d.pos.View(0, n), pos)
	d.embedInputs(n, na)
	slots := make([]int32, n)
	for i := range prompts {
		for t := b.Seqs.Offsets[i]; t < b.Seqs.Offsets[i+1]; t++ {
			slots[t] = int32(i * G)
		}
	}
	// The decoder's target-position buffer is free during generation.
	slotBuf := d.sel.View(0, n)
	dev.UploadInt(slotBuf, slots)
	kvw := c.Text.NumKVHeads * c.HeadDim()
	for l := range d.layers {
		d.layerForward(l, n, b.Seqs)
		dev.CacheWrite(g.cache.k[l], g.cache.v[l], d.k[l].View(0, n*kvw), d.v[l].View(0, n*kvw), slotBuf, d.pos.View(0, n),
			n, c.Text.NumKVHeads, c.HeadDim(), g.lim.MaxLen)
	}
	// Fork each prompt's cache into its G slots.
	for i, p := range prompts {
		for j := 1; j < G; j++ {
			for l := range d.layers {
				dev.CacheCopy(g.cache.k[l], g.cache.v[l], i*G, i*G+j, len(p.Tokens), c.Text.NumKVHeads, c.HeadDim(), g.lim.MaxLen)
			}
		}
	}
	// Logits of each prompt's last token.
	h := c.Text.HiddenSize
	last := make([]int32, len(prompts))
	for i := range prompts {
		last[i] = b.Seqs.Offsets[i+1] - 1
	}
	np := len(prompts)
	dev.UploadInt(g.rows.View(0, np), last)
	xl := d.x[len(d.layers)].View(0, n*h)
	dev.GatherRows(g.x.View(0, np*h), xl, g.rows.View(0, np), np, h)
	g.logitsOf(np)

	samples := make([]*sample, np*G)
	for i, p := range prompts {
		for j := 0; j < G; j++ {
			samples[i*G+j] = &sample{slot: i*G + j, length: len(p.Tokens), rng: rand.New(rand.NewPCG(SampleSeed(p.Seed, j), 0))}
		}
	}
	v := c.Text.VocabSize
	for i := range prompts {
		row := g.host[i*v : (i+1)*v]
		suppress(row, opt.Suppress)
		for j := 0; j < G; j++ {
			s := samples[i*G+j]
			s.push(choose(row, s.rng, opt), opt)
		}
	}
	for step := 1; step < opt.MaxNewTokens; step++ {
		var active []*sample
		for _, s := range samples {
			if !s.done {
				active = append(active, s)
			}
		}
		if len(active) == 0 {
			break
		}
		g.decodeStep(active)
		for r, s := range active {
			row := g.host[r*v : (r+1)*v]
			suppress(row, opt.Suppress)
			s.push(choose(row, s.rng, opt), opt)
		}
	}
	out := make([][]int32, len(samples))
	for i, s := range samples {
		out[i] = s.out
	}
	return out, nil
}

// suppress sets the logits of ids to -inf.
func suppress(row []float32, ids []int32) {
	for _, id := range ids {
		if int(id) < len(row) && id >= 0 {
			row[id] = float32(math.Inf(-1))
		}
	}
}

func (s *sample) push(tok int32, opt SampleOptions) {
	s.out = append(s.out, tok)
	for _, st := range opt.Stop {
		if tok == st {
			s.done = true
		}
	}
	if len(s.out) >= opt.MaxNewTokens {
		s.done = true
	}
}

// logitsOf computes logits for the n rows of g.x (final norm + lm_head)
// into g.host.
func (g *Generator) logitsOf(n int) {
	m, dev, c := g.m, g.m.Dev, g.m.Cfg
	h, v := c.Text.HiddenSize, c.Text.VocabSize
	dev.RMSNormForward(g.ln.View(0, n*h), g.rstd.View(0, n), g.x.View(0, n*h), m.P.Get(m.dec.norm), n, h, float32(c.Text.RMSNormEps))
	dev.LinearForward(g.logits.View(0, n*v), g.ln.View(0, n*h), m.P.Get(m.dec.head), kernels.T{}, n, h, v)
	dev.Download(g.host[:n*v], g.logits.View(0, n*v))
}

// decodeStep feeds each active sample's last token through the decoder
// against its cached keys and values, appends the new keys and values,
// and leaves the next-token logits in g.host.
func (g *Generator) decodeStep(active []*sample) {
	m, dev, c, p := g.m, g.m.Dev, g.m.Cfg, g.m.P
	n := len(active)
	ids, pos, slot, lens := make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	for i, s := range active {
		ids[i], pos[i], slot[i], lens[i] = s.out[len(s.out)-1], int32(s.length), int32(s.slot), int32(s.length+1)
		s.length++
	}
	dev.UploadInt(g.ids.View(0, n), ids)
	dev.UploadInt(g.pos.View(0, n), pos)
	dev.UploadInt(g.slot.View(0, n), slot)
	dev.UploadInt(g.lens.View(0, n), lens)
	h, qw, kv, inter := c.Text.HiddenSize, c.Text.NumHeads*c.HeadDim(), c.Text.NumKVHeads*c.HeadDim(), c.Text.IntermediateSize
	eps, theta := float32(c.Text.RMSNormEps), float32(c.Text.RopeTheta)
	x, ln, mid, tmp := g.x.View(0, n*h), g.ln.View(0, n*h), g.mid.View(0, n*h), g.tmp.View(0, n*h)
	q, k, v, att := g.q.View(0, n*qw), g.k.View(0, n*kv), g.v.View(0, n*kv), g.att.View(0, n*qw)
	dev.EmbeddingForward(x, p.Get(m.dec.embed), g.ids.View(0, n), n, h)
	for l, w := range m.dec.layers {
		dev.RMSNormForward(ln, g.rstd.View(0, n), x, p.Get(w.ln1), n, h, eps)
		m.linear(q, ln, w.q, w.qb, n, h, qw)
		m.linear(k, ln, w.k, w.kb, n, h, kv)
		m.linear(v, ln, w.v, w.vb, n, h, kv)
		dev.RoPEForward(q, g.pos.View(0, n), n, c.Text.NumHeads, c.HeadDim(), theta)
		dev.RoPEForward(k, g.pos.View(0, n), n, c.Text.NumKVHeads, c.HeadDim(), theta)
		dev.CacheWrite(g.cache.k[l], g.cache.v[l], k, v, g.slot.View(0, n), g.pos.View(0, n), n, c.Text.NumKVHeads, c.HeadDim(), g.lim.MaxLen)
		dev.AttentionDecode(att, q, g.cache.k[l], g.cache.v[l], g.slot.View(0, n), g.lens.View(0, n), n, m.dec.attn(), g.lim.MaxLen)
		m.linear(tmp, att, w.o, "", n, qw, h)
		dev.Add(mid, x, tmp)
		dev.RMSNormForward(ln, g.rstd.View(0, n), mid, p.Get(w.ln2), n, h, eps)
		gate, up, act := g.gate.View(0, n*inter), g.up.View(0, n*inter), g.act.View(0, n*inter)
		m.linear(gate, ln, w.gate, "", n, h, inter)
		m.linear(up, ln, w.up, "", n, h, inter)
		dev.SwiGLUForward(act, gate, up, n, inter)
		m.linear(tmp, act, w.down, "", n, inter, h)
		dev.Add(x, mid, tmp)
	}
	g.logitsOf(n)
}

// choose picks the next token from logits: argmax when greedy, otherwise
// a draw from the tempered distribution restricted by top-k and top-p.
// Ties in argmax go to the lowest id, as torch.argmax does.
func choose(logits []float32, r *rand.Rand, opt SampleOptions) int32 {
	if opt.Temperature <= 0 {
		best := 0
		for i, v := range logits {
			if v > logits[best] {
				best = i
			}
		}
		return int32(best)
	}
	if opt.TopK <= 0 && (opt.TopP <= 0 || opt.TopP >= 1) {
		// Plain sampling needs no sort (a real vocabulary has 151k ids).
		mx := math.Inf(-1)
		for _, v := range logits {
			mx = math.Max(mx, float64(v))
		}
		t := float64(opt.Temperature)
		var z float64
		for _, v := range logits {
			z += math.Exp((float64(v) - mx) / t)
		}
		u := r.Float64() * z
		last := 0
		for i, v := range logits {
			p := math.Exp((float64(v) - mx) / t)
			if p > 0 {
				last = i
			}
			if u -= p; u <= 0 && p > 0 {
				return int32(i)
			}
		}
		return int32(last)
	}
	type cand struct {
		id int
		lp float64
	}
	cs := make([]cand, len(logits))
	mx := math.Inf(-1)
	for i, v := range logits {
		x := float64(v) / float64(opt.Temperature)
		cs[i] = cand{i, x}
		mx = math.Max(mx, x)
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].lp > cs[b].lp })
	keep := len(cs)
	if opt.TopK > 0 && opt.TopK < keep {
		keep = opt.TopK
	}
	var z float64
	for i := range cs[:keep] {
		z += math.Exp(cs[i].lp - mx)
	}
	if opt.TopP > 0 && opt.TopP < 1 {
		var cum float64
		for i := 0; i < keep; i++ {
			cum += math.Exp(cs[i].lp-mx) / z
			if cum >= float64(opt.TopP) {
				keep = i + 1
				break
			}
		}
		z = 0
		for i := range cs[:keep] {
			z += math.Exp(cs[i].lp - mx)
		}
	}
	u := r.Float64() * z
	for i := 0; i < keep; i++ {
		u -= math.Exp(cs[i].lp - mx)
		if u <= 0 {
			return int32(cs[i].id)
		}
	}
	return int32(cs[keep-1].id)
}
