package model

import (
	"fmt"
	"math"

	"earl/kernels"
	"earl/shards/audio"
)

// Limits size every activation and scratch buffer once (DESIGN.md rule 3):
// the most packed tokens, sequences and audio a Forward call may see.
type Limits struct {
	MaxTokens int // packed tokens per call (prompts + completions)
	MaxSeqs   int // sequences per call
	MaxAudio  int // audio clips per call
	// MaxAudioRows bounds the audio encoder's rows per call: the sum over
	// clips of (T-1)//2+1 for T valid mel frames (25 s of audio ~ 1250).
	MaxAudioRows int
	// LogProbChunk is how many rows TokenLogProbs turns into logits at
	// once (default 64): memory is chunk x vocab, not tokens x vocab.
	LogProbChunk int
}

// Model is a Qwen2-Audio or Qwen2.5-Omni thinker on a Device, with its
// weights in one flat buffer and activations sized by Limits.
type Model struct {
	Cfg    *Config
	Dev    kernels.Device
	P      *Params
	Limits Limits

	dec  *decoder
	enc  *encoder
	lora *LoRA

	// shared is the state of a forward pass whose clips repeat (the G
	// completions of one GRPO prompt): the encoder runs once per distinct
	// clip into rows, which are copied to every run of placeholders that
	// reads the clip; backward sums the runs' gradients into drows.
	shared struct {
		active      bool
		rows, drows kernels.T // (encoder output rows, hidden)
		of          []int     // run k reads distinct clip of[k]
		runOff      []int     // first audio row of run k, in placeholder order
		clipOff     []int     // first row of distinct clip j in rows
		counts      []int     // audio tokens of distinct clip j
		distinctOut int       // rows the encoder produced
	}
}

// New lays out a model on dev with zero weights (call P.Load or set them).
func New(dev kernels.Device, c *Config, fr Freeze, lim Limits) (*Model, error) {
	if lim.MaxTokens <= 0 || lim.MaxSeqs <= 0 {
		return nil, fmt.Errorf("model limits need positive MaxTokens and MaxSeqs, got %+v", lim)
	}
	if lim.LogProbChunk <= 0 {
		lim.LogProbChunk = 64
	}
	m := &Model{Cfg: c, Dev: dev, P: NewParams(dev, c, fr), Limits: lim}
	m.dec = newDecoder(m)
	if lim.MaxAudio > 0 {
		m.enc = newEncoder(m)
		n := (m.enc.rows/2 + 1) * m.enc.outDim
		m.shared.rows, m.shared.drows = dev.Alloc(n), dev.Alloc(n)
	}
	return m, nil
}

// Load opens a Hugging Face checkpoint directory and places it on dev.
func Load(dev kernels.Device, dir string, fr Freeze, lim Limits) (*Model, error) {
	ck, err := Open(dir)
	if err != nil {
		return nil, err
	}
	defer ck.Close()
	m, err := New(dev, ck.Config, fr, lim)
	if err != nil {
		return nil, err
	}
	if err := m.P.Load(ck); err != nil {
		return nil, err
	}
	return m, nil
}

// Clip is one audio input: its log-mel features as shards store them.
// Qwen2-Audio reads the padded matrix, Qwen2.5-Omni the valid frames.
type Clip struct {
	Mel *audio.LogMel
}

// Batch is one forward call: packed sequences of token ids (prompts with
// their audio placeholders already expanded, followed by completions).
type Batch struct {
	Tokens []int32
	Seqs   kernels.Seqs
	// Targets[i] is the token whose log-probability position i predicts
	// (the next token), or -1 where none is wanted (prompt positions).
	Targets []int32
	// Audio holds one clip per run of <|AUDIO|> placeholders, in order of
	// appearance across the batch.
	Audio []Clip
	// Temperature divides the logits before the softmax (1 when zero).
	Temperature float32
}

// Output holds the per-token results of Forward for the positions with a
// target, in position order.
type Output struct {
	Positions []int32   // packed positions that have a target
	LogProbs  []float32 // log p(target)
	Entropy   []float32 // entropy of the predictive distribution
}

func (b *Batch) check(c *Config, lim Limits) error {
	n := len(b.Tokens)
	switch {
	case n == 0:
		return fmt.Errorf("empty batch")
	case n > lim.MaxTokens:
		return fmt.Errorf("batch of %d tokens exceeds the configured maximum %d", n, lim.MaxTokens)
	case b.Seqs.Count() > lim.MaxSeqs:
		return fmt.Errorf("batch of %d sequences exceeds the configured maximum %d", b.Seqs.Count(), lim.MaxSeqs)
	case b.Seqs.Total() != n:
		return fmt.Errorf("sequence offsets cover %d tokens, batch has %d", b.Seqs.Total(), n)
	case len(b.Targets) != n:
		return fmt.Errorf("%d targets for %d tokens", len(b.Targets), n)
	}
	if n := distinctClips(b.Audio); n > lim.MaxAudio {
		return fmt.Errorf("%d audio clips exceed the configured maximum %d", n, lim.MaxAudio)
	}
	for i, t := range b.Tokens {
		if t < 0 || int(t) >= c.Text.VocabSize {
			return fmt.Errorf("token %d at position %d outside the vocabulary (%d)", t, i, c.Text.VocabSize)
		}
	}
	for i, t := range b.Targets {
		if t >= int32(c.Text.VocabSize) {
			return fmt.Errorf("target %d at position %d outside the vocabulary", t, i)
		}
	}
	return nil
}

