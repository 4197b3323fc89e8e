package model

import (
	"fmt"
	"math"

	"earl/kernels"
)

// encoderLayer holds one Whisper-style layer's weight names.
type encoderLayer struct {
	ln1, ln1b, q, qb, k, v, vb, o, ob, ln2, ln2b, fc1, fc1b, fc2, fc2b string
}

// convCall is one batched run of the two convolutions: b clips or chunks
// of tin frames each, placed at the given offsets of the conv buffers.
type convCall struct {
	b, tin, tout int // tout = (tin-1)/2 + 1 after the stride-2 conv
	keep         int // rows kept per item after conv2
	xOff         int // offset in mel (b * mels * tin values)
	c1Off, c2Off int // offsets in pre1/a1 (b*d*tin) and pre2/a2 (b*d*tout)
	rowOff       []int
	posStart     int // Omni: sinusoid rows restart per chunk; Qwen2-Audio: 0
}

// encoder runs either family's audio encoder over several clips at once:
// their rows are packed into one (R, d) tensor, each clip (Qwen2-Audio) or
// each 200-frame chunk (Omni) being its own attention sequence.
type encoder struct {
	m       *Model
	layers  []encoderLayer
	prefix  string
	d, ffn  int
	rows    int // Limits.MaxAudioRows
	frames  int // conv1 frame budget
	outDim  int
	omni    bool
	train   bool
	posName string

	// Conv stage.
	mel, pre1, a1, pre2, a2, col kernels.T
	dmel, da1, da2               kernels.T
	// Transformer stage: x[l] enters layer l; caches per layer when the
	// tower trains, one shared set otherwise.
	x                  []kernels.T
	ln1, ln2           []kernels.T
	mean1, rstd1       []kernels.T
	mean2, rstd2       []kernels.T
	q, k, v, att, lse  []kernels.T
	mid, f1pre, f1     []kernels.T
	tmp, tmpT          kernels.T
	pooled, pooledT    kernels.T // (P, d) rows after avg-pool; transposed scratch
	lnOut, meanO, rstO kernels.T
	pos                kernels.T // Omni sinusoids (100, d)

	// Gradient scratch.
	dx, dmid, dln, datt, dq, dk, dv, df1, df1pre kernels.T
	dpooled, dlnOut, dpooledT                    kernels.T

	last struct {
		calls     []convCall
		seqs      kernels.Seqs
		r         int
		clipRows  [][2]int // row range of each clip in the packed tensor
		clipOut   []int    // output tokens per clip
		totalOut  int
		pooledOff []int
	}
}

