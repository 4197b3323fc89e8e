package tokenizer

import (
	"strings"
	"sync"
)

// merge is what a pair of adjacent tokens turns into, and how early.
type merge struct {
	rank int32 // position in the merges list: lower merges first
	id   int32 // the merged token
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// shortWord is the length (in bytes) up to which bpe scans the pair ranks
// for the best after each merge, O(n²) comparisons but allocation-free and
// faster than a heap for ordinary words; longer words go through bpeLong.
const shortWord = 48

// bpe appends to dst the ids of one pre-token (raw bytes): each byte starts
// as its own byte-level token, then the adjacent pair with the lowest merge
// rank is merged, the leftmost one on ties, until no pair has a merge. This
// is the order of Hugging Face's BPE::merge_word (a priority queue on
// (rank, position)) and of GPT-2's bpe(), which agree.
func (t *Tokenizer) bpe(dst []int32, word string) []int32 {
	if len(word) > shortWord {
		return t.bpeLong(dst, word)
	}
	// sym holds the current symbols; rank[i] and into[i] describe the merge
	// of sym[i] and sym[i+1] (rank -1: none). After a merge only the two
	// pairs touching the new symbol need a new look-up.
	var symBuf, intoBuf, rankBuf [shortWord]int32
	n := len(word)
	sym, into, rank := symBuf[:n], intoBuf[:n], rankBuf[:n]
	for i := 0; i < n; i++ {
		sym[i] = t.byteID[word[i]]
	}
	look := func(i int) {
		if m, ok := t.merges[pairKey(sym[i], sym[i+1])]; ok {
			rank[i], into[i] = m.rank, m.id
		} else {
			rank[i] = -1
		}
	}
	for i := 0; i+1 < n; i++ {
		look(i)
	}
	for n > 1 {
		at := -1
		for i := 0; i+1 < n; i++ {
			if rank[i] >= 0 && (at < 0 || rank[i] < rank[at]) {
				at = i
			}
		}
		if at < 0 {
			break
		}
		sym[at] = into[at]
		copy(sym[at+1:], sym[at+2:n])
		copy(rank[at+1:], rank[at+2:n])
		copy(into[at+1:], into[at+2:n])
		n--
		if at+1 < n {
			look(at)
		}
		if at > 0 {
			look(at - 1)
		}
	}
	return append(dst, sym[:n]...)
}

// bpeLong is bpe for long pre-tokens (a 10 KB run of letters is one
// pre-token): a doubly linked list of symbols and a min-heap of candidate
// pairs ordered by (rank, position), as in Hugging Face's implementation,
// so the cost is O(n log n) instead of O(n²).
func (t *Tokenizer) bpeLong(dst []int32, word string) []int32 {
	n := len(word)
	id := make([]int32, n)
	prev := make([]int32, n)
	next := make([]int32, n)
	for i := 0; i < n; i++ {
		id[i] = t.byteID[word[i]]
		prev[i], next[i] = int32(i-1), int32(i+1)
	}
	next[n-1] = -1
	var h pairHeap
	push := func(i int32) {
		j := next[i]
		if j < 0 {
			return
		}
		if m, ok := t.merges[pairKey(id[i], id[j])]; ok {
			h.push(pairCand{rank: m.rank, pos: i, left: id[i], right: id[j], merged: m.id})
		}
	}
	for i := 0; i+1 < n; i++ {
		push(int32(i))
	}
	for len(h) > 0 {
		c := h.pop()
		i := c.pos
		j := next[i]
		// Skip candidates made stale by an earlier merge: the left symbol
		// was absorbed (id -1) or either side has changed since.
		if id[i] != c.left || j < 0 || id[j] != c.right {
			continue
		}
		id[i] = c.merged
		id[j] = -1
		next[i] = next[j]
		if next[j] >= 0 {
			prev[next[j]] = i
		}
		if p := prev[i]; p >= 0 {
			push(p)
		}
		push(i)
	}
	for i := int32(0); i >= 0; i = next[i] {
		dst = append(dst, id[i])
	}
	return dst
}

// pairCand is a pair of adjacent symbols that a merge could join.
type pairCand struct {
	rank, pos           int32
	left, right, merged int32
}

// pairHeap is a binary min-heap of candidates by (rank, position), written
// out rather than through container/heap so candidates are not boxed.
type pairHeap []pairCand

func (a pairCand) before(b pairCand) bool {
	return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos)
}

func (h *pairHeap) push(c pairCand) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].before(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *pairHeap) pop() pairCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(s) && s[l].before(s[m]) {
			m = l
		}
		if r < len(s) && s[r].before(s[m]) {
			m = r
		}
		if m == i {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// cacheMax bounds the word cache. When it is full the cache is emptied and
// refilled, so memory stays bounded while the current text's frequent words
// stay cached.
const cacheMax = 1 << 16

// cacheMaxWord is the longest pre-token kept in the cache: long ones are
// rare, cost memory and would not be looked up again.
const cacheMaxWord = 128

// wordCache maps a pre-token to its ids. It is safe for concurrent use.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

func (c *wordCache) get(w string) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[w]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(w string, ids []int32) {
	c.mu.Lock()
	if len(c.m) >= cacheMax || c.m == nil {
		c.m = make(map[string][]int32, 1024)
	}
	// Clone the key: w points into the caller's text, which the cache must
	// not keep alive.
	c.m[strings.Clone(w)] = ids
	c.mu.Unlock()
}

// encodeWord appends the ids of one pre-token, through the cache.
func (t *Tokenizer) encodeWord(dst []int, word string) []int {
	if len(word) == 1 {
		return append(dst, int(t.byteID[word[0]]))
	}
	if len(word) <= cacheMaxWord {
		if ids, ok := t.cache.get(word); ok {
			for _, id := range ids {
				dst = append(dst, int(id))
			}
			return dst
		}
	}
	var buf [shortWord]int32
	ids := t.bpe(buf[:0], word)
	for _, id := range ids {
		dst = append(dst, int(id))
	}
	if len(word) <= cacheMaxWord {
		t.cache.put(word, append([]int32(nil), ids...))
	}
	return dst
}
