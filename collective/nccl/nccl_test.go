//go:build cuda

package nccl

// These tests need a GPU and libnccl.so.2: gorgonia.org/cu exits the
// process at start-up when no GPU exists, so they are never part of
// `make test` (make check-cuda only compiles them). docs/nccl.md says how
// to run them.
//
// Two ways to run:
//   - one process (default): every rank is a goroutine on its own GPU,
//     for world sizes 1 to the number of visible GPUs;
//   - one process per rank, under `launcher run --nproc N` or srun: set
//     EARL_NCCL_TEST_STORE to a fresh directory all ranks can reach
//     (shared file system across nodes); rank and size come from RANK /
//     WORLD_SIZE or SLURM_PROCID / SLURM_NTASKS, the GPU from LOCAL_RANK
//     or SLURM_LOCALID (modulo the visible GPUs).
//
// Every collective is compared with a float64 reference computed on the
// host from every rank's input, which each rank can rebuild (input is a
// function of rank and index). Inputs are multiples of 1/4 in [-2, 2], so
// sums are exact in float32 whatever order NCCL adds in; only Avg (a
// division) is compared with a tolerance.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"earl/collective"
	"earl/kernels"
)

// memStore is an in-process Store for ranks that are goroutines.
type memStore struct {
	mu      sync.Mutex
	vals    map[string][]byte
	changed chan struct{} // closed and replaced on every Set
}

func newMemStore() *memStore {
	return &memStore{vals: map[string][]byte{}, changed: make(chan struct{})}
}

func (s *memStore) Set(key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[key] = append([]byte(nil), value...)
	close(s.changed)
	s.changed = make(chan struct{})
	return nil
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, error) {
	for {
		s.mu.Lock()
		v, ok := s.vals[key]
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return v, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("store key %q: %w", key, ctx.Err())
		}
	}
}

// fileStore is a Store in a directory shared by the ranks' processes:
// one file per key, written under a temporary name and renamed.
type fileStore struct{ dir string }

func (s fileStore) path(key string) string {
	return filepath.Join(s.dir, strings.ReplaceAll(key, "/", "_"))
}

func (s fileStore) Set(key string, value []byte) error {
	tmp := s.path(key) + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, value, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, s.path(key))
}

func (s fileStore) Get(ctx context.Context, key string) ([]byte, error) {
	for {
		v, err := os.ReadFile(s.path(key))
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return nil, fmt.Errorf("store key %q in %s: %w", key, s.dir, ctx.Err())
		}
	}
}

// devBuf is device memory in the shape kernels/cuda's buffers will have.
type devBuf struct {
	p cu.DevicePtr
	n int
}

func (b *devBuf) Len() int           { return b.n }
func (b *devBuf) DevicePtr() uintptr { return uintptr(b.p) }

// hostBuf is a host buffer, which the backend must refuse.
type hostBuf []float32

func (b hostBuf) Len() int        { return len(b) }
func (b hostBuf) Host() []float32 { return b }

// rank is one rank's communicator and helpers bound to its context.
type rank struct {
	t *testing.T
	c *Comm
}

// do runs f on a thread where the rank's context is current.
func (r rank) do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(r.c.ctx); err != nil {
		return err
	}
	return f()
}

func (r rank) alloc(n int) (kernels.T, error) {
	var b *devBuf
	err := r.do(func() error {
		p, err := cu.MemAlloc(int64(max(n, 1)) * 4)
		b = &devBuf{p: p, n: n}
		return err
	})
	return kernels.T{B: b, N: n}, err
}

func (r rank) free(t kernels.T) {
	if b, ok := t.B.(*devBuf); ok {
		r.do(func() error { return cu.MemFree(b.p) })
	}
}

func (r rank) upload(t kernels.T, v []float32) error {
	if len(v) == 0 {
		return nil
	}
	p := t.B.(*devBuf).p + cu.DevicePtr(t.Off*4)
	return r.do(func() error { return cu.MemcpyHtoD(p, unsafe.Pointer(&v[0]), int64(len(v))*4) })
}

func (r rank) download(t kernels.T) ([]float32, error) {
	v := make([]float32, t.N)
	if t.N == 0 {
		return v, nil
	}
	p := t.B.(*devBuf).p + cu.DevicePtr(t.Off*4)
	err := r.do(func() error { return cu.MemcpyDtoH(unsafe.Pointer(&v[0]), p, int64(len(v))*4) })
	return v, err
}