func newEncoder(m *Model) *encoder {
	c, dev := m.Cfg, m.Dev
	a := c.Audio
	e := &encoder{m: m, d: a.DModel, ffn: a.FFNDim, rows: m.Limits.MaxAudioRows, omni: c.Family == Qwen25Omni}
	if e.rows <= 0 {
		e.rows = m.Limits.MaxAudio * 1500
	}
	e.prefix = "audio_tower."
	e.outDim = c.Text.HiddenSize
	if e.omni {
		e.prefix = c.Prefix + "audio_tower."
		e.outDim = a.OutputDim
	}
	e.posName = e.prefix + "embed_positions.weight"
	for l := 0; l < a.Layers; l++ {
		p := fmt.Sprintf("%slayers.%d.", e.prefix, l)
		e.layers = append(e.layers, encoderLayer{
			ln1: p + "self_attn_layer_norm.weight", ln1b: p + "self_attn_layer_norm.bias",
			q: p + "self_attn.q_proj.weight", qb: p + "self_attn.q_proj.bias", k: p + "self_attn.k_proj.weight",
			v: p + "self_attn.v_proj.weight", vb: p + "self_attn.v_proj.bias",
			o: p + "self_attn.out_proj.weight", ob: p + "self_attn.out_proj.bias",
			ln2: p + "final_layer_norm.weight", ln2b: p + "final_layer_norm.bias",
			fc1: p + "fc1.weight", fc1b: p + "fc1.bias", fc2: p + "fc2.weight", fc2b: p + "fc2.bias",
		})
	}
	e.train = m.P.Trains(e.prefix + "conv1.weight")
	d, r := e.d, e.rows
	// Conv1 sees at most 2 frames per output row plus one per clip/chunk.
	e.frames = 2*r + 2*(m.Limits.MaxAudio+r/100+1)
	mels := a.NumMelBins
	e.mel = dev.Alloc(mels * e.frames)
	e.pre1, e.a1 = dev.Alloc(d*e.frames), dev.Alloc(d*e.frames)
	e.pre2, e.a2 = dev.Alloc(d*(r+e.frames/2+1)), dev.Alloc(d*(r+e.frames/2+1))
	maxTin := e.frames
	if !e.omni {
		maxTin = min(maxTin, 3000)
	} else {
		maxTin = min(maxTin, 2*a.NWindow)
	}
	e.col = dev.Alloc(max(mels, d) * 3 * maxTin)
	nl := 1
	if e.train {
		nl = a.Layers
		e.da1, e.da2 = dev.Alloc(d*e.frames), dev.Alloc(d*(r+e.frames/2+1))
	}
	alloc := func(count int) []kernels.T {
		out := make([]kernels.T, nl)
		for i := range out {
			out[i] = dev.Alloc(count)
		}
		return out
	}
	e.x = make([]kernels.T, a.Layers+1)
	for i := range e.x {
		if e.train || i == 0 || i == a.Layers {
			e.x[i] = dev.Alloc(r * d)
		} else {
			e.x[i] = e.x[a.Layers] // frozen: layers reuse two buffers
		}
	}
	if !e.train && a.Layers > 1 {
		spare := dev.Alloc(r * d)
		for i := 1; i < a.Layers; i++ {
			if i%2 == 1 {
				e.x[i] = spare
			} else {
				e.x[i] = e.x[0]
			}
		}
	}
	e.ln1, e.ln2 = alloc(r*d), alloc(r*d)
	e.mean1, e.rstd1, e.mean2, e.rstd2 = alloc(r), alloc(r), alloc(r), alloc(r)
	e.q, e.k, e.v, e.att = alloc(r*d), alloc(r*d), alloc(r*d), alloc(r*d)
	e.lse, e.mid = alloc(r*a.Heads), alloc(r*d)
	e.f1pre, e.f1 = alloc(r*e.ffn), alloc(r*e.ffn)
	e.tmp, e.tmpT = dev.Alloc((r+2)*max(d, e.ffn)), dev.Alloc((r+2)*d)
	e.pooled, e.pooledT = dev.Alloc(r*d/2+d), dev.Alloc(r*d/2+d)
	e.lnOut, e.meanO, e.rstO = dev.Alloc(r*d/2+d), dev.Alloc(r/2+1), dev.Alloc(r/2+1)
	if e.omni {
		e.pos = dev.Alloc(a.NWindow * d)
		dev.Upload(e.pos, sinusoids(a.NWindow, d))
	}
	if e.train {
		e.dx, e.dmid, e.dln, e.datt = dev.Alloc(r*d), dev.Alloc(r*d), dev.Alloc(r*d), dev.Alloc(r*d)
		e.dq, e.dk, e.dv = dev.Alloc(r*d), dev.Alloc(r*d), dev.Alloc(r*d)
		e.df1, e.df1pre = dev.Alloc(r*e.ffn), dev.Alloc(r*e.ffn)
		e.dpooled, e.dlnOut, e.dpooledT = dev.Alloc(r*d/2+d), dev.Alloc(r*d/2+d), dev.Alloc(r*d/2+d)
	}
	return e
}

func (e *encoder) li(l int) int {
	if e.train {
		return l
	}
	return 0
}

func (e *encoder) attn() kernels.Attn {
	a := e.m.Cfg.Audio
	hd := a.DModel / a.Heads
	return kernels.Attn{Heads: a.Heads, KVHeads: a.Heads, HeadDim: hd, Scale: float32(1 / math.Sqrt(float64(hd)))}
}

