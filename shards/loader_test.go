package shards

import (
	"errors"
	"io"
	"math"
	"slices"
	"testing"
)

func TestOrderIsADeterministicUniformPermutation(t *testing.T) {
	a, b := Order(1000, 42, 3), Order(1000, 42, 3)
	if !slices.Equal(a, b) {
		t.Fatal("same seed and epoch gave different orders")
	}
	if slices.Equal(a, Order(1000, 42, 4)) || slices.Equal(a, Order(1000, 43, 3)) {
		t.Fatal("order does not depend on epoch and seed")
	}
	s := slices.Clone(a)
	slices.Sort(s)
	for i, v := range s {
		if v != i {
			t.Fatalf("not a permutation: %d at %d", v, i)
		}
	}
	// Where element 0 lands, over many seeds: each of 5 slots ~ 1/5.
	const trials, n = 20000, 5
	var count [n]int
	for seed := uint64(0); seed < trials; seed++ {
		count[slices.Index(Order(n, seed, 0), 0)]++
	}
	for i, c := range count {
		exp := float64(trials) / n
		if math.Abs(float64(c)-exp) > 5*math.Sqrt(exp*(1-1.0/n)) {
			t.Errorf("slot %d got %d of %d, expected about %.0f", i, c, trials, exp)
		}
	}
}

func TestPartition(t *testing.T) {
	order := Order(10, 1, 0)
	seen := map[int]int{}
	for rank := 0; rank < 3; rank++ {
		p, err := Partition(order, rank, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) != 4 {
			t.Fatalf("rank %d got %d samples, want ceil(10/3) = 4", rank, len(p))
		}
		for i, v := range p {
			if want := order[(rank+3*i)%10]; v != want {
				t.Fatalf("rank %d item %d = %d, want %d", rank, i, v, want)
			}
			seen[v]++
		}
	}
	if len(seen) != 10 {
		t.Fatalf("partitions cover %d of 10 samples", len(seen))
	}
	if _, err := Partition(order, 3, 3); err == nil {
		t.Error("rank 3 of 3 accepted")
	}
}

func TestLoaderReadsEachRanksShare(t *testing.T) {
	o := synthSet(t, "jsonl", 11, 4)
	mustBuild(t, o)
	d, err := Open(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got := map[string]int{}
	for rank := 0; rank < 2; rank++ {
		l, err := d.NewLoader(LoaderOptions{Seed: 7, Epoch: 1, Rank: rank, World: 2, Prefetch: 2})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Partition(Order(11, 7, 1), rank, 2)
		for i := 0; ; i++ {
			r, err := l.Next()
			if err == io.EOF {
				if i != len(want) {
					t.Fatalf("rank %d read %d records, want %d", rank, i, len(want))
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			m, _ := d.Meta(want[i])
			if r.ID != m.ID || r.Mel == nil || len(r.Mel.Data) == 0 {
				t.Fatalf("rank %d record %d: got %q (features %v), want %q", rank, i, r.ID, r.Mel != nil, m.ID)
			}
			got[r.ID]++
		}
		l.Close()
	}
	if len(got) != 11 {
		t.Errorf("two ranks read %d distinct samples, want 11", len(got))
	}
	// Closing mid-epoch stops the reader.
	l, _ := d.NewLoader(LoaderOptions{Sequential: true, Prefetch: 1})
	if r, err := l.Next(); err != nil || r.ID == "" {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Next(); !errors.Is(err, ErrClosed) {
		t.Errorf("Next after Close: %v", err)
	}
}