// input is rank r's value at index i (seed tells the cases apart):
// multiples of 1/4 in [-2, 2].
func input(seed, r, i int) float32 {
	return float32((seed*31+r*7+i*13)%17-8) / 4
}

func inputs(seed, r, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = input(seed, r, i)
	}
	return v
}

// reference is the reduction of every rank's input, in float64.
func reference(seed, size, n int, op collective.Op) []float64 {
	out := make([]float64, n)
	for i := range out {
		acc := float64(input(seed, 0, i))
		for r := 1; r < size; r++ {
			v := float64(input(seed, r, i))
			if op == collective.Max {
				acc = math.Max(acc, v)
			} else {
				acc += v
			}
		}
		if op == collective.Avg {
			acc /= float64(size)
		}
		out[i] = acc
	}
	return out
}

func compare(what string, got []float32, want []float64, op collective.Op) error {
	if len(got) != len(want) {
		return fmt.Errorf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - want[i])
		if d > 0 && (op != collective.Avg || d > 1e-6*math.Max(1, math.Abs(want[i]))) {
			return fmt.Errorf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
	return nil
}

// guard is the value around views, which a collective must not touch.
const guard = 12345

func guarded(n, pad int) []float32 {
	v := make([]float32, n+2*pad)
	for i := range v {
		v[i] = guard
	}
	return v
}

func checkGuards(what string, v []float32, pad int) error {
	for i := range pad {
		if v[i] != guard || v[len(v)-1-i] != guard {
			return fmt.Errorf("%s: a value outside the view changed", what)
		}
	}
	return nil
}

// world runs fn on every rank of a communicator of size ranks: as
// goroutines on GPUs device(r), or, under a launcher, as this process's
// rank (size and device are then the launcher's).
func world(t *testing.T, key string, size int, device func(r int) int, opt collective.Options, fn func(r rank) error) {
	t.Helper()
	if dir := os.Getenv("EARL_NCCL_TEST_STORE"); dir != "" {
		me, n := launched(t)
		c, err := New(context.Background(), me, n, fileStore{dir}, Config{Device: localDevice(t), Key: key}, opt)
		if err != nil {
			t.Fatalf("rank %d: %v", me, err)
		}
		defer c.Close()
		if err := fn(rank{t, c.(*Comm)}); err != nil {
			t.Fatalf("rank %d: %v", me, err)
		}
		return
	}
	store := newMemStore()
	errs := make([]error, size)
	var wg sync.WaitGroup
	for r := range size {
		wg.Go(func() {
			c, err := New(context.Background(), r, size, store, Config{Device: device(r), Key: key}, opt)
			if err != nil {
				errs[r] = err
				return
			}
			defer func() {
				if err := c.Close(); err != nil && errs[r] == nil {
					errs[r] = err
				}
			}()
			errs[r] = fn(rank{t, c.(*Comm)})
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d of %d: %v", r, size, err)
		}
	}
}

// launched is this process's rank and world size under a launcher.
func launched(t *testing.T) (rank, size int) {
	get := func(names ...string) int {
		for _, n := range names {
			if v := os.Getenv(n); v != "" {
				i, err := strconv.Atoi(v)
				if err != nil {
					t.Fatalf("%s=%q: %v", n, v, err)
				}
				return i
			}
		}
		t.Fatalf("EARL_NCCL_TEST_STORE is set but none of %v is", names)
		return 0
	}
	return get("RANK", "SLURM_PROCID"), get("WORLD_SIZE", "SLURM_NTASKS")
}

func localDevice(t *testing.T) int {
	n, err := cu.NumDevices()
	if err != nil || n == 0 {
		t.Fatalf("no CUDA device: %v", err)
	}
	for _, name := range []string{"LOCAL_RANK", "SLURM_LOCALID"} {
		if v := os.Getenv(name); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, v, err)
			}
			return i % n
		}
	}
	return 0
}

func multiProcess() bool { return os.Getenv("EARL_NCCL_TEST_STORE") != "" }

