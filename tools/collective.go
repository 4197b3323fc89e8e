package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"earl/collective"
	"earl/kernels/cpu"
)

// benchCollectiveCommand times earl's ring collectives the way
// nccl-tests times NCCL's, one process per rank, so the numbers sit beside
// nccl-tests and the Open MPI reference (tools/bench/mpi_collectives.c,
// which prints the same line format).
func benchCollectiveCommand() *cli.Command {
	return &cli.Command{
		Name:  "collective",
		Usage: "time all-reduce / reduce-scatter / all-gather over the ring, nccl-tests style (run one process per rank)",
		UsageText: "launcher run --nproc N -- tools bench collective --op allreduce|reduce_scatter|allgather\n" +
			"      --min-bytes B --max-bytes B [--iters N] [--warmup N] [--check]",
		Description: "Reads the job from RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and EARL_JOB_TOKEN (torchrun style;\n" +
			"`launcher run` sets them). For every power of two from --min-bytes to --max-bytes, rank 0 prints\n" +
			"  op bytes count time_us algbw_GBps busbw_GBps #wrong\n" +
			"with nccl-tests' conventions: bytes is the full vector (all three ops); count is its elements for\n" +
			"allreduce and one rank's shard for reduce_scatter and allgather (the vector is count x ranks, the\n" +
			"size rounded down to a multiple of the rank count); time is the mean over --iters back-to-back\n" +
			"calls after --warmup, averaged over ranks; algbw = bytes / time (1 GB = 1e9 B); busbw = algbw x\n" +
			"2(n-1)/n for allreduce, x (n-1)/n for reduce_scatter and allgather. With --check, one more call\n" +
			"on inputs whose exact results are known checks every element on every rank; #wrong is the total\n" +
			"(N/A without --check).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "op", Value: "allreduce", Usage: "allreduce, reduce_scatter or allgather"},
			&cli.StringFlag{Name: "min-bytes", Value: "1K", Usage: "smallest size (suffixes K, M, G: powers of 1024)"},
			&cli.StringFlag{Name: "max-bytes", Value: "64M", Usage: "largest size"},
			&cli.IntFlag{Name: "iters", Value: 20, Usage: "timed calls per size"},
			&cli.IntFlag{Name: "warmup", Value: 5, Usage: "untimed calls per size first"},
			&cli.BoolFlag{Name: "check", Usage: "check every element of one more call"},
			&cli.IntFlag{Name: "chunk-bytes", Usage: "Options.ChunkBytes (default 1 MiB)"},
			&cli.DurationFlag{Name: "timeout", Usage: "Options.Timeout (default 60s)"},
			&cli.StringFlag{Name: "interface", Usage: "Options.Interface: interface name or address to bind"},
		},
		Action: benchCollective,
	}
}

// jobEnv reads the torchrun-style job description from the environment.
func jobEnv() (rank, size int, addr string, port int, token string, err error) {
	get := func(name string) (string, error) {
		v := os.Getenv(name)
		if v == "" {
			return "", fmt.Errorf("%s is not set: run each rank under `launcher run --nproc N -- tools bench collective ...`, "+
				"or set RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and EARL_JOB_TOKEN yourself", name)
		}
		return v, nil
	}
	num := func(name string) (int, error) {
		v, err := get(name)
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("%s=%q is not a number", name, v)
		}
		return n, nil
	}
	if rank, err = num("RANK"); err != nil {
		return
	}
	if size, err = num("WORLD_SIZE"); err != nil {
		return
	}
	if addr, err = get("MASTER_ADDR"); err != nil {
		return
	}
	if port, err = num("MASTER_PORT"); err != nil {
		return
	}
	token, err = get("EARL_JOB_TOKEN")
	return
}

// parseBytes reads 1024, 64K, 16M, 1G (powers of 1024).
func parseBytes(s string) (int, error) {
	mult := 1
	t := strings.ToUpper(strings.TrimSpace(s))
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive byte count such as 1024, 64K or 16M", s)
	}
	return n * mult, nil
}

