package ref64

import (
	"fmt"
	"math"
)

// melRows transposes the first frames columns of mel [n_mels][≥frames]
// into time-major rows [frames][n_mels], checking the shape.
func (m *Model) melRows(a Audio, frames int) ([][]float64, error) {
	nMels := m.cfg.Audio.NumMelBins
	if len(a.Mel) != nMels {
		return nil, fmt.Errorf("mel has %d bins, the model wants %d", len(a.Mel), nMels)
	}
	x := newMat(frames, nMels)
	for c, row := range a.Mel {
		if len(row) < frames {
			return nil, fmt.Errorf("mel bin %d has %d frames, want at least %d", c, len(row), frames)
		}
		for t := 0; t < frames; t++ {
			x[t][c] = row[t]
		}
	}
	return x, nil
}

// encoderLayers runs the Whisper-style pre-LN encoder layers over h
// [rows][d_model]; keys(i) is the key range row i attends to. Every
// layer's output is recorded as audio.K.layer.J.
//
//	h = h + out_proj(attn(LN1(h)))     q = q_proj(x)·head_dim^−0.5, k_proj without bias
//	h = h + fc2(gelu(fc1(LN2(h))))
func (m *Model) encoderLayers(h [][]float64, k int, keys func(i int) (int, int), acts map[string][][]float64) [][]float64 {
	a := m.cfg.Audio
	hd := a.DModel / a.Heads
	scaling := math.Pow(float64(hd), -0.5)
	for j, L := range m.enc {
		x := layerNorm(h, L.LN1W, L.LN1B, 1e-5)
		q, kk, v := L.Q.apply(x), L.K.apply(x), L.V.apply(x)
		for _, r := range q {
			for c := range r {
				r[c] *= scaling
			}
		}
		att := attention(q, kk, v, a.Heads, a.Heads, hd, 1, keys)
		h = add(h, L.O.apply(att))

		x = layerNorm(h, L.LN2W, L.LN2B, 1e-5)
		h = add(h, L.FC2.apply(geluMat(L.FC1.apply(x))))
		acts[fmt.Sprintf("audio.%d.layer.%d", k, j)] = h
	}
	return h
}

// encodeQwen2Audio is Qwen2AudioEncoder plus the projector, as
// Qwen2AudioForConditionalGeneration runs them on one clip.
//
// The input is the full padded mel (F = 2·max_source_positions frames;
// transformers rejects any other length). conv1 (stride 1) and conv2
// (stride 2) see every frame, padding included; the valid length after
// the convs is L = (T−1)//2 + 1 and every layer masks keys ≥ L (rows ≥ L
// are still computed, as transformers does, and reported in the
// activations). The encoder output is avg-pooled 1500 → 750, layer-normed,
// projected, and cut to (L−2)//2 + 1 tokens.
//
// Which frames matter: output row j of conv2 reads conv1 rows 2j−1..2j+1,
// and conv1 row t reads frames t−1..t+1, so rows < L read frames ≤ 2L.
// Rows ≥ L are masked keys and outside the kept tokens (which pool rows
// ≤ 2·((L−2)//2)+1 ≤ L−1), so the embeddings depend on frames 0..2L and on
// nothing from frame 2L+1 on. Frame 2L is padding (T even: 2L = T; T odd:
// 2L = T+1, and frame T matters too): the padding frames just past the
// clip change the result, which is why Mel must be the full padded mel.
func (m *Model) encodeQwen2Audio(a Audio, k int, acts map[string][][]float64) ([][]float64, error) {
	ac := m.cfg.Audio
	frames := 2 * ac.MaxSourcePositions
	if len(a.Mel) > 0 && len(a.Mel[0]) != frames {
		return nil, fmt.Errorf("Qwen2-Audio wants the full padded log-mel of %d frames (2·max_source_positions), got %d", frames, len(a.Mel[0]))
	}
	if a.ValidFrames < 1 || a.ValidFrames > frames {
		return nil, fmt.Errorf("ValidFrames %d outside [1, %d]", a.ValidFrames, frames)
	}
	x, err := m.melRows(a, frames)
	if err != nil {
		return nil, err
	}
	h := geluMat(conv1d(x, ac.NumMelBins, m.conv1, 1))
	h = geluMat(conv1d(h, ac.DModel, m.conv2, 2))
	if len(h) != len(m.embedPos) {
		return nil, fmt.Errorf("conv output has %d rows, embed_positions %d", len(h), len(m.embedPos))
	}
	for t := range h {
		for c := range h[t] {
			h[t][c] += m.embedPos[t][c]
		}
	}
	acts[fmt.Sprintf("audio.%d.conv2", k)] = cloneMat(h)

	L := floorDiv(a.ValidFrames-1, 2) + 1
	h = m.encoderLayers(h, k, func(int) (int, int) { return 0, L }, acts)

	h = avgPool2(h)
	h = layerNorm(h, m.audioNormW, m.audioNormB, 1e-5)
	n := max(floorDiv(L-2, 2)+1, 0)
	out := m.audioProj.apply(h[:n])
	acts[fmt.Sprintf("audio.%d.out", k)] = out
	return out, nil
}

