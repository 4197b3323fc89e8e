package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"earl/collective"
	"earl/kernels"
	"earl/slurm"
)

func selftestCommand() *cli.Command {
	return &cli.Command{
		Name:  "selftest",
		Usage: "check the job environment and every collective on rank-dependent data",
		UsageText: "worker selftest [--size-elements N] [--iters K] [--timeout D] [--hold SECONDS] [--marker-dir DIR]\n" +
			"   (under srun, or: launcher run --nproc 2 -- worker selftest)",
		Description: "Reads the job environment (Slurm or torchrun style), connects the ranks, and runs\n" +
			"all-reduce (sum, avg, max), reduce-scatter, all-gather, broadcast, barrier and AllReduce64\n" +
			"on data that depends on the rank, checking every element against the exact expected result.\n" +
			"Prints one line per operation and exits 0, or names the first wrong element and exits 1.\n" +
			"On SIGUSR1 it writes DIR/usr1-rank<r> (with --marker-dir) and exits 0: the stand-in for\n" +
			"the checkpoint-and-exit of worker train in the sbatch scripts' preemption flow.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "size-elements", Value: 1<<20 + 7, Usage: "float32 elements per collective (an odd count exercises uneven shards)"},
			&cli.IntFlag{Name: "iters", Value: 3, Usage: "repetitions of each collective, each on different data"},
			&cli.DurationFlag{Name: "timeout", Value: 60 * time.Second, Usage: "how long to wait for a peer (collective.Options.Timeout)"},
			&cli.IntFlag{Name: "hold", Usage: "seconds to wait after the checks, for signal tests"},
			&cli.StringFlag{Name: "marker-dir", Usage: "directory for the usr1-rank<r> marker written on SIGUSR1"},
		},
		Action: runSelftest,
	}
}

func runSelftest(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("selftest takes no arguments (got %q)", c.Args().Slice()), 2)
	}
	n, iters := c.Int("size-elements"), c.Int("iters")
	if n < 1 || iters < 1 {
		return cli.Exit(fmt.Sprintf("selftest: --size-elements %d and --iters %d must be at least 1", n, iters), 2)
	}
	env, err := slurm.FromEnv(os.Getenv)
	if err != nil {
		return fmt.Errorf("selftest: job environment: %w", err)
	}
	who := fmt.Sprintf("rank %d/%d", env.Rank, env.Size)
	onUSR1(who, env, c.String("marker-dir"))

	fmt.Printf("%s: env %s node %s local %d/%d master %s:%d job %q token %s\n", who, env.Source, env.Node,
		env.LocalRank, env.LocalSize, env.MasterAddr, env.MasterPort, env.JobID, tokenState(env.Token))
	if g, err := slurm.GPUForRank(env, os.Getenv); err != nil {
		fmt.Printf("%s: gpu none (%v)\n", who, err)
	} else {
		fmt.Printf("%s: gpu %s ordinal %d visible %d\n", who, g.ID, g.Ordinal, g.Visible)
	}

	ctx := context.Background()
	start := time.Now()
	comm, err := dial(ctx, env, collective.Options{Timeout: c.Duration("timeout")})
	if err != nil {
		return fmt.Errorf("selftest: %s: connect to %s:%d: %w", who, env.MasterAddr, env.MasterPort, err)
	}
	defer comm.Close()
	fmt.Printf("%s: connected in %v\n", who, time.Since(start).Round(time.Millisecond))

	for _, ck := range checks {
		start := time.Now()
		var sum uint64
		for it := range iters {
			h, err := ck.run(comm, n, it)
			if err != nil {
				return fmt.Errorf("selftest: %s: %s (iteration %d): %w", who, ck.name, it, err)
			}
			sum = sum*31 + h
		}
		per := time.Since(start) / time.Duration(iters)
		elems := n
		if ck.fixed {
			elems = ck.count
		}
		fmt.Printf("%s: %s ok %d elements x %d iters %v/iter checksum %016x\n", who, ck.name, elems, iters, per.Round(time.Microsecond), sum)
	}
	if hold := c.Int("hold"); hold > 0 {
		fmt.Printf("%s: holding for %d s (SIGUSR1 ends it)\n", who, hold)
		time.Sleep(time.Duration(hold) * time.Second)
	}
	fmt.Printf("%s: selftest ok\n", who)
	return nil
}

