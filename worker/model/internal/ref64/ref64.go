// Package ref64 is an independent float64 re-derivation of the Hugging Face
// forward pass of Qwen2-Audio (Qwen2AudioForConditionalGeneration) and the
// Qwen2.5-Omni thinker, written as plain loops from the published
// architecture (transformers' modeling_qwen2_audio.py, modeling_qwen2.py,
// modeling_qwen2_5_omni.py) and never from earl's own model code or
// kernels. It is a test oracle: clarity first, and fast enough for the
// `small` preset on a few hundred tokens.
//
// Decisions where the architecture leaves room, all following transformers:
//
//   - Everything is float64, including RoPE's inverse frequencies and
//     angles and Omni's sinusoidal audio positions, which transformers
//     computes in float32 (relative differences ~1e-7, below float32
//     parity tolerances).
//   - Positions are 0..len(ids)−1. For Qwen2.5-Omni with audio and text
//     input (no vision, no use_audio_in_video) get_rope_index gives the
//     three M-RoPE streams (temporal, height, width) the same sequential
//     positions, so every mrope_section slice reads the same angle and
//     M-RoPE is exactly plain 1-D RoPE.
//   - With tie_word_embeddings the logits use embed_tokens.weight, even if
//     the checkpoint also holds an lm_head.weight (transformers ties the
//     two parameters).
//   - Qwen2-Audio's scale_embedding is ignored, as transformers' encoder
//     forward ignores embed_scale. Omni's audio_bos_eos_token is unused.
//   - Encoder attention scales q by head_dim^−0.5 before q·k (Whisper's
//     order); decoder attention scales the scores q·k by head_dim^−0.5
//     (Qwen2's eager order). The two agree to rounding.
//   - Masked keys (Qwen2-Audio's padding mask, Omni's block-diagonal
//     chunks, the decoder's causal mask) are skipped, which is exactly
//     what an additive −inf (or float32-min) mask gives after softmax.
package ref64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"

	"earl/worker/ckpt"
	"earl/worker/model"
)

// encLayer is one Whisper-style (pre-LN) audio encoder layer.
type encLayer struct {
	Q, K, V, O linear // K has no bias
	LN1W, LN1B []float64
	FC1, FC2   linear
	LN2W, LN2B []float64
}

// decLayer is one Qwen2 decoder layer.
type decLayer struct {
	Q, K, V, O       linear // O has no bias
	InNorm, PostNorm []float64
	Gate, Up, Down   linear
}

// Model holds every weight the forward pass reads, as float64.
type Model struct {
	cfg model.Config

	// Decoder shape, copied from the config (tests change them together
	// with the weights).
	heads, kvHeads, headDim int

	// Audio tower.
	conv1, conv2 linear      // [d][cin·3], [d][d·3]
	embedPos     [][]float64 // Qwen2-Audio's learned positions [max_source_positions][d]
	enc          []encLayer
	// audioNormW/B is Qwen2-Audio's audio_tower.layer_norm or Omni's
	// ln_post; audioProj is multi_modal_projector.linear or Omni's proj.
	audioNormW, audioNormB []float64
	audioProj              linear

	// Decoder.
	embed     linear // embed_tokens.weight as [vocab][hidden], no bias
	dec       []decLayer
	finalNorm []float64
	lmHead    linear // lm_head.weight, or embed when tied
}

// Config returns a copy of the model's configuration.
func (m *Model) Config() model.Config { return m.cfg }

// loader reads named tensors, checking shapes, and collects every problem.
type loader struct {
	dir  *ckpt.Dir
	have map[string]ckpt.TensorInfo
	errs []string
}

func (l *loader) get(name string, shape ...int) []float64 {
	ti, ok := l.have[name]
	if !ok {
		l.errs = append(l.errs, fmt.Sprintf("missing %s %v", name, shape))
		return nil
	}
	if fmt.Sprint(ti.Shape) != fmt.Sprint(shape) {
		l.errs = append(l.errs, fmt.Sprintf("%s: shape %v, want %v", name, ti.Shape, shape))
		return nil
	}
	out := make([]float64, ti.NumElements())
	if ti.DType == ckpt.F64 {
		// Float32 would round float64 weights; decode them exactly.
		b, err := l.dir.Bytes(name)
		if err != nil {
			l.errs = append(l.errs, err.Error())
			return nil
		}
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		}
		return out
	}
	// BF16, F16 and F32 widen exactly to float32 and then to float64.
	f, err := l.dir.Float32(name, nil)
	if err != nil {
		l.errs = append(l.errs, err.Error())
		return nil
	}
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

func (l *loader) linear(name string, out, in int, bias bool) linear {
	li := linear{W: l.get(name+".weight", out, in), Out: out, In: in}
	if bias {
		li.B = l.get(name+".bias", out)
	}
	return li
}