// sizes are the world sizes the one-process mode runs: 1, 2, 3 and every
// visible GPU, as far as there are GPUs (one rank per GPU, NCCL's rule).
func sizes(t *testing.T) []int {
	if multiProcess() {
		_, n := launched(t)
		return []int{n}
	}
	n, err := cu.NumDevices()
	if err != nil || n == 0 {
		t.Fatalf("no CUDA device: %v", err)
	}
	out := []int{1}
	for _, s := range []int{2, 3, n} {
		if s <= n && s > out[len(out)-1] {
			out = append(out, s)
		}
	}
	return out
}

func ownGPU(r int) int { return r }

// lengths are the vector lengths every collective is tried at: shorter
// than the world, not a multiple of it (padded), a multiple (direct),
// and large enough to take several padded calls when the budget is cut.
func lengths(size int) []int {
	return []int{1, 2, 3, 5, 8, 17, 1000, 1000 * size, 1000*size + 1, 1<<20 + 7}
}

// TestCollectives checks every operation against the float64 reference
// at every length, with native Avg and with the sum-then-scale fallback,
// and with the padded calls' scratch cut so that they take several calls.
func TestCollectives(t *testing.T) {
	for _, size := range sizes(t) {
		t.Run(fmt.Sprintf("size%d", size), func(t *testing.T) {
			world(t, t.Name(), size, ownGPU, collective.Options{Timeout: 60 * time.Second}, func(r rank) error {
				if r.c.lib.version < avgVersion && r.c.Rank() == 0 {
					t.Logf("NCCL %s has no ncclAvg: Avg is tested as sum-then-scale only", versionString(r.c.lib.version))
				}
				for _, variant := range []struct {
					name      string
					nativeAvg bool
					budget    int
				}{
					{"native", r.c.nativeAvg, r.c.budget},
					{"scale-avg", false, r.c.budget},
					{"small-scratch", r.c.nativeAvg, 3 * size},
				} {
					r.c.nativeAvg, r.c.budget = variant.nativeAvg, variant.budget
					for _, n := range lengths(size) {
						if variant.name == "small-scratch" && n > 5000 {
							continue // thousands of calls: slow, and no new path
						}
						if err := allOps(r, n); err != nil {
							return fmt.Errorf("%s, n=%d: %w", variant.name, n, err)
						}
					}
				}
				return nil
			})
		})
	}
}

