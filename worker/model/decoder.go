package model

import (
	"fmt"
	"math"

	"earl/kernels"
)

// decoderLayer holds one layer's weight names.
type decoderLayer struct {
	ln1, q, qb, k, kb, v, vb, o, ln2, gate, up, down string
}

// decoder runs the Qwen2 decoder forward and backward over packed tokens.
// Every buffer is sized once for Limits.MaxTokens.
type decoder struct {
	m      *Model
	layers []decoderLayer
	embed  string
	norm   string
	head   string // lm_head, or the embedding when tied

	h, kv, inter, n int // hidden, kv width, intermediate, max tokens
	qw              int // query width: heads * head_dim

	// Per-layer activations kept for the backward (shapes for n tokens).
	x          []kernels.T // (n, h) residual stream entering layer l; x[L] leaves the last layer
	ln1, ln2   []kernels.T // (n, h)
	rstd1      []kernels.T // (n)
	rstd2      []kernels.T
	q          []kernels.T // (n, qw), after RoPE
	k, v       []kernels.T // (n, kv), k after RoPE
	att        []kernels.T // (n, qw) attention output before o_proj
	lse        []kernels.T // (n, heads)
	mid        []kernels.T // (n, h) residual after attention
	gate, up   []kernels.T // (n, inter)
	act        []kernels.T // (n, inter)
	normOut    kernels.T   // (n, h)
	rstdF      kernels.T
	tmp        kernels.T // (n, h)
	ids        kernels.I // (n)
	pos        kernels.I // (n)
	sel        kernels.I // (n) positions with a target
	tgt        kernels.I // (n)
	hsel       kernels.T // (n, h) gathered rows with targets
	logp, ent  kernels.T // (n)
	lseOut     kernels.T // (n)
	logits     kernels.T // (chunk, vocab) scratch
	audioIdx   kernels.I // (n) positions of <|AUDIO|> tokens
	audioRows  kernels.T // (n, h) audio embeddings in placeholder order
	dAudioRows kernels.T // (n, h)

	// Gradient scratch, reused layer by layer.
	dres, dmid, dln kernels.T // (n, h)
	datt, dq        kernels.T // (n, qw)
	dk, dv          kernels.T // (n, kv)
	dact, dg, du    kernels.T // (n, inter)
	dhsel           kernels.T // (n, h)
	dlogp, dent     kernels.T // (n)

	// State of the last forward, for the backward.
	last struct {
		n, nsel   int
		seqs      kernels.Seqs
		temp      float32
		nAudioTok int
	}
}