// conv reads a Conv1d(cin, cout, 3) as a linear map over the flattened
// receptive field [cin·3].
func (l *loader) conv(name string, cout, cin int) linear {
	return linear{W: l.get(name+".weight", cout, cin, 3), B: l.get(name+".bias", cout), Out: cout, In: cin * 3}
}

// Load reads DIR/config.json and the safetensors weights of a Qwen2-Audio
// or Qwen2.5-Omni (thinker) model directory. Tensors of other parts
// (Omni's vision tower, talker, token2wav) are not read.
func Load(dir string) (*Model, error) {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	d, err := ckpt.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	l := &loader{dir: d, have: map[string]ckpt.TensorInfo{}}
	for _, ti := range d.Tensors() {
		l.have[ti.Name] = ti
	}

	t, a := cfg.Text, cfg.Audio
	m := &Model{cfg: *cfg, heads: t.NumHeads, kvHeads: t.NumKVHeads, headDim: t.HeadDim}
	if m.headDim == 0 {
		m.headDim = t.HiddenSize / t.NumHeads
	}
	var audio, lm, head string
	switch cfg.Family {
	case model.Qwen2Audio:
		audio, lm, head = "audio_tower.", "language_model.model.", "language_model.lm_head.weight"
	case model.Qwen25Omni:
		audio, lm, head = cfg.Prefix+"audio_tower.", cfg.Prefix+"model.", cfg.Prefix+"lm_head.weight"
	default:
		return nil, fmt.Errorf("%s: ref64 does not implement family %q", dir, cfg.Family)
	}

	dm := a.DModel
	m.conv1 = l.conv(audio+"conv1", dm, a.NumMelBins)
	m.conv2 = l.conv(audio+"conv2", dm, dm)
	if cfg.Family == model.Qwen2Audio {
		if pos := l.get(audio+"embed_positions.weight", a.MaxSourcePositions, dm); pos != nil {
			m.embedPos = make([][]float64, a.MaxSourcePositions)
			for i := range m.embedPos {
				m.embedPos[i] = pos[i*dm : (i+1)*dm]
			}
		}
	}
	for i := 0; i < a.Layers; i++ {
		p := fmt.Sprintf("%slayers.%d.", audio, i)
		m.enc = append(m.enc, encLayer{
			Q:    l.linear(p+"self_attn.q_proj", dm, dm, true),
			K:    l.linear(p+"self_attn.k_proj", dm, dm, false),
			V:    l.linear(p+"self_attn.v_proj", dm, dm, true),
			O:    l.linear(p+"self_attn.out_proj", dm, dm, true),
			LN1W: l.get(p+"self_attn_layer_norm.weight", dm), LN1B: l.get(p+"self_attn_layer_norm.bias", dm),
			FC1:  l.linear(p+"fc1", a.FFNDim, dm, true),
			FC2:  l.linear(p+"fc2", dm, a.FFNDim, true),
			LN2W: l.get(p+"final_layer_norm.weight", dm), LN2B: l.get(p+"final_layer_norm.bias", dm),
		})
	}
	if cfg.Family == model.Qwen2Audio {
		m.audioNormW, m.audioNormB = l.get(audio+"layer_norm.weight", dm), l.get(audio+"layer_norm.bias", dm)
		m.audioProj = l.linear("multi_modal_projector.linear", t.HiddenSize, dm, true)
	} else {
		if a.OutputDim != t.HiddenSize {
			l.errs = append(l.errs, fmt.Sprintf("audio output_dim %d differs from hidden_size %d", a.OutputDim, t.HiddenSize))
		}
		m.audioNormW, m.audioNormB = l.get(audio+"ln_post.weight", dm), l.get(audio+"ln_post.bias", dm)
		m.audioProj = l.linear(audio+"proj", a.OutputDim, dm, true)
	}

	h, hd := t.HiddenSize, m.headDim
	m.embed = linear{W: l.get(lm+"embed_tokens.weight", t.VocabSize, h), Out: t.VocabSize, In: h}
	for i := 0; i < t.NumLayers; i++ {
		p := fmt.Sprintf("%slayers.%d.", lm, i)
		m.dec = append(m.dec, decLayer{
			Q:        l.linear(p+"self_attn.q_proj", t.NumHeads*hd, h, true),
			K:        l.linear(p+"self_attn.k_proj", t.NumKVHeads*hd, h, true),
			V:        l.linear(p+"self_attn.v_proj", t.NumKVHeads*hd, h, true),
			O:        l.linear(p+"self_attn.o_proj", h, t.NumHeads*hd, false),
			InNorm:   l.get(p+"input_layernorm.weight", h),
			PostNorm: l.get(p+"post_attention_layernorm.weight", h),
			Gate:     l.linear(p+"mlp.gate_proj", t.IntermediateSize, h, false),
			Up:       l.linear(p+"mlp.up_proj", t.IntermediateSize, h, false),
			Down:     l.linear(p+"mlp.down_proj", h, t.IntermediateSize, false),
		})
	}
	m.finalNorm = l.get(lm+"norm.weight", h)
	if t.TieWordEmbeddings {
		m.lmHead = m.embed
	} else {
		m.lmHead = linear{W: l.get(head, t.VocabSize, h), Out: t.VocabSize, In: h}
	}
	if len(l.errs) > 0 {
		return nil, fmt.Errorf("%s: %s", dir, strings.Join(l.errs, "; "))
	}
	return m, nil
}