// allOps runs every collective once at length n on rank r.
func allOps(r rank, n int) error {
	c := r.c
	size, me := c.Size(), c.Rank()
	const pad = 3
	buf, err := r.alloc(n + 2*pad)
	if err != nil {
		return err
	}
	defer r.free(buf)
	x := buf.View(pad, n)
	load := func(seed int) error {
		v := guarded(n, pad)
		copy(v[pad:], inputs(seed, me, n))
		return r.upload(buf, v)
	}
	result := func(what string) ([]float32, error) {
		v, err := r.download(buf)
		if err != nil {
			return nil, err
		}
		return v[pad : pad+n], checkGuards(what, v, pad)
	}
	ops := []collective.Op{collective.Sum, collective.Avg, collective.Max}

	for k, op := range ops {
		seed := 10 + k
		if err := load(seed); err != nil {
			return err
		}
		if err := c.AllReduce(x, op); err != nil {
			return err
		}
		got, err := result("all-reduce " + op.String())
		if err != nil {
			return err
		}
		if err := compare("all-reduce "+op.String(), got, reference(seed, size, n, op), op); err != nil {
			return err
		}
	}

	off, cnt := collective.Range(n, me, size)
	sbuf, err := r.alloc(cnt + 2*pad)
	if err != nil {
		return err
	}
	defer r.free(sbuf)
	separate := sbuf.View(pad, cnt)
	for k, op := range ops {
		for _, inPlace := range []bool{false, true} {
			seed := 20 + k
			what := fmt.Sprintf("reduce-scatter %s (in place %v)", op, inPlace)
			if err := load(seed); err != nil {
				return err
			}
			shard := separate
			if inPlace {
				shard = x.View(off, cnt)
			} else if err := r.upload(sbuf, guarded(cnt, pad)); err != nil {
				return err
			}
			if err := c.ReduceScatter(shard, x, op); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			want := reference(seed, size, n, op)[off : off+cnt]
			var got []float32
			if inPlace {
				all, err := result(what)
				if err != nil {
					return err
				}
				got = all[off : off+cnt]
				// The rest of x is the caller's input, untouched.
				for i, v := range inputs(seed, me, n) {
					if (i < off || i >= off+cnt) && all[i] != v {
						return fmt.Errorf("%s: x[%d] outside the shard changed", what, i)
					}
				}
			} else {
				all, err := r.download(sbuf)
				if err != nil {
					return err
				}
				if err := checkGuards(what, all, pad); err != nil {
					return err
				}
				got = all[pad : pad+cnt]
			}
			if err := compare(what, got, want, op); err != nil {
				return err
			}
		}
	}

	for _, inPlace := range []bool{false, true} {
		what := fmt.Sprintf("all-gather (in place %v)", inPlace)
		// Each rank's shard holds that rank's part of seed 30's input of
		// rank 0, so the gathered vector is that input.
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(input(30, 0, i))
		}
		if err := r.upload(buf, guarded(n, pad)); err != nil {
			return err
		}
		mine := inputs(30, 0, n)[off : off+cnt]
		shard := separate
		if inPlace {
			shard = x.View(off, cnt)
		}
		if err := r.upload(shard, mine); err != nil {
			return err
		}
		if err := c.AllGather(x, shard); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		got, err := result(what)
		if err != nil {
			return err
		}
		if err := compare(what, got, want, collective.Sum); err != nil {
			return err
		}
	}

	for _, root := range []int{0, size - 1} {
		what := fmt.Sprintf("broadcast from %d", root)
		if err := load(40 + root); err != nil {
			return err
		}
		if err := c.Broadcast(x, root); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		want := make([]float64, n)
		for i := range want {
			want[i] = float64(input(40+root, root, i))
		}
		got, err := result(what)
		if err != nil {
			return err
		}
		if err := compare(what, got, want, collective.Sum); err != nil {
			return err
		}
	}

	if n <= 4096 { // a host vector: metrics, norms
		for k, op := range ops {
			seed := 50 + k
			v := make([]float64, n)
			for i := range v {
				v[i] = float64(input(seed, me, i))
			}
			if err := c.AllReduce64(v, op); err != nil {
				return err
			}
			want := reference(seed, size, n, op)
			for i := range v {
				if math.Abs(v[i]-want[i]) > 1e-12*math.Max(1, math.Abs(want[i])) {
					return fmt.Errorf("all-reduce64 %s: [%d] = %v, want %v", op, i, v[i], want[i])
				}
			}
		}
	}
	return c.Barrier()
}

// TestArguments checks that misuse is refused before NCCL is called
// (which would otherwise corrupt memory or hang).
func TestArguments(t *testing.T) {
	if multiProcess() {
		t.Skip("one-process test")
	}
	world(t, t.Name(), 1, ownGPU, collective.Options{Timeout: 10 * time.Second}, func(r rank) error {
		c := r.c
		x, err := r.alloc(10)
		if err != nil {
			return err
		}
		defer r.free(x)
		y, err := r.alloc(20)
		if err != nil {
			return err
		}
		defer r.free(y)
		host := kernels.T{B: hostBuf(make([]float32, 10)), N: 10}
		cases := []struct {
			name string
			err  error
		}{
			{"host buffer", c.AllReduce(host, collective.Sum)},
			{"view past its buffer", c.AllReduce(kernels.T{B: x.B, Off: 5, N: 10}, collective.Sum)},
			{"unknown op", c.AllReduce(x, collective.Op(9))},
			{"short shard", c.ReduceScatter(x.View(0, 9), x, collective.Sum)},
			// Rank 0 of 1 owns all of y[0:10]; y[1:11] overlaps it
			// without being it.
			{"overlapping shard", c.ReduceScatter(y.View(1, 10), y.View(0, 10), collective.Sum)},
			{"root out of range", c.Broadcast(x, 1)},
		}
		for _, tc := range cases {
			if tc.err == nil {
				return fmt.Errorf("%s: accepted", tc.name)
			}
			t.Logf("%s: %v", tc.name, tc.err)
		}
		// Refused arguments leave the communicator usable.
		return c.AllReduce(x, collective.Sum)
	})
}