// sinusoids is Whisper's / Omni's SinusoidsPositionEmbedding: for channels
// d, half = d/2, inv[i] = exp(−ln(10000)/(half−1) · i), row t =
// [sin(t·inv[0..half)), cos(t·inv[0..half))].
func sinusoids(rows, channels int) [][]float64 {
	half := channels / 2
	inc := math.Log(10000) / float64(half-1)
	pe := newMat(rows, channels)
	for t := 0; t < rows; t++ {
		for i := 0; i < half; i++ {
			a := float64(t) * math.Exp(-inc*float64(i))
			pe[t][i], pe[t][half+i] = math.Sin(a), math.Cos(a)
		}
	}
	return pe
}

// encodeOmni is Qwen2_5OmniAudioEncoder on one clip of T valid frames.
//
// Time is split into chunks of 2·n_window frames, the last holding the
// remainder. Each chunk is zero-padded on the right (to 2·n_window here;
// transformers pads to the longest chunk of the batch, which gives the
// same kept rows because padded positions are zero either way), conv1 +
// gelu, multiplied by the chunk's frame mask (rows ≥ chunk length set to
// 0), conv2 (stride 2) + gelu, plus sinusoidal positions restarting at 0
// in every chunk, and cut to its first (len−1)//2 + 1 rows. A chunk never
// sees its neighbours' frames. The kept rows of all chunks are
// concatenated; attention is block-diagonal (a row sees only its own
// chunk). Then avg-pool pairs over the whole clip (L → L//2; full chunks
// keep n_window rows, an even count for the real n_window = 100, so pairs
// do not straddle chunks), ln_post and proj.
func (m *Model) encodeOmni(a Audio, k int, acts map[string][][]float64) ([][]float64, error) {
	ac := m.cfg.Audio
	T := a.ValidFrames
	if T < 1 {
		return nil, fmt.Errorf("ValidFrames %d: need at least one frame", T)
	}
	x, err := m.melRows(a, T)
	if err != nil {
		return nil, err
	}
	chunk := 2 * ac.NWindow
	pos := sinusoids((chunk-1)/2+1, ac.DModel)
	var h [][]float64
	var bounds [][2]int // each chunk's row range in h
	for start := 0; start < T; start += chunk {
		n := min(chunk, T-start)
		padded := newMat(chunk, ac.NumMelBins)
		for t := 0; t < n; t++ {
			copy(padded[t], x[start+t])
		}
		c := geluMat(conv1d(padded, ac.NumMelBins, m.conv1, 1))
		for t := n; t < chunk; t++ {
			clear(c[t])
		}
		c = geluMat(conv1d(c, ac.DModel, m.conv2, 2))
		keep := floorDiv(n-1, 2) + 1
		lo := len(h)
		for t := 0; t < keep; t++ {
			row := make([]float64, ac.DModel)
			for j := range row {
				row[j] = c[t][j] + pos[t][j]
			}
			h = append(h, row)
		}
		bounds = append(bounds, [2]int{lo, len(h)})
	}
	h = cloneMat(h) // one backing array
	acts[fmt.Sprintf("audio.%d.conv2", k)] = cloneMat(h)

	chunkOf := make([]int, len(h))
	for b, r := range bounds {
		for i := r[0]; i < r[1]; i++ {
			chunkOf[i] = b
		}
	}
	h = m.encoderLayers(h, k, func(i int) (int, int) { r := bounds[chunkOf[i]]; return r[0], r[1] }, acts)

	h = avgPool2(h)
	if len(h) == 0 {
		acts[fmt.Sprintf("audio.%d.out", k)] = [][]float64{}
		return nil, nil
	}
	h = layerNorm(h, m.audioNormW, m.audioNormB, 1e-5)
	out := m.audioProj.apply(h)
	acts[fmt.Sprintf("audio.%d.out", k)] = out
	return out, nil
}