func tokenState(t string) string {
	if t == "" {
		return "unset"
	}
	return "set"
}

// onUSR1 makes SIGUSR1 write the marker file and exit 0, whatever the
// selftest is doing: what worker train will do with a checkpoint.
func onUSR1(who string, env slurm.Env, dir string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	go func() {
		<-ch
		if dir == "" {
			fmt.Printf("%s: SIGUSR1: exiting (no --marker-dir)\n", who)
			os.Exit(0)
		}
		path := filepath.Join(dir, fmt.Sprintf("usr1-rank%d", env.Rank))
		body := fmt.Sprintf("rank %d of %d, job %q, SIGUSR1 at %s\n", env.Rank, env.Size, env.JobID, time.Now().Format(time.RFC3339Nano))
		if err := writeAtomic(path, []byte(body)); err != nil {
			fmt.Fprintf(os.Stderr, "worker: selftest: %s: SIGUSR1: %v\n", who, err)
			os.Exit(1)
		}
		fmt.Printf("%s: SIGUSR1: wrote %s; exiting\n", who, path)
		os.Exit(0)
	}()
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("marker: %w (does --marker-dir exist?)", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("marker: %w", err)
	}
	return nil
}

// hostBuf is host memory for the TCP collectives (kernels.HostBuf).
type hostBuf []float32

func (b hostBuf) Len() int        { return len(b) }
func (b hostBuf) Host() []float32 { return b }
func newT(n int) (kernels.T, []float32) {
	b := make(hostBuf, n)
	return kernels.T{B: b, N: n}, b
}

// check is one collective, run on data that depends on the rank and the
// iteration; run returns a checksum of what this rank received.
type check struct {
	name  string
	fixed bool // count elements per call rather than --size-elements
	count int  // barrier 0, AllReduce64 len64
	run   func(c collective.Comm, n, it int) (uint64, error)
}

const len64 = 6

// The data. Every value is a small integer, so float32 sums over up to
// 2^13 ranks are exact in any order and the expected results are exact.
func sumData(r, i, it int) float32 { return float32((i*7+r*13+it*3)%1001 - 500) }
func maxData(r, i, it int) float32 { return float32((i*31 + r*17 + it*5) % 997) }
func gatherData(i, owner int) float32 {
	return float32((i%50000)*256 + owner%256)
}
func bcastData(i, root, it int) float32 { return float32((i*3 + root*7 + it) % 4099) }