// plan lays out the conv calls and packed rows for the clips and uploads
// their mel frames. It returns the encoder output tokens per clip.
func (e *encoder) plan(clips []Clip) ([]int, error) {
	dev, a := e.m.Dev, e.m.Cfg.Audio
	mels := a.NumMelBins
	calls := e.last.calls[:0]
	var offs []int32
	offs = append(offs, 0)
	rows, frames, c2 := 0, 0, 0
	var host []float32
	e.last.clipRows = e.last.clipRows[:0]
	e.last.clipOut = e.last.clipOut[:0]
	addCall := func(src []float32, stride, col0, tin, keep, posStart int) {
		// src is a mel-major (mels, stride) matrix; take columns [col0, col0+tin).
		cc := convCall{b: 1, tin: tin, tout: (tin-1)/2 + 1, keep: keep, xOff: frames * mels, c1Off: frames * e.d,
			c2Off: c2 * e.d, rowOff: []int{rows}, posStart: posStart}
		for m := 0; m < mels; m++ {
			host = append(host, src[m*stride+col0:m*stride+col0+tin]...)
		}
		calls = append(calls, cc)
		frames += tin
		c2 += cc.tout
		rows += keep
		offs = append(offs, int32(rows))
	}
	for k, cl := range clips {
		m := cl.Mel
		if m == nil || m.Mels != mels {
			return nil, fmt.Errorf("audio clip %d: features with %d mel bins, the model wants %d", k, mels, a.NumMelBins)
		}
		t := m.ValidFrames
		if t < 3 {
			return nil, fmt.Errorf("audio clip %d: %d valid frames, too short to encode (at least 3)", k, t)
		}
		start := rows
		if !e.omni {
			if m.TotalFrames != 3000 {
				return nil, fmt.Errorf("audio clip %d: Qwen2-Audio needs features padded to 3000 frames (family qwen2-audio shards), got %d", k, m.TotalFrames)
			}
			l := (t-1)/2 + 1
			// conv2 row j reads conv1 outputs up to 2j+1, which read mel
			// frames up to 2j+2: padding frames just past the valid ones
			// matter, later ones do not.
			f := min(3000, 2*l+1)
			addCall(m.Padded(), 3000, 0, f, l, 0)
		} else {
			valid := m.Valid()
			w := 2 * a.NWindow
			for c0 := 0; c0 < t; c0 += w {
				n := min(w, t-c0)
				addCall(valid, t, c0, n, (n-1)/2+1, 0)
			}
		}
		if rows > e.rows || frames*mels > e.mel.N {
			return nil, fmt.Errorf("audio of %d encoder rows exceeds the configured maximum %d (raise MaxAudioRows)", rows, e.rows)
		}
		e.last.clipRows = append(e.last.clipRows, [2]int{start, rows})
		e.last.clipOut = append(e.last.clipOut, (rows-start)/2)
	}
	dev.Upload(e.mel.View(0, len(host)), host)
	e.last.calls, e.last.r = calls, rows
	e.last.seqs = kernels.Seqs{Offsets: offs}
	// Qwen2-Audio makes one conv call per clip, Omni one per chunk: either
	// way each call's rows are one attention sequence (Omni's block-diagonal
	// attention).
	return e.last.clipOut, nil
}