// distinctClips counts the clips of a batch, one per distinct *LogMel.
func distinctClips(clips []Clip) int {
	n := 0
	for i, c := range clips {
		first := true
		for _, p := range clips[:i] {
			if c.Mel != nil && p.Mel == c.Mel {
				first = false
				break
			}
		}
		if first {
			n++
		}
	}
	return n
}

// positions returns each token's position within its sequence.
func positions(s kernels.Seqs) []int32 {
	pos := make([]int32, s.Total())
	for k := 0; k < s.Count(); k++ {
		for i := s.Offsets[k]; i < s.Offsets[k+1]; i++ {
			pos[i] = i - s.Offsets[k]
		}
	}
	return pos
}

// audioRuns finds the runs of <|AUDIO|> tokens: start and length of each.
func audioRuns(tokens []int32, audioID int32) (starts, lens []int) {
	for i := 0; i < len(tokens); {
		if tokens[i] != audioID {
			i++
			continue
		}
		j := i
		for j < len(tokens) && tokens[j] == audioID {
			j++
		}
		starts, lens = append(starts, i), append(lens, j-i)
		i = j
	}
	return starts, lens
}

func temperature(t float32) float32 {
	if t <= 0 || math.IsNaN(float64(t)) {
		return 1
	}
	return t
}

// ZeroGrad clears the gradient buffers (backward ops accumulate).
func (m *Model) ZeroGrad() {
	for _, tb := range m.Trainable() {
		m.Dev.Zero(tb.Grad)
	}
}

// TrainBuf is one flat range of trained values and its gradients.
type TrainBuf struct {
	Name        string
	Param, Grad kernels.T
}

// Trainable lists the flat ranges the optimizer updates: the trained
// prefix of the weight buffer and, with LoRA, the adapter buffer.
func (m *Model) Trainable() []TrainBuf {
	var out []TrainBuf
	if m.P.Trainable > 0 {
		out = append(out, TrainBuf{"weights", m.P.Buf.View(0, m.P.Trainable), m.P.Grad})
	}
	if m.lora != nil {
		out = append(out, TrainBuf{"lora", m.lora.Buf, m.lora.Grad})
	}
	return out
}

// prepareAudio encodes the batch's clips and checks that clip k's token
// count equals the length of the k-th run of <|AUDIO|> placeholders.
// Clips given more than once (the same *audio.LogMel) are encoded once.
func (m *Model) prepareAudio(tokens []int32, clips []Clip) (int, error) {
	m.shared.active = false
	starts, lens := audioRuns(tokens, int32(m.Cfg.AudioTokenID))
	if len(starts) != len(clips) {
		return 0, fmt.Errorf("the tokens hold %d runs of audio placeholders but %d audio clips were given", len(starts), len(clips))
	}
	if len(clips) == 0 {
		return 0, nil
	}
	if m.enc == nil {
		return 0, fmt.Errorf("audio given but the model was built with MaxAudio 0")
	}
	// The distinct clips, in order of first appearance.
	of := m.shared.of[:0]
	distinct := make([]Clip, 0, len(clips))
	seen := make(map[*audio.LogMel]int, len(clips))
	for _, c := range clips {
		j, ok := seen[c.Mel]
		if !ok || c.Mel == nil {
			j = len(distinct)
			distinct = append(distinct, c)
			seen[c.Mel] = j
		}
		of = append(of, j)
	}
	m.shared.of = of
	counts, err := m.enc.plan(distinct)
	if err != nil {
		return 0, err
	}
	var idx []int32
	for k := range clips {
		c := counts[of[k]]
		if c != lens[k] {
			return 0, fmt.Errorf("audio clip %d yields %d audio tokens but its placeholder run has %d (expand <|AUDIO|> with AudioTokens(valid frames))", k, c, lens[k])
		}
		for j := 0; j < c; j++ {
			idx = append(idx, int32(starts[k]+j))
		}
	}
	m.Dev.UploadInt(m.dec.audioIdx.View(0, len(idx)), idx)
	if len(distinct) == len(clips) {
		m.enc.forward(m.dec.audioRows)
		return len(idx), nil
	}
	sh := &m.shared
	sh.active, sh.counts = true, counts
	sh.clipOff, sh.runOff = sh.clipOff[:0], sh.runOff[:0]
	off := 0
	for _, c := range counts {
		sh.clipOff = append(sh.clipOff, off)
		off += c
	}
	sh.distinctOut = off
	m.enc.forward(sh.rows)
	h, run := m.enc.outDim, 0
	for k := range clips {
		c, j := counts[of[k]], sh.clipOff[of[k]]
		sh.runOff = append(sh.runOff, run)
		m.Dev.Copy(m.dec.audioRows.View(run*h, c*h), sh.rows.View(j*h, c*h))
		run += c
	}
	return len(idx), nil
}

