// Package kernels defines the compute interface earl's models are written
// against: a Device holds float32 and int32 buffers and runs the ops a
// Qwen2-Audio / Qwen2.5-Omni forward and backward pass needs, each as a
// plain function in llm.c's style (outputs first, then caches, then
// inputs, then sizes). kernels/cpu is the reference implementation (Go
// plus OpenBLAS sgemm); a CUDA device mirrors it op for op, and
// kernels/kerneltest is the conformance suite both must pass.
//
// Conventions, for every op:
//   - Tensors are row-major; shapes are written in the doc comments, e.g.
//     x is (N, C): N rows of C values.
//   - Backward ops ACCUMULATE into every gradient output (+=), as llm.c
//     does, so residual branches and shared weights need no extra adds;
//     the caller zeroes gradient buffers once per step. The exception is
//     RoPEBackward, which transforms its gradient in place.
//   - Forward ops overwrite their outputs.
//   - A view must hold at least the values its shape needs; ops use its
//     first ones (a buffer sized for the maxima may be passed whole with a
//     smaller n). An optional argument — a bias, a gradient that is not
//     wanted — is skipped when its view is empty (N == 0), and nothing is
//     written through an empty view.
//   - Ops never allocate: scratch comes from the caller (rule 3), or is
//     the device's own, sized by the largest call and then reused.
//   - A Device runs one op at a time: it is not safe for concurrent use
//     from several goroutines (like a CUDA stream).
//   - Buffers of one Device must not be passed to another.
package kernels

// Buf is device memory holding float32 values.
type Buf interface {
	Len() int
}

// HostBuf is a Buf in host memory (the CPU device's buffers): code that
// must touch the values directly (the TCP collectives, checkpoint writers)
// reaches them through it instead of a Download copy.
type HostBuf interface {
	Buf
	Host() []float32
}

// Host returns the host slice a view covers, or nil when its buffer lives
// in device memory.
func Host(t T) []float32 {
	h, ok := t.B.(HostBuf)
	if !ok {
		return nil
	}
	return h.Host()[t.Off : t.Off+t.N]
}

// IBuf is device memory holding int32 values (token ids, positions).
type IBuf interface {
	Len() int
}

// T is a view of N float32 values at offset Off of a buffer. Ops take
// views, so one allocation can be carved into many named tensors (the flat
// parameter buffer of DESIGN.md rule 1).
type T struct {
	B   Buf
	Off int
	N   int
}

// View returns the n values starting at off within t.
func (t T) View(off, n int) T {
	if off < 0 || n < 0 || off+n > t.N {
		panic("kernels: view out of range")
	}
	return T{B: t.B, Off: t.Off + off, N: n}
}

// I is a view of N int32 values at offset Off of an int buffer.
type I struct {
	B   IBuf
	Off int
	N   int
}

// View returns the n values starting at off within i.
func (i I) View(off, n int) I {
	if off < 0 || n < 0 || off+n > i.N {
		panic("kernels: view out of range")
	}
	return I{B: i.B, Off: i.Off + off, N: n}
}

// Seqs describes packed variable-length sequences: sequence s occupies
// rows Offsets[s] to Offsets[s+1]-1 of a packed (Total, ...) tensor, with
// no padding between sequences. Block-diagonal attention (Omni's audio
// chunks) is one sequence per block.
type Seqs struct {
	Offsets []int32 // len = sequences + 1, Offsets[0] = 0, non-decreasing
}

// Count is the number of sequences.
func (s Seqs) Count() int { return len(s.Offsets) - 1 }

// Total is the number of packed rows.
func (s Seqs) Total() int { return int(s.Offsets[len(s.Offsets)-1]) }

// MaxLen is the longest sequence.
func (s Seqs) MaxLen() int {
	m := 0
	for i := 0; i+1 < len(s.Offsets); i++ {
		m = max(m, int(s.Offsets[i+1]-s.Offsets[i]))
	}
	return m
}