func newDecoder(m *Model) *decoder {
	c, dev := m.Cfg, m.Dev
	t := c.Text
	d := &decoder{m: m, h: t.HiddenSize, kv: t.NumKVHeads * c.HeadDim(), inter: t.IntermediateSize,
		n: m.Limits.MaxTokens, qw: t.NumHeads * c.HeadDim()}
	prefix := "language_model.model."
	d.head = "language_model.lm_head.weight"
	if c.Family == Qwen25Omni {
		prefix, d.head = c.Prefix+"model.", c.Prefix+"lm_head.weight"
	}
	d.embed, d.norm = prefix+"embed_tokens.weight", prefix+"norm.weight"
	if t.TieWordEmbeddings {
		d.head = d.embed
	}
	for l := 0; l < t.NumLayers; l++ {
		p := fmt.Sprintf("%slayers.%d.", prefix, l)
		d.layers = append(d.layers, decoderLayer{
			ln1: p + "input_layernorm.weight", ln2: p + "post_attention_layernorm.weight",
			q: p + "self_attn.q_proj.weight", qb: p + "self_attn.q_proj.bias",
			k: p + "self_attn.k_proj.weight", kb: p + "self_attn.k_proj.bias",
			v: p + "self_attn.v_proj.weight", vb: p + "self_attn.v_proj.bias",
			o:    p + "self_attn.o_proj.weight",
			gate: p + "mlp.gate_proj.weight", up: p + "mlp.up_proj.weight", down: p + "mlp.down_proj.weight",
		})
	}
	n, L := d.n, t.NumLayers
	alloc := func(count int) []kernels.T {
		out := make([]kernels.T, L)
		for i := range out {
			out[i] = dev.Alloc(count)
		}
		return out
	}
	d.x = make([]kernels.T, L+1)
	for i := range d.x {
		d.x[i] = dev.Alloc(n * d.h)
	}
	d.ln1, d.ln2 = alloc(n*d.h), alloc(n*d.h)
	d.rstd1, d.rstd2 = alloc(n), alloc(n)
	d.q, d.k, d.v = alloc(n*d.qw), alloc(n*d.kv), alloc(n*d.kv)
	d.att, d.lse, d.mid = alloc(n*d.qw), alloc(n*t.NumHeads), alloc(n*d.h)
	d.gate, d.up, d.act = alloc(n*d.inter), alloc(n*d.inter), alloc(n*d.inter)
	d.normOut, d.rstdF, d.tmp = dev.Alloc(n*d.h), dev.Alloc(n), dev.Alloc(n*d.h)
	d.ids, d.pos, d.sel, d.tgt, d.audioIdx = dev.AllocInt(n), dev.AllocInt(n), dev.AllocInt(n), dev.AllocInt(n), dev.AllocInt(n)
	d.hsel, d.logp, d.ent, d.lseOut = dev.Alloc(n*d.h), dev.Alloc(n), dev.Alloc(n), dev.Alloc(n)
	d.logits = dev.Alloc(m.Limits.LogProbChunk * t.VocabSize)
	d.audioRows, d.dAudioRows = dev.Alloc(n*d.h), dev.Alloc(n*d.h)
	d.dres, d.dmid, d.dln = dev.Alloc(n*d.h), dev.Alloc(n*d.h), dev.Alloc(n*d.h)
	d.datt, d.dq, d.dk, d.dv = dev.Alloc(n*d.qw), dev.Alloc(n*d.qw), dev.Alloc(n*d.kv), dev.Alloc(n*d.kv)
	d.dact, d.dg, d.du = dev.Alloc(n*d.inter), dev.Alloc(n*d.inter), dev.Alloc(n*d.inter)
	d.dhsel, d.dlogp, d.dent = dev.Alloc(n*d.h), dev.Alloc(n), dev.Alloc(n)
	return d
}

func (d *decoder) attn() kernels.Attn {
	c := d.m.Cfg
	return kernels.Attn{Heads: c.Text.NumHeads, KVHeads: c.Text.NumKVHeads, HeadDim: c.HeadDim(), Causal: true,
		Scale: float32(1 / math.Sqrt(float64(c.HeadDim())))}
}

// embedInputs writes the input embeddings of n tokens into x[0], with the
// rows of audio placeholders replaced by audioRows (in order).
func (d *decoder) embedInputs(n, nAudio int) {
	dev, p := d.m.Dev, d.m.P
	dev.EmbeddingForward(d.x[0].View(0, n*d.h), p.Get(d.embed), d.ids.View(0, n), n, d.h)
	if nAudio > 0 {
		dev.ScatterRows(d.x[0].View(0, n*d.h), d.audioRows.View(0, nAudio*d.h), d.audioIdx.View(0, nAudio), nAudio, d.h)
	}
}

// layerForward runs layer l on n tokens: x[l] -> x[l+1].
func (d *decoder) layerForward(l, n int, seqs kernels.Seqs) {
	dev, p, c := d.m.Dev, d.m.P, d.m.Cfg
	w := d.layers[l]
	h, qw, kv, inter := d.h, d.qw, d.kv, d.inter
	x, ln1, ln2 := d.x[l].View(0, n*h), d.ln1[l].View(0, n*h), d.ln2[l].View(0, n*h)
	q, k, v := d.q[l].View(0, n*qw), d.k[l].View(0, n*kv), d.v[l].View(0, n*kv)
	att, mid := d.att[l].View(0, n*qw), d.mid[l].View(0, n*h)
	eps := float32(c.Text.RMSNormEps)

	dev.RMSNormForward(ln1, d.rstd1[l].View(0, n), x, p.Get(w.ln1), n, h, eps)
	d.m.linear(q, ln1, w.q, w.qb, n, h, qw)
	d.m.linear(k, ln1, w.k, w.kb, n, h, kv)
	d.m.linear(v, ln1, w.v, w.vb, n, h, kv)
	theta := float32(c.Text.RopeTheta)
	dev.RoPEForward(q, d.pos.View(0, n), n, c.Text.NumHeads, c.HeadDim(), theta)
	dev.RoPEForward(k, d.pos.View(0, n), n, c.Text.NumKVHeads, c.HeadDim(), theta)
	dev.AttentionForward(att, d.lse[l].View(0, n*c.Text.NumHeads), q, k, v, seqs, d.attn())
	tmp := d.tmp.View(0, n*h)
	d.m.linear(tmp, att, w.o, "", n, qw, h)
	dev.Add(mid, x, tmp)

	dev.RMSNormForward(ln2, d.rstd2[l].View(0, n), mid, p.Get(w.ln2), n, h, eps)
	gate, up, act := d.gate[l].View(0, n*inter), d.up[l].View(0, n*inter), d.act[l].View(0, n*inter)
	d.m.linear(gate, ln2, w.gate, "", n, h, inter)
	d.m.linear(up, ln2, w.up, "", n, h, inter)
	dev.SwiGLUForward(act, gate, up, n, inter)
	d.m.linear(tmp, act, w.down, "", n, inter, h)
	dev.Add(d.x[l+1].View(0, n*h), mid, tmp)
}