func benchCollective(c *cli.Context) error {
	op := c.String("op")
	if op != "allreduce" && op != "reduce_scatter" && op != "allgather" {
		return fmt.Errorf("bench collective: --op %q: want allreduce, reduce_scatter or allgather", op)
	}
	minB, err := parseBytes(c.String("min-bytes"))
	if err != nil {
		return fmt.Errorf("bench collective: --min-bytes: %w", err)
	}
	maxB, err := parseBytes(c.String("max-bytes"))
	if err != nil {
		return fmt.Errorf("bench collective: --max-bytes: %w", err)
	}
	if minB > maxB {
		return fmt.Errorf("bench collective: --min-bytes %d exceeds --max-bytes %d", minB, maxB)
	}
	iters, warmup := c.Int("iters"), c.Int("warmup")
	if iters < 1 || warmup < 0 {
		return fmt.Errorf("bench collective: --iters %d --warmup %d: need iters >= 1, warmup >= 0", iters, warmup)
	}
	rank, size, addr, port, token, err := jobEnv()
	if err != nil {
		return fmt.Errorf("bench collective: %w", err)
	}
	opt := collective.Options{ChunkBytes: c.Int("chunk-bytes"), Timeout: c.Duration("timeout"), Interface: c.String("interface")}
	comm, err := collective.Dial(context.Background(), rank, size, addr, port, token, opt)
	if err != nil {
		return fmt.Errorf("bench collective: %w", err)
	}
	defer comm.Close()

	// One allocation for the largest size; each size uses its prefix.
	xbuf := make([]float32, maxB/4)
	sbuf := make([]float32, maxB/4/size+1)
	factor := 2 * float64(size-1) / float64(size)
	if op != "allreduce" {
		factor = float64(size-1) / float64(size)
	}
	if rank == 0 {
		check := "off"
		if c.Bool("check") {
			check = "on"
		}
		chunk := opt.ChunkBytes
		if chunk == 0 {
			chunk = 1 << 20
		}
		transport := os.Getenv("EARL_COLLECTIVE_TRANSPORT")
		if transport == "" {
			transport = "auto"
		}
		fmt.Printf("# earl %s, float32 sum, %d rank(s) on the ring (EARL_COLLECTIVE_TRANSPORT=%s, chunk %d B), warmup %d, iters %d, check %s\n",
			op, size, transport, chunk, warmup, iters, check)
		fmt.Printf("# %-14s %12s %12s %10s %11s %11s %7s\n", "op", "bytes", "count", "time_us", "algbw_GBps", "busbw_GBps", "#wrong")
	}
	for bytes := minB; bytes <= maxB; bytes *= 2 {
		// nccl-tests' counts: all-reduce reduces bytes/4 elements; the
		// others move a vector of ranks x (bytes/4/ranks) elements.
		full, per := bytes/4, bytes/4/size
		if op != "allreduce" {
			full = per * size
		}
		x := cpu.Wrap(xbuf[:full])
		off, _ := collective.Range(full, rank, size)
		shard := cpu.Wrap(sbuf[:per])
		run := func() error {
			switch op {
			case "allreduce":
				return comm.AllReduce(x, collective.Sum)
			case "reduce_scatter":
				return comm.ReduceScatter(shard, x, collective.Sum)
			}
			return comm.AllGather(x, shard)
		}
		clear(xbuf[:full])
		clear(sbuf[:per])
		for range warmup {
			if err := run(); err != nil {
				return fmt.Errorf("bench collective: %d bytes: %w", bytes, err)
			}
		}
		if err := comm.Barrier(); err != nil {
			return fmt.Errorf("bench collective: %w", err)
		}
		start := time.Now()
		for range iters {
			if err := run(); err != nil {
				return fmt.Errorf("bench collective: %d bytes: %w", bytes, err)
			}
		}
		t := []float64{time.Since(start).Seconds() / float64(iters), 0}
		wrong := "N/A"
		if c.Bool("check") {
			fillCheck(op, xbuf[:full], sbuf[:per], rank)
			if err := run(); err != nil {
				return fmt.Errorf("bench collective: check at %d bytes: %w", bytes, err)
			}
			t[1] = float64(countWrong(op, xbuf[:full], sbuf[:per], off, rank, size))
		}
		// Mean time over ranks, total wrong elements.
		if err := comm.AllReduce64(t[:1], collective.Avg); err != nil {
			return fmt.Errorf("bench collective: %w", err)
		}
		if err := comm.AllReduce64(t[1:], collective.Sum); err != nil {
			return fmt.Errorf("bench collective: %w", err)
		}
		if c.Bool("check") {
			wrong = strconv.FormatFloat(t[1], 'f', 0, 64)
		}
		if rank == 0 {
			algbw := float64(full*4) / t[0] / 1e9
			count := full
			if op != "allreduce" {
				count = per
			}
			fmt.Printf("  %-14s %12d %12d %10.1f %11.3f %11.3f %7s\n", op, full*4, count, t[0]*1e6, algbw, algbw*factor, wrong)
		}
	}
	return nil
}

// checkValue is rank r's input at element i: small integers, so every sum
// over ranks is exact in float32 and the expected result is known.
func checkValue(r, i int) float32 { return float32((r+1)*3 + i%97) }

// fillCheck writes the check inputs: the whole vector for all-reduce and
// reduce-scatter, this rank's shard (and NaN elsewhere, which must be
// overwritten) for all-gather.
func fillCheck(op string, x, shard []float32, rank int) {
	if op == "allgather" {
		off := rank * len(shard)
		for i := range x {
			x[i] = float32(math.NaN())
		}
		for j := range shard {
			shard[j] = checkValue(rank, off+j)
		}
		return
	}
	for i := range x {
		x[i] = checkValue(rank, i)
	}
}

// expectedSum is the exact sum over ranks of checkValue(r, i).
func expectedSum(i, size int) float32 {
	var s int
	for r := range size {
		s += (r+1)*3 + i%97
	}
	return float32(s)
}

func countWrong(op string, x, shard []float32, off, rank, size int) int {
	wrong := 0
	switch op {
	case "allreduce":
		for i, v := range x {
			if v != expectedSum(i, size) {
				wrong++
			}
		}
	case "reduce_scatter":
		for j, v := range shard {
			if v != expectedSum(off+j, size) {
				wrong++
			}
		}
	case "allgather":
		per := len(shard)
		for i, v := range x {
			if v != checkValue(i/per, i) {
				wrong++
			}
		}
	}
	return wrong
}
