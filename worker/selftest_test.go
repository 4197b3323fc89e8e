package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"earl/collective"
	"earl/kernels"
)

// runChecks runs every selftest check on every rank of comms, each rank
// in its own goroutine, and returns each rank's checksums by check name
// and its first error.
func runChecks(comms []collective.Comm, n, iters int) ([]map[string]uint64, []error) {
	sums := make([]map[string]uint64, len(comms))
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[r] = map[string]uint64{}
			for _, ck := range checks {
				for it := range iters {
					h, err := ck.run(c, n, it)
					if err != nil {
						errs[r] = fmt.Errorf("%s: %w", ck.name, err)
						c.Close() // the others fail rather than wait
						return
					}
					sums[r][ck.name] = sums[r][ck.name]*31 + h
				}
			}
		}()
	}
	wg.Wait()
	return sums, errs
}

func TestChecksPassOnCorrectCollectives(t *testing.T) {
	for _, size := range []int{1, 2, 3, 5} {
		sums, errs := runChecks(collective.NewInProcess(size), 1001, 3)
		for r, err := range errs {
			if err != nil {
				t.Fatalf("size %d rank %d: %v", size, r, err)
			}
		}
		// Ranks holding the same result print the same checksum; the
		// reduce-scatter shards differ.
		for _, name := range []string{"allreduce sum", "allreduce avg", "allreduce max", "allgather", "broadcast", "allreduce64 sum", "allreduce64 max"} {
			for r := 1; r < size; r++ {
				if sums[r][name] != sums[0][name] {
					t.Errorf("size %d: %s checksum of rank %d differs from rank 0's", size, name, r)
				}
			}
		}
		if size > 1 && sums[0]["reducescatter sum"] == sums[1]["reducescatter sum"] {
			t.Errorf("size %d: reduce-scatter shards of ranks 0 and 1 have the same checksum", size)
		}
	}
}

// faulty wraps a Comm and corrupts one element of what rank 1 receives.
type faulty struct {
	collective.Comm
	op string
}

func (f faulty) corrupt(op string, x kernels.T) {
	if f.op == op && f.Rank() == 1 {
		kernels.Host(x)[7]++
	}
}

func (f faulty) AllReduce(x kernels.T, op collective.Op) error {
	err := f.Comm.AllReduce(x, op)
	f.corrupt("allreduce "+op.String(), x)
	return err
}

func (f faulty) ReduceScatter(shard, x kernels.T, op collective.Op) error {
	err := f.Comm.ReduceScatter(shard, x, op)
	f.corrupt("reducescatter", shard)
	return err
}

func (f faulty) AllGather(x, shard kernels.T) error {
	err := f.Comm.AllGather(x, shard)
	f.corrupt("allgather", x)
	return err
}

func (f faulty) Broadcast(x kernels.T, root int) error {
	err := f.Comm.Broadcast(x, root)
	f.corrupt("broadcast", x)
	return err
}

func (f faulty) AllReduce64(x []float64, op collective.Op) error {
	err := f.Comm.AllReduce64(x, op)
	if f.op == "allreduce64 "+op.String() && f.Rank() == 1 {
		x[2]++
	}
	return err
}

func TestChecksCatchWrongResults(t *testing.T) {
	for op, want := range map[string]string{
		"allreduce sum":   "allreduce sum: element 7 = ",
		"allreduce avg":   "allreduce avg: element 7 = ",
		"allreduce max":   "allreduce max: element 7 = ",
		"reducescatter":   "reducescatter sum: shard element 7 (global ",
		"allgather":       "allgather: element 7 (from rank 0) = ",
		"broadcast":       "broadcast: element 7 = ",
		"allreduce64 sum": "allreduce64 sum: element 2 = ",
		"allreduce64 max": "allreduce64 max: element 2 = ",
	} {
		comms := collective.NewInProcess(3)
		for i := range comms {
			comms[i] = faulty{comms[i], op}
		}
		_, errs := runChecks(comms, 1001, 1)
		if errs[1] == nil || !strings.HasPrefix(errs[1].Error(), want) {
			t.Errorf("corrupted %s: rank 1 reported %v, want %q...", op, errs[1], want)
		}
	}
}

func TestHelpListsSubcommands(t *testing.T) {
	app := newApp()
	var names []string
	for _, c := range app.Commands {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, " "); !strings.Contains(got, "selftest") || !strings.Contains(got, "train") || !strings.Contains(got, "eval") {
		t.Errorf("worker commands: %s", got)
	}
}