// Forward runs the model over a batch and returns the log-probabilities
// and entropies at the positions that have targets. Backward may follow.
func (m *Model) Forward(b *Batch) (*Output, error) {
	if err := b.check(m.Cfg, m.Limits); err != nil {
		return nil, err
	}
	na, err := m.prepareAudio(b.Tokens, b.Audio)
	if err != nil {
		return nil, err
	}
	return m.dec.forward(b, na), nil
}

// Backward accumulates into the gradient buffer the gradients of
// sum_i dlogp[i]*logp[i] + dent[i]*entropy[i] over the last Forward's
// outputs (either slice may be nil). Frozen parts get no backward.
func (m *Model) Backward(dlogp, dent []float32) error {
	ns := m.dec.last.nsel
	if (dlogp != nil && len(dlogp) != ns) || (dent != nil && len(dent) != ns) {
		return fmt.Errorf("backward: %d and %d weights for %d outputs", len(dlogp), len(dent), ns)
	}
	if m.P.Trainable == 0 && m.lora == nil {
		return fmt.Errorf("backward: nothing in the model trains")
	}
	m.dec.backward(dlogp, dent)
	if na := m.dec.last.nAudioTok; na > 0 {
		dOut := m.dec.dAudioRows.View(0, na*m.Cfg.Text.HiddenSize)
		if sh := &m.shared; sh.active && (m.enc.train || m.Cfg.Family == Qwen2Audio && m.P.Trains("multi_modal_projector.linear.weight")) {
			// Each distinct clip's gradient is the sum over the runs
			// that read it.
			h := m.enc.outDim
			d := sh.drows.View(0, sh.distinctOut*h)
			m.Dev.Zero(d)
			for k, j := range sh.of {
				c := sh.counts[j]
				m.Dev.Axpy(d.View(sh.clipOff[j]*h, c*h), 1, dOut.View(sh.runOff[k]*h, c*h))
			}
			dOut = d
		}
		switch {
		case m.enc.train:
			m.enc.backward(dOut)
		case m.Cfg.Family == Qwen2Audio && m.P.Trains("multi_modal_projector.linear.weight"):
			e := m.enc
			po, d := e.last.totalOut, e.d
			_, _, proj, projB := e.outNames()
			m.Dev.LinearBackward(kernels.T{}, m.P.GradOf(proj), m.P.GradOf(projB), dOut, e.lnOut.View(0, po*d), m.P.Get(proj), po, d, e.outDim)
		}
	}
	return nil
}

// Logits runs the model over a batch and returns the logits of every
// position, (tokens, vocab) row-major. It materialises tokens x vocab, so
// it is for parity checks and tools, not training.
func (m *Model) Logits(b *Batch) ([]float32, error) {
	nb := *b
	nb.Targets = make([]int32, len(b.Tokens))
	for i := range nb.Targets {
		nb.Targets[i] = -1
	}
	if _, err := m.Forward(&nb); err != nil {
		return nil, err
	}
	n, h, v := len(b.Tokens), m.Cfg.Text.HiddenSize, m.Cfg.Text.VocabSize
	out := m.Dev.Alloc(n * v)
	defer m.Dev.Free(out)
	m.Dev.LinearForward(out, m.dec.normOut.View(0, n*h), m.P.Get(m.dec.head), kernels.T{}, n, h, v)
	host := make([]float32, n*v)
	m.Dev.Download(host, out)
	return host, nil
}

// Hidden returns the decoder's residual stream after layer l-1 of the last
// forward pass (l = 0: the input embeddings; l = layers: the last layer's
// output before the final norm), (tokens, hidden), for parity debugging.
func (m *Model) Hidden(l int) []float32 {
	n, h := m.dec.last.n, m.Cfg.Text.HiddenSize
	out := make([]float32, n*h)
	m.Dev.Download(out, m.dec.x[l].View(0, n*h))
	return out
}

// AudioEmbeddings returns the audio embeddings of the last forward pass
// (audio tokens, hidden), in placeholder order.
func (m *Model) AudioEmbeddings() []float32 {
	n, h := m.dec.last.nAudioTok, m.Cfg.Text.HiddenSize
	out := make([]float32, n*h)
	m.Dev.Download(out, m.dec.audioRows.View(0, n*h))
	return out
}
