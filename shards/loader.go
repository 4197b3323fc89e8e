package shards

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"sync"
)

// Order returns a permutation of [0, n) that depends only on (seed, epoch):
// a Fisher-Yates shuffle driven by PCG with unbiased bounded draws, written
// out here rather than taken from math/rand so the order never changes with
// the Go release. Every rank computes the same order.
func Order(n int, seed uint64, epoch int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	r := rand.NewPCG(seed, 0x9e3779b97f4a7c15^uint64(epoch))
	for i := n - 1; i > 0; i-- {
		j := int(bounded(r, uint64(i+1)))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

// bounded draws uniformly from [0, n) (Lemire's multiply-and-reject).
func bounded(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// Partition returns rank's share of order: every world-th element starting
// at rank. When world does not divide len(order) the order is extended by
// wrapping around to its start, as PyTorch's DistributedSampler does, so
// every rank gets ceil(n/world) samples and takes the same number of steps.
func Partition(order []int, rank, world int) ([]int, error) {
	if world < 1 || rank < 0 || rank >= world {
		return nil, fmt.Errorf("rank %d of world size %d is not valid", rank, world)
	}
	n := len(order)
	if n == 0 {
		return nil, nil
	}
	per := (n + world - 1) / world
	out := make([]int, per)
	for i := range out {
		out[i] = order[(rank+i*world)%n]
	}
	return out, nil
}

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	Seed  uint64
	Epoch int
	Rank  int
	World int // default 1
	// Prefetch is how many records to read ahead in the background
	// (default 8).
	Prefetch int
	// Sequential keeps the stored order instead of shuffling (evaluation).
	Sequential bool
}

// Loader yields one rank's records for one epoch, reading ahead in a
// background goroutine.
type Loader struct {
	idx  []int
	out  chan loaded
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

type loaded struct {
	rec *Record
	err error
}

// NewLoader starts reading rank's partition of the epoch's order.
func (d *Dir) NewLoader(o LoaderOptions) (*Loader, error) {
	if o.World == 0 {
		o.World = 1
	}
	if o.Prefetch <= 0 {
		o.Prefetch = 8
	}
	var order []int
	if o.Sequential {
		order = make([]int, d.Len())
		for i := range order {
			order[i] = i
		}
	} else {
		order = Order(d.Len(), o.Seed, o.Epoch)
	}
	idx, err := Partition(order, o.Rank, o.World)
	if err != nil {
		return nil, err
	}
	l := &Loader{idx: idx, out: make(chan loaded, o.Prefetch), stop: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(l.out)
		for _, i := range idx {
			r, err := d.Record(i)
			select {
			case l.out <- loaded{r, err}:
			case <-l.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return l, nil
}

// Indices is the loader's sample order (global indices into the Dir).
func (l *Loader) Indices() []int { return l.idx }

// Len is the number of records this rank reads in the epoch.
func (l *Loader) Len() int { return len(l.idx) }

// ErrClosed is returned by Next after Close.
var ErrClosed = errors.New("shards: loader closed")

// Next returns the next record, or io.EOF at the end of the epoch.
func (l *Loader) Next() (*Record, error) {
	select {
	case <-l.stop:
		return nil, ErrClosed
	default:
	}
	v, ok := <-l.out
	if !ok {
		return nil, io.EOF
	}
	return v.rec, v.err
}

// Close stops the background reader and waits for it.
func (l *Loader) Close() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}