// layerBackward takes dres = dL/dx[l+1] and leaves dL/dx[l] in dres,
// accumulating weight gradients.
func (d *decoder) layerBackward(l, n int, seqs kernels.Seqs) {
	dev, p, c := d.m.Dev, d.m.P, d.m.Cfg
	w := d.layers[l]
	h, qw, kv, inter := d.h, d.qw, d.kv, d.inter
	x, ln1, ln2 := d.x[l].View(0, n*h), d.ln1[l].View(0, n*h), d.ln2[l].View(0, n*h)
	q, k, v := d.q[l].View(0, n*qw), d.k[l].View(0, n*kv), d.v[l].View(0, n*kv)
	att, mid := d.att[l].View(0, n*qw), d.mid[l].View(0, n*h)
	gate, up, act := d.gate[l].View(0, n*inter), d.up[l].View(0, n*inter), d.act[l].View(0, n*inter)
	dres, dmid, dln := d.dres.View(0, n*h), d.dmid.View(0, n*h), d.dln.View(0, n*h)

	// MLP: x[l+1] = mid + down(swiglu(gate(ln2), up(ln2))).
	dact, dg, du := d.dact.View(0, n*inter), d.dg.View(0, n*inter), d.du.View(0, n*inter)
	dev.Zero(dact)
	d.m.linearBackward(dact, dres, act, w.down, "", n, inter, h)
	dev.Zero(dg)
	dev.Zero(du)
	dev.SwiGLUBackward(dg, du, dact, gate, up, n, inter)
	dev.Zero(dln)
	d.m.linearBackward(dln, dg, ln2, w.gate, "", n, h, inter)
	d.m.linearBackward(dln, du, ln2, w.up, "", n, h, inter)
	dev.Copy(dmid, dres)
	dev.RMSNormBackward(dmid, p.GradOf(w.ln2), dln, mid, p.Get(w.ln2), d.rstd2[l].View(0, n), n, h)

	// Attention: mid = x + o(attention(rope(q(ln1)), rope(k(ln1)), v(ln1))).
	datt := d.datt.View(0, n*qw)
	dev.Zero(datt)
	d.m.linearBackward(datt, dmid, att, w.o, "", n, qw, h)
	dq, dk, dv := d.dq.View(0, n*qw), d.dk.View(0, n*kv), d.dv.View(0, n*kv)
	dev.Zero(dq)
	dev.Zero(dk)
	dev.Zero(dv)
	dev.AttentionBackward(dq, dk, dv, datt, att, d.lse[l].View(0, n*c.Text.NumHeads), q, k, v, seqs, d.attn())
	theta := float32(c.Text.RopeTheta)
	dev.RoPEBackward(dq, d.pos.View(0, n), n, c.Text.NumHeads, c.HeadDim(), theta)
	dev.RoPEBackward(dk, d.pos.View(0, n), n, c.Text.NumKVHeads, c.HeadDim(), theta)
	dev.Zero(dln)
	d.m.linearBackward(dln, dq, ln1, w.q, w.qb, n, h, qw)
	d.m.linearBackward(dln, dk, ln1, w.k, w.kb, n, h, kv)
	d.m.linearBackward(dln, dv, ln1, w.v, w.vb, n, h, kv)
	dev.Copy(dres, dmid)
	dev.RMSNormBackward(dres, p.GradOf(w.ln1), dln, x, p.Get(w.ln1), d.rstd1[l].View(0, n), n, h)
}