var checks = []check{
	{name: "allreduce sum", run: func(c collective.Comm, n, it int) (uint64, error) {
		return allReduceCheck(c, n, it, collective.Sum)
	}},
	{name: "allreduce avg", run: func(c collective.Comm, n, it int) (uint64, error) {
		return allReduceCheck(c, n, it, collective.Avg)
	}},
	{name: "allreduce max", run: func(c collective.Comm, n, it int) (uint64, error) {
		return allReduceCheck(c, n, it, collective.Max)
	}},
	{name: "reducescatter sum", run: func(c collective.Comm, n, it int) (uint64, error) {
		x, xs := newT(n)
		for i := range xs {
			xs[i] = sumData(c.Rank(), i, it)
		}
		off, cnt := collective.Range(n, c.Rank(), c.Size())
		shard, ss := newT(cnt)
		if err := c.ReduceScatter(shard, x, collective.Sum); err != nil {
			return 0, err
		}
		for j := range ss {
			if want := expectSum(c.Size(), off+j, it); ss[j] != want {
				return 0, fmt.Errorf("shard element %d (global %d) = %v, want %v", j, off+j, ss[j], want)
			}
		}
		return checksum(ss), nil
	}},
	{name: "allgather", run: func(c collective.Comm, n, it int) (uint64, error) {
		off, cnt := collective.Range(n, c.Rank(), c.Size())
		shard, ss := newT(cnt)
		for j := range ss {
			ss[j] = gatherData(off+j+it, c.Rank())
		}
		x, xs := newT(n)
		for i := range xs {
			xs[i] = float32(math.NaN())
		}
		if err := c.AllGather(x, shard); err != nil {
			return 0, err
		}
		for r := range c.Size() {
			o, k := collective.Range(n, r, c.Size())
			for i := o; i < o+k; i++ {
				if want := gatherData(i+it, r); xs[i] != want {
					return 0, fmt.Errorf("element %d (from rank %d) = %v, want %v", i, r, xs[i], want)
				}
			}
		}
		return checksum(xs), nil
	}},
	{name: "broadcast", run: func(c collective.Comm, n, it int) (uint64, error) {
		root := it % c.Size()
		x, xs := newT(n)
		for i := range xs {
			if c.Rank() == root {
				xs[i] = bcastData(i, root, it)
			} else {
				xs[i] = float32(math.NaN())
			}
		}
		if err := c.Broadcast(x, root); err != nil {
			return 0, err
		}
		for i, v := range xs {
			if want := bcastData(i, root, it); v != want {
				return 0, fmt.Errorf("element %d = %v, want %v from root %d", i, v, want, root)
			}
		}
		return checksum(xs), nil
	}},
	{name: "barrier", fixed: true, run: func(c collective.Comm, n, it int) (uint64, error) {
		return 0, c.Barrier()
	}},
	{name: "allreduce64 sum", fixed: true, count: len64, run: func(c collective.Comm, n, it int) (uint64, error) {
		r, s := float64(c.Rank()), float64(c.Size())
		x := []float64{r, 1, r * r, 1e12 + r, -r, float64(it)}
		if err := c.AllReduce64(x, collective.Sum); err != nil {
			return 0, err
		}
		tri := s * (s - 1) / 2
		want := []float64{tri, s, (s - 1) * s * (2*s - 1) / 6, 1e12*s + tri, -tri, float64(it) * s}
		return check64(x, want)
	}},
	{name: "allreduce64 max", fixed: true, count: len64, run: func(c collective.Comm, n, it int) (uint64, error) {
		r, s := float64(c.Rank()), float64(c.Size())
		x := []float64{r, -r, float64(it), r * r, math.Inf(-1), -1e300}
		if err := c.AllReduce64(x, collective.Max); err != nil {
			return 0, err
		}
		want := []float64{s - 1, 0, float64(it), (s - 1) * (s - 1), math.Inf(-1), -1e300}
		return check64(x, want)
	}},
}

func allReduceCheck(c collective.Comm, n, it int, op collective.Op) (uint64, error) {
	x, xs := newT(n)
	for i := range xs {
		if op == collective.Max {
			xs[i] = maxData(c.Rank(), i, it)
		} else {
			xs[i] = sumData(c.Rank(), i, it)
		}
	}
	if err := c.AllReduce(x, op); err != nil {
		return 0, err
	}
	for i, v := range xs {
		var want float32
		switch op {
		case collective.Sum:
			want = expectSum(c.Size(), i, it)
		case collective.Avg:
			// The exact integer sum divided by the size, rounded once.
			want = expectSum(c.Size(), i, it) / float32(c.Size())
		case collective.Max:
			want = maxData(0, i, it)
			for r := 1; r < c.Size(); r++ {
				want = max(want, maxData(r, i, it))
			}
		}
		if v != want {
			return 0, fmt.Errorf("element %d = %v, want %v", i, v, want)
		}
	}
	return checksum(xs), nil
}

func expectSum(size, i, it int) float32 {
	s := 0
	for r := range size {
		s += int(sumData(r, i, it))
	}
	return float32(s)
}

func check64(x, want []float64) (uint64, error) {
	h := fnv.New64a()
	for i := range x {
		if x[i] != want[i] {
			return 0, fmt.Errorf("element %d = %v, want %v", i, x[i], want[i])
		}
		binary.Write(h, binary.LittleEndian, math.Float64bits(x[i]))
	}
	return h.Sum64(), nil
}

// checksum is FNV-1a over the float32 bits: ranks that received the same
// vector print the same checksum.
func checksum(x []float32) uint64 {
	h := fnv.New64a()
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	h.Write(b)
	return h.Sum64()
}