// forward encodes the clips planned by plan and writes their embeddings,
// in order, to out (total tokens x outDim).
func (e *encoder) forward(out kernels.T) {
	dev, p, a := e.m.Dev, e.m.P, e.m.Cfg.Audio
	d, mels, r := e.d, a.NumMelBins, e.last.r
	x0 := e.x[0]
	for _, cc := range e.last.calls {
		tin, tout := cc.tin, cc.tout
		mel := e.mel.View(cc.xOff, mels*tin)
		pre1, a1 := e.pre1.View(cc.c1Off, d*tin), e.a1.View(cc.c1Off, d*tin)
		pre2, a2 := e.pre2.View(cc.c2Off, d*tout), e.a2.View(cc.c2Off, d*tout)
		dev.Conv1dForward(pre1, e.col, mel, p.Get(e.prefix+"conv1.weight"), p.Get(e.prefix+"conv1.bias"), 1, mels, d, tin, 1)
		dev.GELUForward(a1, pre1, d*tin)
		dev.Conv1dForward(pre2, e.col, a1, p.Get(e.prefix+"conv2.weight"), p.Get(e.prefix+"conv2.bias"), 1, d, d, tin, 2)
		dev.GELUForward(a2, pre2, d*tout)
		// (d, tout) -> rows (keep, d), then positions.
		tT := e.tmpT.View(0, tout*d)
		dev.Transpose(tT, a2, d, tout)
		rowsOut := x0.View(cc.rowOff[0]*d, cc.keep*d)
		var pos kernels.T
		if e.omni {
			pos = e.pos.View(0, cc.keep*d)
		} else {
			pos = p.Get(e.posName).View(0, cc.keep*d)
		}
		dev.Add(rowsOut, tT.View(0, cc.keep*d), pos)
	}
	for l := range e.layers {
		e.layerForward(l, r)
	}
	// Per clip: avg-pool pairs of rows, layer norm, projection.
	xl := e.x[len(e.layers)]
	norm, normB, proj, projB := e.outNames()
	e.last.pooledOff = e.last.pooledOff[:0]
	po := 0
	for k, cr := range e.last.clipRows {
		lk, pk := cr[1]-cr[0], e.last.clipOut[k]
		e.last.pooledOff = append(e.last.pooledOff, po)
		// Pool along time in (d, L) layout.
		tT := e.tmpT.View(0, d*lk)
		dev.Transpose(tT, xl.View(cr[0]*d, lk*d), lk, d)
		pT := e.pooledT.View(0, d*pk)
		dev.AvgPoolForward(pT, tT, 1, d, lk)
		dev.Transpose(e.pooled.View(po*d, pk*d), pT, d, pk)
		po += pk
	}
	e.last.totalOut = po
	dev.LayerNormForward(e.lnOut.View(0, po*d), e.meanO.View(0, po), e.rstO.View(0, po), e.pooled.View(0, po*d),
		p.Get(norm), p.Get(normB), po, d, 1e-5)
	dev.LinearForward(out.View(0, po*e.outDim), e.lnOut.View(0, po*d), p.Get(proj), p.Get(projB), po, d, e.outDim)
}

func (e *encoder) layerForward(l, r int) {
	dev, p := e.m.Dev, e.m.P
	w, i := e.layers[l], e.li(l)
	d, f := e.d, e.ffn
	x, ln1, ln2 := e.x[l].View(0, r*d), e.ln1[i].View(0, r*d), e.ln2[i].View(0, r*d)
	q, k, v, att := e.q[i].View(0, r*d), e.k[i].View(0, r*d), e.v[i].View(0, r*d), e.att[i].View(0, r*d)
	mid := e.mid[i].View(0, r*d)
	dev.LayerNormForward(ln1, e.mean1[i].View(0, r), e.rstd1[i].View(0, r), x, p.Get(w.ln1), p.Get(w.ln1b), r, d, 1e-5)
	dev.LinearForward(q, ln1, p.Get(w.q), p.Get(w.qb), r, d, d)
	dev.LinearForward(k, ln1, p.Get(w.k), kernels.T{}, r, d, d)
	dev.LinearForward(v, ln1, p.Get(w.v), p.Get(w.vb), r, d, d)
	dev.AttentionForward(att, e.lse[i].View(0, r*e.m.Cfg.Audio.Heads), q, k, v, e.last.seqs, e.attn())
	tmp := e.tmp.View(0, r*d)
	dev.LinearForward(tmp, att, p.Get(w.o), p.Get(w.ob), r, d, d)
	dev.Add(mid, x, tmp)
	dev.LayerNormForward(ln2, e.mean2[i].View(0, r), e.rstd2[i].View(0, r), mid, p.Get(w.ln2), p.Get(w.ln2b), r, d, 1e-5)
	f1pre, f1 := e.f1pre[i].View(0, r*f), e.f1[i].View(0, r*f)
	dev.LinearForward(f1pre, ln2, p.Get(w.fc1), p.Get(w.fc1b), r, d, f)
	dev.GELUForward(f1, f1pre, r*f)
	dev.LinearForward(tmp, f1, p.Get(w.fc2), p.Get(w.fc2b), r, f, d)
	dev.Add(e.x[l+1].View(0, r*d), mid, tmp)
}

