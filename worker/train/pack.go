package train

import (
	"fmt"

	"earl/kernels"
	"earl/shards/audio"
	"earl/worker/model"
)

// Seq is one training sequence: a prompt (audio placeholders expanded) and
// the completion whose tokens are scored.
type Seq struct {
	Prompt []int32
	Clip   model.Clip
	Comp   []int32
}

// audioRows is the encoder rows a clip takes (model.Limits.MaxAudioRows).
func audioRows(c *model.Config, cl model.Clip) int {
	if cl.Mel == nil {
		return 0
	}
	t := cl.Mel.ValidFrames
	if c.Family != model.Qwen25Omni {
		return (t-1)/2 + 1
	}
	rows, w := 0, 2*c.Audio.NWindow
	for c0 := 0; c0 < t; c0 += w {
		rows += (min(w, t-c0)-1)/2 + 1
	}
	return rows
}

// micro is a packed forward call over seqs[lo:hi].
type micro struct{ lo, hi int }

// packSeqs splits seqs, in order, into the fewest consecutive micro-batches
// that fit the model's limits. A clip that several sequences share (the G
// completions of a prompt) counts once: the model encodes it once.
func packSeqs(m *model.Model, seqs []Seq) ([]micro, error) {
	lim := m.Limits
	var out []micro
	lo, toks, nclip, rows := 0, 0, 0, 0
	clips := map[*audio.LogMel]bool{}
	for i, s := range seqs {
		n := len(s.Prompt) + len(s.Comp)
		r := audioRows(m.Cfg, s.Clip)
		if n > lim.MaxTokens || r > lim.MaxAudioRows {
			return nil, fmt.Errorf("a sequence of %d tokens and %d audio rows does not fit model.max_tokens %d / max_audio_rows %d: raise them", n, r, lim.MaxTokens, lim.MaxAudioRows)
		}
		a := 0
		if s.Clip.Mel == nil || clips[s.Clip.Mel] {
			r = 0
		} else {
			a = 1
		}
		if i > lo && (toks+n > lim.MaxTokens || i-lo+1 > lim.MaxSeqs || nclip+a > lim.MaxAudio || rows+r > lim.MaxAudioRows) {
			out = append(out, micro{lo, i})
			lo, toks, nclip, rows = i, 0, 0, 0
			clear(clips)
			if s.Clip.Mel != nil {
				a, r = 1, audioRows(m.Cfg, s.Clip)
			}
		}
		if s.Clip.Mel != nil {
			clips[s.Clip.Mel] = true
		}
		toks, nclip, rows = toks+n, nclip+a, rows+r
	}
	if lo < len(seqs) {
		out = append(out, micro{lo, len(seqs)})
	}
	return out, nil
}

// batchOf builds the forward batch of seqs: the targets are the completion
// tokens, predicted from the last prompt position onwards.
func batchOf(seqs []Seq, temperature float64) *model.Batch {
	b := &model.Batch{Seqs: kernels.Seqs{Offsets: []int32{0}}, Temperature: float32(temperature)}
	for _, s := range seqs {
		b.Tokens = append(b.Tokens, s.Prompt...)
		b.Tokens = append(b.Tokens, s.Comp...)
		for range len(s.Prompt) - 1 {
			b.Targets = append(b.Targets, -1)
		}
		b.Targets = append(b.Targets, s.Comp...)
		b.Targets = append(b.Targets, -1) // the last token predicts nothing
		b.Seqs.Offsets = append(b.Seqs.Offsets, int32(len(b.Tokens)))
		if s.Clip.Mel != nil {
			b.Audio = append(b.Audio, s.Clip)
		}
	}
	return b
}

// forEachMicro runs the model over seqs in micro-batches and calls fn with
// each micro-batch's range and, per sequence, the log-probabilities and
// entropies of its completion tokens. fn may call m.Backward, which then
// applies to that micro-batch.
func forEachMicro(m *model.Model, seqs []Seq, temperature float64, fn func(mb micro, logp, ent [][]float32) error) error {
	mbs, err := packSeqs(m, seqs)
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		out, err := m.Forward(batchOf(seqs[mb.lo:mb.hi], temperature))
		if err != nil {
			return err
		}
		logp := make([][]float32, mb.hi-mb.lo)
		ent := make([][]float32, mb.hi-mb.lo)
		k := 0
		for i := range logp {
			c := len(seqs[mb.lo+i].Comp)
			logp[i], ent[i] = out.LogProbs[k:k+c], out.Entropy[k:k+c]
			k += c
		}
		if k != len(out.LogProbs) {
			return fmt.Errorf("internal error: forward returned %d log-probs for %d completion tokens", len(out.LogProbs), k)
		}
		if err := fn(mb, logp, ent); err != nil {
			return err
		}
	}
	return nil
}

// logProbs returns the completion log-probabilities of seqs under m
// (no backward), in float64 for the loss.
func logProbs(m *model.Model, seqs []Seq, temperature float64) ([][]float64, error) {
	all := make([][]float64, len(seqs))
	err := forEachMicro(m, seqs, temperature, func(mb micro, logp, _ [][]float32) error {
		for i, lp := range logp {
			all[mb.lo+i] = f64(lp)
		}
		return nil
	})
	return all, err
}

func f64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