// Attn is the shape of a multi-head attention call. Query head h reads
// key/value head h / (Heads / KVHeads) (grouped-query attention).
type Attn struct {
	Heads, KVHeads, HeadDim int
	Causal                  bool
	Scale                   float32 // usually 1/sqrt(HeadDim)
}

// Device holds buffers and runs ops. Implementations: kernels/cpu.
type Device interface {
	Name() string

	// Alloc returns n zeroed float32 values; AllocInt n zeroed int32s.
	Alloc(n int) T
	AllocInt(n int) I
	// Free releases a buffer (a no-op where the garbage collector owns it).
	Free(t T)
	FreeInt(i I)
	// Upload and Download copy between host slices and device views of
	// the same length.
	Upload(dst T, src []float32)
	Download(dst []float32, src T)
	UploadInt(dst I, src []int32)
	DownloadInt(dst []int32, src I)
	// Sync waits for queued work (a no-op on the CPU).
	Sync()

	// Elementwise.
	Zero(x T)
	Copy(dst, src T)
	// Add: out = a + b. Axpy: y += alpha * x. Scale: x *= alpha.
	Add(out, a, b T)
	Axpy(y T, alpha float32, x T)
	Scale(x T, alpha float32)

	// Gemm: c = alpha * op(a) * op(b) + beta * c, row-major, op(a) is
	// (m, k) and op(b) is (k, n); lda, ldb, ldc are row strides. As in
	// BLAS, c is not read when beta is 0.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a T, lda int, b T, ldb int, beta float32, c T, ldc int)

	// Transpose: out (cols, rows) = x (rows, cols)^T.
	Transpose(out, x T, rows, cols int)
	// GatherRows: out[i] = src[idx[i]] (rows of C). ScatterRows:
	// dst[idx[i]] = src[i] (audio embeddings into <|AUDIO|> positions);
	// its indices must be distinct (which row a repeat keeps is the
	// device's choice). Indices outside the buffer's rows panic.
	GatherRows(out, src T, idx I, n, c int)
	ScatterRows(dst, src T, idx I, n, c int)

	// Linear: out (N, OC) = x (N, IC) @ w(OC, IC)^T + bias (OC) (bias may
	// have N == 0 for none). Backward accumulates dx, dw, dbias; any of
	// them may be empty (N == 0) to skip it (frozen weights, inputs that
	// need no gradient).
	LinearForward(out, x, w, bias T, n, ic, oc int)
	LinearBackward(dx, dw, dbias, dout, x, w T, n, ic, oc int)

	// Embedding: out (N, C) = table[ids[i]]. Backward scatters into dtable,
	// adding the rows of repeated ids.
	EmbeddingForward(out, table T, ids I, n, c int)
	EmbeddingBackward(dtable, dout T, ids I, n, c int)

	// RMSNorm: out = x / sqrt(mean(x^2) + eps) * w, over rows of C; rstd
	// (N) = 1 / sqrt(mean(x^2) + eps) is cached for the backward.
	RMSNormForward(out, rstd, x, w T, n, c int, eps float32)
	RMSNormBackward(dx, dw, dout, x, w, rstd T, n, c int)

	// LayerNorm: out = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var +
	// eps) with the biased variance; mean, rstd (N) cached. b may be empty.
	LayerNormForward(out, mean, rstd, x, w, b T, n, c int, eps float32)
	LayerNormBackward(dx, dw, db, dout, x, w, mean, rstd T, n, c int)

	// RoPE rotates, in place, each head of x (N, heads, headDim) by the
	// row's position: pairs (i, i + headDim/2) by angle pos * theta^(-2i/headDim)
	// (the rotate-half layout of Hugging Face's Qwen2). The angle is
	// computed in float32 as transformers does — inv_freq = 1 / theta **
	// (float32(2i) / headDim), rounded to float32, times float32(pos) —
	// which at position 30000 differs from the exact angle by up to 2e-3
	// rad (head size 128). Backward rotates dx back by the same angles (in place: the
	// rotation is orthogonal).
	RoPEForward(x T, pos I, n, heads, headDim int, theta float32)
	RoPEBackward(dx T, pos I, n, heads, headDim int, theta float32)

	// Attention over packed sequences: q (Total, Heads, HeadDim), k and v
	// (Total, KVHeads, HeadDim), out (Total, Heads, HeadDim); lse (Total,
	// Heads) caches each row's log-sum-exp of the scaled scores for the
	// backward. Softmax in float32. Rows attend within their own
	// sequence, to keys at or before them when Causal.
	AttentionForward(out, lse, q, k, v T, seqs Seqs, a Attn)
	AttentionBackward(dq, dk, dv, dout, out, lse, q, k, v T, seqs Seqs, a Attn)

	// SwiGLU: out (N, C) = silu(gate) * up, gate and up (N, C).
	SwiGLUForward(out, gate, up T, n, c int)
	SwiGLUBackward(dgate, dup, dout, gate, up T, n, c int)

	// GELU (the exact erf form): out = x * Phi(x), over n values.
	GELUForward(out, x T, n int)
	GELUBackward(dx, dout, x T, n int)

	// Conv1d with kernel 3, padding 1: x (B, Cin, Tin), w (Cout, Cin, 3),
	// bias (Cout), out (B, Cout, Tout) with Tout = (Tin - 1) / stride + 1.
	// col is scratch of (Cin*3, Tout) values for the im2col formulation.
	Conv1dForward(out, col, x, w, bias T, b, cin, cout, tin, stride int)
	Conv1dBackward(dx, dw, dbias, col, dout, x, w T, b, cin, cout, tin, stride int)

	// AvgPool over pairs along time: x (B, C, Tin) -> out (B, C, Tin/2),
	// out[t] = (x[2t] + x[2t+1]) / 2 (kernel 2, stride 2; an odd last
	// frame is dropped).
	AvgPoolForward(out, x T, b, c, tin int)
	AvgPoolBackward(dx, dout T, b, c, tin int)

	// KV cache for generation: kc and vc are (Slots, MaxLen, KVHeads,
	// HeadDim). CacheWrite stores the k and v rows (N, KVHeads, HeadDim)
	// of N tokens at (slot[i], pos[i]). CacheCopy copies the first n
	// positions of slot src to slot dst (a prefilled prompt forked into G
	// samples). AttentionDecode: q (N, Heads, HeadDim) holds one new token
	// per row; row i attends to positions [0, lens[i]) of slot slot[i]
	// (its own k and v included once written; a.Causal is not used; a row
	// with lens[i] == 0 gets zeros).
	CacheWrite(kc, vc, k, v T, slot, pos I, n, kvHeads, headDim, maxLen int)
	CacheCopy(kc, vc T, src, dst, n, kvHeads, headDim, maxLen int)
	AttentionDecode(out, q, kc, vc T, slot, lens I, n int, a Attn, maxLen int)

	// TokenLogProbs computes, for N rows of hidden states h (N, C) and the
	// output projection w (V, C), the log-probability of targets[i] under
	// softmax(h w^T / temperature) and the distribution's entropy, without
	// materialising (N, V): rows are processed in chunks of chunk rows,
	// using scratch logits (chunk, V). lse (N) is cached for the backward.
	TokenLogProbs(logp, entropy, lse, logits, h, w T, targets I, n, c, v, chunk int, temperature float32)
	// The entropy is that of the tempered distribution; targets must be in
	// [0, V).
	// TokenLogProbsBackward accumulates dh and dw (either may be empty)
	// for the loss sum(dlogp * logp + dentropy * entropy), from dlogp (N)
	// and dentropy (N) (either may be empty: zeros), recomputing logits
	// chunk by chunk with the same chunk and temperature as the forward.
	TokenLogProbsBackward(dh, dw, logits, dlogp, dentropy, h, w, lse T, targets I, n, c, v, chunk int, temperature float32)
}