// names of the output norm and projection.
func (e *encoder) outNames() (norm, normB, proj, projB string) {
	if e.omni {
		return e.prefix + "ln_post.weight", e.prefix + "ln_post.bias", e.prefix + "proj.weight", e.prefix + "proj.bias"
	}
	return e.prefix + "layer_norm.weight", e.prefix + "layer_norm.bias", "multi_modal_projector.linear.weight", "multi_modal_projector.linear.bias"
}

// backward accumulates the encoder's weight gradients from dOut, the
// gradient of the embeddings forward wrote. The tower must be trainable.
func (e *encoder) backward(dOut kernels.T) {
	dev, p, a := e.m.Dev, e.m.P, e.m.Cfg.Audio
	d, mels, r, po := e.d, a.NumMelBins, e.last.r, e.last.totalOut
	norm, normB, proj, projB := e.outNames()
	dln := e.dlnOut.View(0, po*d)
	dev.Zero(dln)
	dev.LinearBackward(dln, p.GradOf(proj), p.GradOf(projB), dOut.View(0, po*e.outDim), e.lnOut.View(0, po*d), p.Get(proj), po, d, e.outDim)
	dpooled := e.dpooled.View(0, po*d)
	dev.Zero(dpooled)
	dev.LayerNormBackward(dpooled, p.GradOf(norm), p.GradOf(normB), dln, e.pooled.View(0, po*d), p.Get(norm),
		e.meanO.View(0, po), e.rstO.View(0, po), po, d)
	// Un-pool into the gradient of the last layer's output.
	dres := e.dx.View(0, r*d)
	dev.Zero(dres)
	for k, cr := range e.last.clipRows {
		lk, pk, off := cr[1]-cr[0], e.last.clipOut[k], e.last.pooledOff[k]
		dpT := e.dpooledT.View(0, d*pk)
		dev.Transpose(dpT, dpooled.View(off*d, pk*d), pk, d)
		dT := e.tmpT.View(0, d*lk)
		dev.Zero(dT)
		dev.AvgPoolBackward(dT, dpT, 1, d, lk)
		dev.Transpose(dres.View(cr[0]*d, lk*d), dT, d, lk)
	}
	for l := len(e.layers) - 1; l >= 0; l-- {
		e.layerBackward(l, r)
	}
	// dres is dL/dx[0]: the conv output rows plus positions.
	for _, cc := range e.last.calls {
		rows := dres.View(cc.rowOff[0]*d, cc.keep*d)
		if !e.omni {
			if g := p.GradOf(e.posName); g.N > 0 {
				dev.Axpy(g.View(0, cc.keep*d), 1, rows)
			}
		}
		tin, tout := cc.tin, cc.tout
		// Rows (keep, d) -> (d, tout), columns past keep zero.
		tT := e.tmpT.View(0, tout*d)
		dev.Zero(tT)
		dev.Copy(tT.View(0, cc.keep*d), rows)
		da2 := e.da2.View(0, d*tout)
		dev.Transpose(da2, tT, tout, d)
		dpre2 := e.tmp.View(0, d*tout)
		dev.Zero(dpre2)
		dev.GELUBackward(dpre2, da2, e.pre2.View(cc.c2Off, d*tout), d*tout)
		da1 := e.da1.View(0, d*tin)
		dev.Zero(da1)
		dev.Conv1dBackward(da1, p.GradOf(e.prefix+"conv2.weight"), p.GradOf(e.prefix+"conv2.bias"), e.col, dpre2,
			e.a1.View(cc.c1Off, d*tin), p.Get(e.prefix+"conv2.weight"), 1, d, d, tin, 2)
		dpre1 := e.pre1Grad(d * tin)
		dev.Zero(dpre1)
		dev.GELUBackward(dpre1, da1, e.pre1.View(cc.c1Off, d*tin), d*tin)
		dev.Conv1dBackward(kernels.T{}, p.GradOf(e.prefix+"conv1.weight"), p.GradOf(e.prefix+"conv1.bias"), e.col, dpre1,
			e.mel.View(cc.xOff, mels*tin), p.Get(e.prefix+"conv1.weight"), 1, mels, d, tin, 1)
	}
}