// Audio is one clip's log-mel input.
type Audio struct {
	// Mel is [n_mels][frames]. Qwen2-Audio: the FULL padded log-mel
	// (2·max_source_positions = 3000 frames), as the feature extractor
	// pads every clip. Qwen2.5-Omni: the valid frames (columns beyond
	// ValidFrames are ignored, as the thinker drops them by the mask).
	Mel [][]float64
	// ValidFrames is T, the number of frames the feature attention mask
	// marks valid.
	ValidFrames int
}

// Forward runs one sequence. ids already contain the expanded <|AUDIO|>
// placeholders, one per audio embedding, in order; audios are encoded
// independently and their embeddings replace the placeholder rows in
// order. It returns logits [len(ids)][vocab] and named activations:
//
//	audio.K.conv2    audio K after the convs, + positions ([time][d_model];
//	                 Qwen2-Audio: all max_source_positions rows; Omni: every
//	                 chunk's valid rows, concatenated)
//	audio.K.layer.J  audio encoder hidden states after layer J (same rows)
//	audio.K.out      audio K's embeddings fed to the decoder [tokens][hidden]
//	embeds           decoder input embeddings after the audio scatter
//	layer.J          decoder hidden states after layer J
//	norm             after the final RMSNorm
func (m *Model) Forward(ids []int, audios []Audio) (logits [][]float64, acts map[string][][]float64, err error) {
	acts = map[string][][]float64{}
	if len(ids) == 0 {
		return nil, nil, errors.New("ref64: empty input_ids")
	}
	t := m.cfg.Text
	var audioEmb [][]float64
	for k, a := range audios {
		var emb [][]float64
		var err error
		if m.cfg.Family == model.Qwen2Audio {
			emb, err = m.encodeQwen2Audio(a, k, acts)
		} else {
			emb, err = m.encodeOmni(a, k, acts)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("ref64: audio %d: %w", k, err)
		}
		audioEmb = append(audioEmb, emb...)
	}

	// Token embeddings, with the audio embeddings scattered in order into
	// the <|AUDIO|> rows (transformers' masked_scatter).
	h := newMat(len(ids), t.HiddenSize)
	placeholders := 0
	for i, id := range ids {
		if id < 0 || id >= t.VocabSize {
			return nil, nil, fmt.Errorf("ref64: input_ids[%d] = %d outside the vocabulary [0, %d)", i, id, t.VocabSize)
		}
		if id == m.cfg.AudioTokenID {
			placeholders++
		}
	}
	if placeholders != len(audioEmb) {
		return nil, nil, fmt.Errorf("ref64: input_ids hold %d <|AUDIO|> tokens (id %d) but the %d audios give %d embeddings",
			placeholders, m.cfg.AudioTokenID, len(audios), len(audioEmb))
	}
	next := 0
	for i, id := range ids {
		if id == m.cfg.AudioTokenID {
			copy(h[i], audioEmb[next])
			next++
		} else {
			copy(h[i], m.embed.row(id))
		}
	}
	acts["embeds"] = cloneMat(h)

	// Positions 0..n−1 (see the package comment on M-RoPE).
	cos, sin := ropeTables(len(ids), m.headDim, t.RopeTheta)
	causal := func(i int) (int, int) { return 0, i + 1 }
	scale := 1 / math.Sqrt(float64(m.headDim))
	for j, L := range m.dec {
		x := rmsNorm(h, L.InNorm, t.RMSNormEps)
		q, k, v := L.Q.apply(x), L.K.apply(x), L.V.apply(x)
		for i := range q {
			for hh := 0; hh < m.heads; hh++ {
				ropeHead(q[i][hh*m.headDim:(hh+1)*m.headDim], cos[i], sin[i])
			}
			for g := 0; g < m.kvHeads; g++ {
				ropeHead(k[i][g*m.headDim:(g+1)*m.headDim], cos[i], sin[i])
			}
		}
		att := attention(q, k, v, m.heads, m.kvHeads, m.headDim, scale, causal)
		h = add(h, L.O.apply(att))

		x = rmsNorm(h, L.PostNorm, t.RMSNormEps)
		gate, up := L.Gate.apply(x), L.Up.apply(x)
		for i := range gate {
			for c := range gate[i] {
				gate[i][c] = silu(gate[i][c]) * up[i][c]
			}
		}
		h = add(h, L.Down.apply(gate))
		acts[fmt.Sprintf("layer.%d", j)] = h
	}
	h = rmsNorm(h, m.finalNorm, t.RMSNormEps)
	acts["norm"] = h
	return m.lmHead.apply(h), acts, nil
}
