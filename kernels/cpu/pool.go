package cpu

import (
	"sync"
	"sync/atomic"
)

// A runner is one op's parallel work, its arguments held in a struct the
// Device owns (Device.jobs), so that dispatching it allocates nothing: an
// escaping closure would cost an allocation per op. run does items
// [lo, hi); part numbers the range among the ranges of one call (0 for
// the caller's own), for work that needs scratch of its own. A runner
// must not call the pool itself: the helpers would wait on each other.
type runner interface {
	run(part, lo, hi int)
}

type task struct {
	r            runner
	part, lo, hi int
	claim        bool // take items one at a time from next, up to hi
}

// pool is the Device's worker goroutines: parts-1 helpers, each waiting on
// its own channel, plus the calling goroutine, which takes range 0.
//
// A call splits [0, n) into equal contiguous ranges, a function of n and
// parts alone, and every runner computes each item the same way whichever
// range holds it, so results never depend on scheduling.
type pool struct {
	parts int
	work  []chan task
	wg    sync.WaitGroup
	next  atomic.Int64 // the next item of an each call
}

func newPool(parts int) *pool {
	p := &pool{parts: parts}
	for range parts - 1 {
		ch := make(chan task)
		p.work = append(p.work, ch)
		go p.serve(ch)
	}
	return p
}

func (p *pool) serve(ch chan task) {
	for t := range ch {
		if t.claim {
			p.claim(t.r, t.part, t.hi)
		} else {
			t.r.run(t.part, t.lo, t.hi)
		}
		p.wg.Done()
	}
}

// stop ends the helpers; the Device's cleanup calls it.
func (p *pool) stop() {
	for _, ch := range p.work {
		close(ch)
	}
}

// do runs r over [0, n), in parallel when each range gets at least grain
// items (small calls stay on the calling goroutine: waking a helper costs
// a few microseconds).
func (p *pool) do(n, grain int, r runner) {
	parts := p.parts
	if grain < 1 {
		grain = 1
	}
	if n/grain < parts {
		parts = n / grain
	}
	if parts <= 1 {
		r.run(0, 0, n)
		return
	}
	p.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		p.work[i-1] <- task{r: r, part: i, lo: i * n / parts, hi: (i + 1) * n / parts}
	}
	r.run(0, 0, n/parts)
	p.wg.Wait()
}

// each runs r on items 0 .. n-1 one at a time, every goroutine taking the
// next unclaimed item when it finishes one: for items of uneven cost
// (attention over sequences of different lengths). Which goroutine runs an
// item varies, so an item's result must not depend on it, and items must
// not write to the same values.
func (p *pool) each(n int, r runner) {
	parts := min(p.parts, n)
	if parts <= 1 {
		for i := range n {
			r.run(0, i, i+1)
		}
		return
	}
	p.next.Store(0)
	p.wg.Add(parts - 1)
	for i := 1; i < parts; i++ {
		p.work[i-1] <- task{r: r, part: i, hi: n, claim: true}
	}
	p.claim(r, 0, n)
	p.wg.Wait()
}

func (p *pool) claim(r runner, part, n int) {
	for {
		i := int(p.next.Add(1)) - 1
		if i >= n {
			return
		}
		r.run(part, i, i+1)
	}
}

// minWork is the number of simple float operations (multiply-adds,
// copies) below which a call is not worth splitting; an exp or erf counts
// as about ten.
const minWork = 1 << 15

// grain is the number of items of cost perItem that make up minWork.
func grain(perItem int) int {
	return max(1, minWork/max(1, perItem))
}