// pre1Grad is scratch for conv1's pre-activation gradient.
func (e *encoder) pre1Grad(n int) kernels.T {
	if e.dmel.N < n {
		e.dmel = e.m.Dev.Alloc(e.d * e.frames)
	}
	return e.dmel.View(0, n)
}

func (e *encoder) layerBackward(l, r int) {
	dev, p := e.m.Dev, e.m.P
	w, i := e.layers[l], e.li(l)
	d, f := e.d, e.ffn
	x, ln1, ln2 := e.x[l].View(0, r*d), e.ln1[i].View(0, r*d), e.ln2[i].View(0, r*d)
	q, k, v, att := e.q[i].View(0, r*d), e.k[i].View(0, r*d), e.v[i].View(0, r*d), e.att[i].View(0, r*d)
	mid, f1pre, f1 := e.mid[i].View(0, r*d), e.f1pre[i].View(0, r*f), e.f1[i].View(0, r*f)
	dres, dmid, dln := e.dx.View(0, r*d), e.dmid.View(0, r*d), e.dln.View(0, r*d)

	df1, df1pre := e.df1.View(0, r*f), e.df1pre.View(0, r*f)
	dev.Zero(df1)
	dev.LinearBackward(df1, p.GradOf(w.fc2), p.GradOf(w.fc2b), dres, f1, p.Get(w.fc2), r, f, d)
	dev.Zero(df1pre)
	dev.GELUBackward(df1pre, df1, f1pre, r*f)
	dev.Zero(dln)
	dev.LinearBackward(dln, p.GradOf(w.fc1), p.GradOf(w.fc1b), df1pre, ln2, p.Get(w.fc1), r, d, f)
	dev.Copy(dmid, dres)
	dev.LayerNormBackward(dmid, p.GradOf(w.ln2), p.GradOf(w.ln2b), dln, mid, p.Get(w.ln2), e.mean2[i].View(0, r), e.rstd2[i].View(0, r), r, d)

	datt := e.datt.View(0, r*d)
	dev.Zero(datt)
	dev.LinearBackward(datt, p.GradOf(w.o), p.GradOf(w.ob), dmid, att, p.Get(w.o), r, d, d)
	dq, dk, dv := e.dq.View(0, r*d), e.dk.View(0, r*d), e.dv.View(0, r*d)
	dev.Zero(dq)
	dev.Zero(dk)
	dev.Zero(dv)
	dev.AttentionBackward(dq, dk, dv, datt, att, e.lse[i].View(0, r*e.m.Cfg.Audio.Heads), q, k, v, e.last.seqs, e.attn())
	dev.Zero(dln)
	dev.LinearBackward(dln, p.GradOf(w.q), p.GradOf(w.qb), dq, ln1, p.Get(w.q), r, d, d)
	dev.LinearBackward(dln, p.GradOf(w.k), kernels.T{}, dk, ln1, p.Get(w.k), r, d, d)
	dev.LinearBackward(dln, p.GradOf(w.v), p.GradOf(w.vb), dv, ln1, p.Get(w.v), r, d, d)
	dev.Copy(dres, dmid)
	dev.LayerNormBackward(dres, p.GradOf(w.ln1), p.GradOf(w.ln1b), dln, x, p.Get(w.ln1), e.mean1[i].View(0, r), e.rstd1[i].View(0, r), r, d)
}
