package nccl

// This file is plain Go without the cuda tag on purpose: the index
// arithmetic of the padded reduce-scatter and all-gather is the part of
// the backend that can go wrong silently, and without a tag `make test`
// checks it on any machine (plan_test.go) against collective.Range.

import "earl/collective"

// padPlan lays a reduce-scatter or all-gather of n elements over size
// ranks, whose shards are collective.Range's (the first n % size ranks
// hold one element more), onto NCCL calls, which need the same count on
// every rank. Each rank's shard is padded to q = ceil(n / size) elements;
// the padded vector is staged through a scratch buffer in calls of chunk
// elements per rank, so the scratch never exceeds size * chunk elements
// however long the vector (a 7B-parameter gradient would otherwise need a
// second 28 GB buffer).
//
// Call k carries elements [start, start+count) of every rank's padded
// shard; rank r's part of it is piece(k, r), of at most count real
// elements, and lives at r*count in the scratch buffer.
type padPlan struct {
	n, size int
	q       int // ceil(n / size): every rank's count after padding
	chunk   int // per-rank elements per NCCL call
}

// newPadPlan plans calls of at most budget scratch elements in all (at
// least one element per rank per call).
func newPadPlan(n, size, budget int) padPlan {
	q := (n + size - 1) / size
	chunk := max(budget/size, 1)
	chunk = min(chunk, q)
	return padPlan{n: n, size: size, q: q, chunk: chunk}
}

// calls is the number of NCCL calls.
func (p padPlan) calls() int {
	if p.q == 0 {
		return 0
	}
	return (p.q + p.chunk - 1) / p.chunk
}

// scratch is the number of scratch elements the largest call needs.
func (p padPlan) scratch() int { return p.size * p.chunk }

// call returns where call k starts within every rank's padded shard and
// its per-rank count (the NCCL count).
func (p padPlan) call(k int) (start, count int) {
	start = k * p.chunk
	return start, min(p.chunk, p.q-start)
}

// piece returns, for call k and rank r, the offset in the full vector of
// rank r's real elements in that call and how many there are (count, or
// one less in the call holding a short shard's padding, or none).
func (p padPlan) piece(k, r int) (src, n int) {
	off, cnt := collective.Range(p.n, r, p.size)
	start, count := p.call(k)
	n = min(count, max(cnt-start, 0))
	return off + start, n
}