// TestMissingRank: a rank that never checks in is named by rank 0 within
// the timeout, before NCCL is involved.
func TestMissingRank(t *testing.T) {
	if multiProcess() {
		t.Skip("one-process test")
	}
	start := time.Now()
	_, err := New(context.Background(), 0, 2, newMemStore(), Config{Key: t.Name()}, collective.Options{Timeout: 2 * time.Second})
	var pe *collective.PeerError
	if !errors.As(err, &pe) || pe.Rank != 1 {
		t.Fatalf("New with rank 1 missing: %v, want a PeerError naming rank 1", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v for a 2 s timeout", d)
	}
	t.Log(err)
}

// TestTimeout: a rank that does not join a collective makes the others
// fail with an error naming the operation after the timeout, never hang;
// the communicator then refuses further work.
func TestTimeout(t *testing.T) {
	if multiProcess() {
		t.Skip("one-process test")
	}
	if n, _ := cu.NumDevices(); n < 2 {
		t.Skip("needs two GPUs")
	}
	const limit = 3 * time.Second
	world(t, t.Name(), 2, ownGPU, collective.Options{Timeout: limit}, func(r rank) error {
		x, err := r.alloc(1 << 16)
		if err != nil {
			return err
		}
		defer r.free(x)
		if r.c.Rank() == 1 {
			// Rank 1 skips the all-reduce; once rank 0 has given up it
			// aborts too, as a process that failed would.
			time.Sleep(limit + 2*time.Second)
			r.c.abort()
			r.c.broken = errors.New("test: rank 1 left")
			return nil
		}
		start := time.Now()
		err = r.c.AllReduce(x, collective.Sum)
		var ne *Error
		if !errors.As(err, &ne) || !ne.Timeout() || ne.Op != "all-reduce" {
			return fmt.Errorf("all-reduce without rank 1: %v, want a timeout of all-reduce", err)
		}
		if d := time.Since(start); d < limit || d > limit+5*time.Second {
			return fmt.Errorf("timed out after %v, want about %v", d, limit)
		}
		t.Log(err)
		if err := r.c.Barrier(); err == nil {
			return errors.New("barrier on an aborted communicator succeeded")
		}
		return nil
	})
}

// TestTwoRanksOneGPU: NCCL's rule is one rank per GPU within a
// communicator; NCCL 2.x refuses a second rank on the same device in
// ncclCommInitRank ("Duplicate GPU detected", ncclInvalidUsage). Should a
// later NCCL accept it, the collectives must then be right, which is
// checked instead. Either way: no hang.
func TestTwoRanksOneGPU(t *testing.T) {
	if multiProcess() {
		t.Skip("one-process test")
	}
	store := newMemStore()
	errs := make([]error, 2)
	comms := make([]collective.Comm, 2)
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			comms[r], errs[r] = New(context.Background(), r, 2, store, Config{Device: 0, Key: t.Name()},
				collective.Options{Timeout: 30 * time.Second})
		})
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		for r, err := range errs {
			var ne *Error
			if err != nil && !(errors.As(err, &ne) && ne.Result == resInvalidUsage) {
				t.Errorf("rank %d: %v, want ncclInvalidUsage (duplicate GPU)", r, err)
			}
			if comms[r] != nil {
				comms[r].(*Comm).abort()
				comms[r].(*Comm).broken = errors.New("test: peer refused")
				comms[r].Close()
			}
		}
		t.Logf("refused, as NCCL's rule says: %v / %v", errs[0], errs[1])
		return
	}
	t.Log("this NCCL accepts two ranks on one GPU: checking results")
	errs = make([]error, 2)
	for r := range 2 {
		wg.Go(func() {
			rk := rank{t, comms[r].(*Comm)}
			errs[r] = errors.Join(allOps(rk, 1001), comms[r].Close())
		})
	}
	wg.Wait()
	for r, err := range errs {
		if err != nil {
			t.Errorf("rank %d: %v", r, err)
		}
	}
}

// TestMissingLibrary: without libnccl.so.2 the error says what to do.
func TestMissingLibrary(t *testing.T) {
	t.Setenv("EARL_NCCL_LIB", "/nonexistent/libnccl.so.2")
	_, err := open()
	if err == nil {
		t.Fatal("opened a library that does not exist")
	}
	for _, want := range []string{"module load nccl", "LD_LIBRARY_PATH", "EARL_NCCL_LIB"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NCCL %s", v)
}