// forward runs the decoder over the batch (audio rows already in
// audioRows) and computes log-probs and entropies of the targets.
func (d *decoder) forward(b *Batch, nAudioTok int) *Output {
	dev, p, c := d.m.Dev, d.m.P, d.m.Cfg
	n := len(b.Tokens)
	dev.UploadInt(d.ids.View(0, n), b.Tokens)
	dev.UploadInt(d.pos.View(0, n), positions(b.Seqs))
	d.embedInputs(n, nAudioTok)
	for l := range d.layers {
		d.layerForward(l, n, b.Seqs)
	}
	h := d.h
	dev.RMSNormForward(d.normOut.View(0, n*h), d.rstdF.View(0, n), d.x[len(d.layers)].View(0, n*h), p.Get(d.norm), n, h, float32(c.Text.RMSNormEps))

	out := &Output{}
	var tg []int32
	for i, t := range b.Targets {
		if t >= 0 {
			out.Positions = append(out.Positions, int32(i))
			tg = append(tg, t)
		}
	}
	ns := len(out.Positions)
	d.last.n, d.last.nsel, d.last.seqs, d.last.temp, d.last.nAudioTok = n, ns, b.Seqs, temperature(b.Temperature), nAudioTok
	if ns == 0 {
		return out
	}
	dev.UploadInt(d.sel.View(0, ns), out.Positions)
	dev.UploadInt(d.tgt.View(0, ns), tg)
	dev.GatherRows(d.hsel.View(0, ns*h), d.normOut.View(0, n*h), d.sel.View(0, ns), ns, h)
	dev.TokenLogProbs(d.logp.View(0, ns), d.ent.View(0, ns), d.lseOut.View(0, ns), d.logits, d.hsel.View(0, ns*h),
		p.Get(d.head), d.tgt.View(0, ns), ns, h, c.Text.VocabSize, d.m.Limits.LogProbChunk, d.last.temp)
	out.LogProbs, out.Entropy = make([]float32, ns), make([]float32, ns)
	dev.Download(out.LogProbs, d.logp.View(0, ns))
	dev.Download(out.Entropy, d.ent.View(0, ns))
	return out
}

// backward accumulates gradients of sum(dlogp * logp + dent * entropy)
// over the last forward's targets; it leaves the gradient of the audio
// rows in dAudioRows for the encoder.
func (d *decoder) backward(dlogp, dent []float32) {
	dev, p, c := d.m.Dev, d.m.P, d.m.Cfg
	n, ns, h := d.last.n, d.last.nsel, d.h
	dres := d.dres.View(0, n*h)
	dev.Zero(dres)
	if ns > 0 {
		dl, de := kernels.T{}, kernels.T{}
		if dlogp != nil {
			dl = d.dlogp.View(0, ns)
			dev.Upload(dl, dlogp)
		}
		if dent != nil {
			de = d.dent.View(0, ns)
			dev.Upload(de, dent)
		}
		dhsel := d.dhsel.View(0, ns*h)
		dev.Zero(dhsel)
		dev.TokenLogProbsBackward(dhsel, p.GradOf(d.head), d.logits, dl, de, d.hsel.View(0, ns*h), p.Get(d.head),
			d.lseOut.View(0, ns), d.tgt.View(0, ns), ns, h, c.Text.VocabSize, d.m.Limits.LogProbChunk, d.last.temp)
		// Targets sit at distinct positions, so scattering into zeros sums.
		dnorm := d.dln.View(0, n*h)
		dev.Zero(dnorm)
		dev.ScatterRows(dnorm, dhsel, d.sel.View(0, ns), ns, h)
		dev.RMSNormBackward(dres, p.GradOf(d.norm), dnorm, d.x[len(d.layers)].View(0, n*h), p.Get(d.norm), d.rstdF.View(0, n), n, h)
	}
	for l := len(d.layers) - 1; l >= 0; l-- {
		d.layerBackward(l, n, d.last.seqs)
	}
	// dres is now dL/d(input embeddings).
	if na := d.last.nAudioTok; na > 0 {
		dev.GatherRows(d.dAudioRows.View(0, na*h), dres, d.audioIdx.View(0, na), na, h)
		// The audio rows did not come from the embedding table.
		zero := d.tmp.View(0, na*h)
		dev.Zero(zero)
		dev.ScatterRows(dres, zero, d.audioIdx.View(0, na), na, h)
	}
	if g := p.GradOf(d.embed); g.N > 0 {
		dev.EmbeddingBackward(g, dres, d.ids.View(0, n), n, h)
	}
}
