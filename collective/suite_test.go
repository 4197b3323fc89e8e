package collective

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"earl/kernels/cpu"
)

// Inputs are a pure function of (seed, rank, index), so every rank — a
// goroutine here or a separate process — can compute the reference for
// the whole job by itself. Values mix signs and magnitudes (2^-3 to 2^3)
// so that rounding actually happens.
func mix(seed uint64, rank, i int) uint64 {
	z := seed ^ uint64(rank)<<40 ^ uint64(i)*0x9E3779B97F4A7C15
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

func input32(seed uint64, rank, i int) float32 {
	h := mix(seed, rank, i)
	return float32(int32(h>>32)) / (1 << 31) * float32(math.Ldexp(1, int(h&7)-3))
}

func input64(seed uint64, rank, i int) float64 {
	h := mix(seed, rank, i)
	return float64(int64(h)) / (1 << 63) * math.Ldexp(1, int(h>>61)-3)
}

func fill32(x []float32, seed uint64, rank int) {
	for i := range x {
		x[i] = input32(seed, rank, i)
	}
}

// owner is the rank whose Range holds element i.
func owner(n, size, i int) int {
	for k := 0; k < size; k++ {
		off, cnt := Range(n, k, size)
		if i >= off && i < off+cnt {
			return k
		}
	}
	panic("element outside the vector")
}

// ringReduce32 is the documented summation order: the shard owned by k
// is reduced starting at rank k+1, one rank per hop, ending with rank k;
// Avg divides the finished sum.
func ringReduce32(v func(r int) float32, k, size int, op Op) float32 {
	acc := v((k + 1) % size)
	for j := 2; j <= size; j++ {
		x := v((k + j) % size)
		switch op {
		case Max:
			acc = max(acc, x)
		default:
			acc += x
		}
	}
	if op == Avg {
		acc /= float32(size)
	}
	return acc
}

func ringReduce64(v func(r int) float64, k, size int, op Op) float64 {
	acc := v((k + 1) % size)
	for j := 2; j <= size; j++ {
		x := v((k + j) % size)
		switch op {
		case Max:
			acc = max(acc, x)
		default:
			acc += x
		}
	}
	if op == Avg {
		acc /= float64(size)
	}
	return acc
}

// check32 compares got[i] (element base+i of the full vector) with the
// float64 reference within the bound of a float32 sum of size terms in
// any order, size·eps·Σ|x| (recursive summation's error is at most
// (size-1)·u·Σ|x|, u = eps/2; Avg adds one rounding of the quotient), and
// with the ring-order float32 value bit for bit.
func check32(got []float32, base, n int, seed uint64, size int, op Op) error {
	eps := float64(math.Nextafter32(1, 2) - 1)
	for i, g := range got {
		e := base + i
		v := func(r int) float32 { return input32(seed, r, e) }
		var ref, abs float64
		for r := 0; r < size; r++ {
			x := float64(v(r))
			abs += math.Abs(x)
			if op == Max {
				if r == 0 || x > ref {
					ref = x
				}
			} else {
				ref += x
			}
		}
		tol := float64(size) * eps * abs
		if op == Avg {
			ref /= float64(size)
			tol /= float64(size)
		}
		if op == Max {
			tol = 0
		}
		if d := math.Abs(float64(g) - ref); d > tol || math.IsNaN(float64(g)) {
			return fmt.Errorf("element %d: got %g, float64 reference %g (|diff| %g > tolerance %g)", e, g, ref, d, tol)
		}
		if want := ringReduce32(v, owner(n, size, e), size, op); math.Float32bits(g) != math.Float32bits(want) {
			return fmt.Errorf("element %d: got %g, ring-order sum %g: not the documented summation order", e, g, want)
		}
	}
	return nil
}

func check64(got []float64, n int, seed uint64, size int, op Op) error {
	for e, g := range got {
		v := func(r int) float64 { return input64(seed, r, e) }
		var ref, abs float64
		for r := 0; r < size; r++ {
			x := v(r)
			abs += math.Abs(x)
			if op == Max {
				if r == 0 || x > ref {
					ref = x
				}
			} else {
				ref += x
			}
		}
		tol := float64(size) * 0x1p-52 * abs
		if op == Avg {
			ref /= float64(size)
			tol /= float64(size)
		}
		if op == Max {
			tol = 0
		}
		if d := math.Abs(g - ref); d > tol {
			return fmt.Errorf("element %d: got %g, reference %g (|diff| %g > %g)", e, g, ref, d, tol)
		}
		if want := ringReduce64(v, owner(n, size, e), size, op); g != want {
			return fmt.Errorf("element %d: got %g, ring-order sum %g", e, g, want)
		}
	}
	return nil
}

// suiteSizes cover a single element, counts below, at and above the
// world size, counts not divisible by it, and several chunks per shard
// when ChunkBytes is small.
var suiteSizes = []int{0, 1, 2, 3, 5, 7, 64, 1000, 1001, 4099, 65537}

// runSuite is one rank's part of every collective at every size, each
// checked against the float64 reference. All ranks run it concurrently.
func runSuite(c Comm, sizes []int, seed uint64) error {
	rank, size := c.Rank(), c.Size()
	for si, n := range sizes {
		s := seed + uint64(si)*1000
		// AllReduce: sum, avg, max.
		for _, op := range []Op{Sum, Avg, Max} {
			x := make([]float32, n)
			fill32(x, s, rank)
			if err := c.AllReduce(cpu.Wrap(x), op); err != nil {
				return fmt.Errorf("allreduce %v n=%d: %w", op, n, err)
			}
			if err := check32(x, 0, n, s, size, op); err != nil {
				return fmt.Errorf("allreduce %v n=%d on rank %d: %w", op, n, rank, err)
			}
		}
		// AllReduce64 (metrics): small and large.
		for _, op := range []Op{Sum, Avg, Max} {
			x := make([]float64, min(n, 4099))
			for i := range x {
				x[i] = input64(s, rank, i)
			}
			if err := c.AllReduce64(x, op); err != nil {
				return fmt.Errorf("allreduce64 %v n=%d: %w", op, len(x), err)
			}
			if err := check64(x, len(x), s, size, op); err != nil {
				return fmt.Errorf("allreduce64 %v n=%d on rank %d: %w", op, len(x), rank, err)
			}
		}
		// ReduceScatter, separate and in place.
		off, cnt := Range(n, rank, size)
		for _, op := range []Op{Sum, Avg} {
			for _, inPlace := range []bool{false, true} {
				x := make([]float32, n)
				fill32(x, s, rank)
				xt := cpu.Wrap(x)
				shard := xt.View(off, cnt)
				if !inPlace {
					shard = cpu.Wrap(make([]float32, cnt))
				}
				if err := c.ReduceScatter(shard, xt, op); err != nil {
					return fmt.Errorf("reduce_scatter %v n=%d: %w", op, n, err)
				}
				got := x[off : off+cnt]
				if !inPlace {
					got = cpu.Floats(shard)
				}
				if err := check32(got, off, n, s, size, op); err != nil {
					return fmt.Errorf("reduce_scatter %v n=%d in place %v on rank %d: %w", op, n, inPlace, rank, err)
				}
			}
		}
		// AllGather, separate and in place.
		for _, inPlace := range []bool{false, true} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(math.NaN()) // must all be overwritten
			}
			xt := cpu.Wrap(x)
			shard := xt.View(off, cnt)
			if !inPlace {
				shard = cpu.Wrap(make([]float32, cnt))
			}
			sh := cpu.Floats(shard)
			for i := range sh {
				sh[i] = input32(s, 99, off+i)
			}
			if err := c.AllGather(xt, shard); err != nil {
				return fmt.Errorf("allgather n=%d: %w", n, err)
			}
			for i, v := range x {
				if w := input32(s, 99, i); math.Float32bits(v) != math.Float32bits(w) {
					return fmt.Errorf("allgather n=%d in place %v on rank %d: element %d = %g, want %g", n, inPlace, rank, i, v, w)
				}
			}
		}
		// Broadcast from every root.
		for root := 0; root < size; root++ {
			x := make([]float32, n)
			fill32(x, s, rank)
			if err := c.Broadcast(cpu.Wrap(x), root); err != nil {
				return fmt.Errorf("broadcast root %d n=%d: %w", root, n, err)
			}
			for i, v := range x {
				if w := input32(s, root, i); math.Float32bits(v) != math.Float32bits(w) {
					return fmt.Errorf("broadcast root %d n=%d on rank %d: element %d = %g, want %g", root, n, rank, i, v, w)
				}
			}
		}
		if err := c.Barrier(); err != nil {
			return fmt.Errorf("barrier: %w", err)
		}
	}
	return nil
}

// each runs f for every rank concurrently and returns the errors.
func each(comms []Comm, f func(c Comm) error) []error {
	errs := make([]error, len(comms))
	var wg sync.WaitGroup
	for r, c := range comms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = f(c)
		}()
	}
	wg.Wait()
	return errs
}

func mustAll(t testing.TB, errs []error) {
	t.Helper()
	for r, err := range errs {
		if err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const testToken = "test-token-0123456789"

// dialJob starts a TCP job of n ranks on 127.0.0.1, each rank its own
// Dial in its own goroutine, and closes it when the test ends.
func dialJob(t testing.TB, n int, opt Options) []Comm {
	t.Helper()
	port := freePort(t)
	comms := make([]Comm, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for r := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			comms[r], errs[r] = Dial(context.Background(), r, n, "127.0.0.1", port, testToken, opt)
		}()
	}
	wg.Wait()
	t.Cleanup(func() {
		each(comms, func(c Comm) error {
			if c != nil {
				c.Close()
			}
			return nil
		})
	})
	mustAll(t, errs)
	return comms
}

func TestRange(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 16, 1001} {
		for size := 1; size <= 6; size++ {
			next := 0
			for r := 0; r < size; r++ {
				off, cnt := Range(n, r, size)
				if off != next || cnt < n/size || cnt > n/size+1 {
					t.Fatalf("Range(%d, %d, %d) = %d, %d", n, r, size, off, cnt)
				}
				next = off + cnt
			}
			if next != n {
				t.Fatalf("Range(%d, *, %d) covers %d", n, size, next)
			}
		}
	}
}

// Every op, every size, world sizes 1 to 5, in process.
func TestInProcessOps(t *testing.T) {
	for size := 1; size <= 5; size++ {
		t.Run(fmt.Sprint("size", size), func(t *testing.T) {
			mustAll(t, each(NewInProcess(size), func(c Comm) error { return runSuite(c, suiteSizes, 7) }))
		})
	}
}

// transports are the ways ranks on one host can talk, as Options for
// dialJob: Unix sockets with payloads in shared memory (the default),
// Unix sockets with payloads on the socket, and TCP loopback (the path
// between hosts).
var transports = []struct {
	name string
	opt  Options
}{
	{"shm", Options{}},
	{"socket", Options{noShm: true}},
	{"tcp", Options{tcpOnly: true}},
}

// The same over the ring: every rank its own Dial on 127.0.0.1, one
// communicator per world size reused for all sizes and ops, on every
// transport. 256-byte chunks at size 3 make every shard many chunks.
func TestTCPOps(t *testing.T) {
	for _, tr := range transports {
		for size := 1; size <= 5; size++ {
			t.Run(fmt.Sprintf("%s/size%d", tr.name, size), func(t *testing.T) {
				t.Parallel()
				opt := tr.opt
				opt.Timeout = 20 * time.Second
				mustAll(t, each(dialJob(t, size, opt), func(c Comm) error {
					return runSuite(c, suiteSizes, 7)
				}))
			})
		}
		t.Run(tr.name+"/size3-chunk256", func(t *testing.T) {
			t.Parallel()
			opt := tr.opt
			opt.Timeout, opt.ChunkBytes = 20*time.Second, 256
			mustAll(t, each(dialJob(t, 3, opt), func(c Comm) error {
				return runSuite(c, suiteSizes, 8)
			}))
		})
	}
}

// Ranks on one host pick the transport asked for.
func TestTransportChoice(t *testing.T) {
	for _, tr := range transports {
		comms := dialJob(t, 2, tr.opt)
		c := comms[0].(*ringComm)
		_, unix := c.right.(*net.UnixConn)
		if shm := tr.name == "shm"; unix == tr.opt.tcpOnly || (c.shmSend != nil) != shm || (c.shmRecv != nil) != shm {
			t.Errorf("%s: right is %T, shared memory send %v receive %v", tr.name, c.right, c.shmSend != nil, c.shmRecv != nil)
		}
	}
}

// The big-endian path (explicit little-endian encoding) gives the same
// bits.
func TestTCPEncodedWire(t *testing.T) {
	if !encodeWire {
		encodeWire = true
		defer func() { encodeWire = false }()
	}
	for _, tr := range transports {
		opt := tr.opt
		opt.Timeout, opt.ChunkBytes = 20*time.Second, 4096
		mustAll(t, each(dialJob(t, 3, opt), func(c Comm) error {
			return runSuite(c, []int{1, 7, 1001, 65537}, 9)
		}))
	}
}

// 64 MiB (16M float32, not divisible by 3) once per backend and op
// family — the sizes that dominate the test's run time, so they are not
// repeated per world size or transport: all-reduce through shared memory
// and reduce-scatter + all-gather over TCP at 3 ranks, in-process
// all-reduce at 4 ranks.
func TestLarge64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB vectors")
	}
	const n = 16 << 20
	big := func(t *testing.T, comms []Comm, seed uint64, op Op, rsag bool) {
		size := len(comms)
		xs := make([][]float32, size)
		for r := range xs {
			xs[r] = make([]float32, n)
			fill32(xs[r], seed, r)
		}
		start := time.Now()
		mustAll(t, each(comms, func(c Comm) error {
			x := cpu.Wrap(xs[c.Rank()])
			if !rsag {
				return c.AllReduce(x, op)
			}
			off, cnt := Range(n, c.Rank(), size)
			if err := c.ReduceScatter(x.View(off, cnt), x, op); err != nil {
				return err
			}
			return c.AllGather(x, x.View(off, cnt))
		}))
		t.Logf("%d ranks, %d floats: %v", size, n, time.Since(start))
		mustAll(t, each(comms, func(c Comm) error {
			// Each rank checks a different stripe of its result against
			// the reference; all check that the ranks agree bit for bit.
			x := xs[c.Rank()]
			lo, cnt := Range(n, c.Rank(), size)
			if err := check32(x[lo:lo+cnt], lo, n, seed, size, op); err != nil {
				return err
			}
			for i, v := range x {
				if math.Float32bits(v) != math.Float32bits(xs[0][i]) {
					return fmt.Errorf("rank %d element %d = %g, rank 0 has %g", c.Rank(), i, v, xs[0][i])
				}
			}
			return nil
		}))
	}
	t.Run("shm-allreduce-3", func(t *testing.T) { big(t, dialJob(t, 3, Options{}), 11, Sum, false) })
	t.Run("tcp-rs-ag-3", func(t *testing.T) { big(t, dialJob(t, 3, Options{tcpOnly: true}), 12, Avg, true) })
	t.Run("inprocess-allreduce-4", func(t *testing.T) { big(t, NewInProcess(4), 13, Sum, false) })
}

// Same inputs, same world size: the same bits, run after run and across
// backends.
func TestDeterministic(t *testing.T) {
	const n = 100003
	tcp := dialJob(t, 4, Options{ChunkBytes: 8 << 10})
	inp := NewInProcess(4)
	var ref []float32
	for run, comms := range [][]Comm{tcp, inp, tcp} {
		xs := make([][]float32, 4)
		for r := range xs {
			xs[r] = make([]float32, n)
			fill32(xs[r], 5, r)
		}
		mustAll(t, each(comms, func(c Comm) error { return c.AllReduce(cpu.Wrap(xs[c.Rank()]), Sum) }))
		if ref == nil {
			ref = xs[0]
			continue
		}
		for i := range ref {
			if math.Float32bits(ref[i]) != math.Float32bits(xs[1][i]) {
				t.Fatalf("run %d: element %d = %g, first run %g", run, i, xs[1][i], ref[i])
			}
		}
	}
}

// After the first call, an all-reduce allocates nothing.
func TestTCPNoAllocs(t *testing.T) {
	comms := dialJob(t, 2, Options{ChunkBytes: 64 << 10})
	xs := [][]float32{make([]float32, 1<<18), make([]float32, 1<<18)}
	done := make(chan struct{})
	go func() {
		// Rank 1 matches rank 0's calls (allocations are counted
		// process-wide, so it must not allocate either).
		defer close(done)
		x1 := cpu.Wrap(xs[1])
		for range 102 {
			if err := comms[1].AllReduce(x1, Sum); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	x := cpu.Wrap(xs[0])
	comms[0].AllReduce(x, Sum)
	allocs := testing.AllocsPerRun(100, func() {
		if err := comms[0].AllReduce(x, Sum); err != nil {
			t.Error(err)
		}
	})
	<-done
	if allocs != 0 {
		t.Errorf("%v allocations per all-reduce after the first", allocs)
	}
}

// Bad arguments are rejected before any communication, identically on
// every backend, at world size 1 too.
func TestArgumentErrors(t *testing.T) {
	for _, size := range []int{1, 2} {
		comms := NewInProcess(size)
		c := comms[0]
		buf := cpu.Wrap(make([]float32, 20))
		x := buf.View(0, 10)
		_, cnt := Range(10, 0, size)
		cases := map[string]error{
			"bad op":             c.AllReduce(x, Op(7)),
			"bad op 64":          c.AllReduce64(make([]float64, 3), Op(9)),
			"short shard":        c.ReduceScatter(cpu.Wrap(make([]float32, cnt+1)), x, Sum),
			"gather short shard": c.AllGather(x, cpu.Wrap(make([]float32, cnt-1))),
			"root":               c.Broadcast(x, size),
			"negative root":      c.Broadcast(x, -1),
			"overlap":            c.ReduceScatter(buf.View(1, cnt), x, Sum),
		}
		for name, err := range cases {
			if err == nil {
				t.Errorf("size %d: %s: no error", size, name)
			} else {
				t.Logf("size %d: %s: %v", size, name, err)
			}
		}
	}
}

// Ranks that call different collectives, counts, roots or orders get an
// error naming both sides — never a hang, never silently wrong data.
func TestMismatch(t *testing.T) {
	cases := []struct {
		name string
		f    func(c Comm) error
	}{
		{"count", func(c Comm) error {
			return c.AllReduce(cpu.Wrap(make([]float32, 100+c.Rank()*(c.Rank()-1)*50)), Sum)
		}},
		{"op", func(c Comm) error {
			op := Sum
			if c.Rank() == 1 {
				op = Max
			}
			return c.AllReduce(cpu.Wrap(make([]float32, 100)), op)
		}},
		{"kind", func(c Comm) error {
			if c.Rank() == 2 {
				return c.Barrier()
			}
			return c.AllReduce(cpu.Wrap(make([]float32, 100)), Sum)
		}},
		{"root", func(c Comm) error { return c.Broadcast(cpu.Wrap(make([]float32, 10)), c.Rank()%2) }},
		{"order", func(c Comm) error {
			x := cpu.Wrap(make([]float32, 8))
			if c.Rank() == 0 {
				if err := c.Barrier(); err != nil {
					return err
				}
				return c.AllReduce(x, Sum)
			}
			if err := c.AllReduce(x, Sum); err != nil {
				return err
			}
			return c.Barrier()
		}},
	}
	for _, backend := range []string{"tcp", "inprocess"} {
		for _, tc := range cases {
			t.Run(backend+"/"+tc.name, func(t *testing.T) {
				var comms []Comm
				if backend == "tcp" {
					comms = dialJob(t, 3, Options{Timeout: 10 * time.Second})
				} else {
					comms = NewInProcess(3)
				}
				start := time.Now()
				errs := each(comms, tc.f)
				for r, err := range errs {
					if !errors.Is(err, ErrMismatch) {
						t.Errorf("rank %d: %v, want ErrMismatch", r, err)
						continue
					}
					t.Logf("rank %d: %v", r, err)
				}
				if el := time.Since(start); el > 5*time.Second {
					t.Errorf("mismatch took %v to report", el)
				}
				// Later calls keep failing.
				if err := comms[0].Barrier(); err == nil {
					t.Error("barrier after a mismatch succeeded")
				}
			})
		}
	}
}

func TestCloseIdempotent(t *testing.T) {
	for _, comms := range [][]Comm{dialJob(t, 2, Options{}), NewInProcess(2), NewInProcess(1)} {
		mustAll(t, each(comms, func(c Comm) error {
			if err := c.Close(); err != nil {
				return err
			}
			if err := c.Close(); err != nil {
				return err
			}
			if err := c.Barrier(); !errors.Is(err, ErrClosed) {
				return fmt.Errorf("barrier after Close: %v, want ErrClosed", err)
			}
			return nil
		}))
	}
}

// A rank that closes while its neighbours wait is named by them.
func TestPeerClosed(t *testing.T) {
	for _, backend := range []string{"tcp", "inprocess"} {
		t.Run(backend, func(t *testing.T) {
			comms := NewInProcess(3)
			if backend == "tcp" {
				comms = dialJob(t, 3, Options{Timeout: 10 * time.Second})
			}
			errs := each(comms, func(c Comm) error {
				if c.Rank() == 1 {
					return c.Close()
				}
				time.Sleep(50 * time.Millisecond)
				return c.AllReduce(cpu.Wrap(make([]float32, 1000)), Sum)
			})
			for _, r := range []int{0, 2} {
				var pe *PeerError
				if !errors.As(errs[r], &pe) || pe.Rank != 1 {
					t.Errorf("rank %d: %v, want a PeerError naming rank 1", r, errs[r])
				} else {
					t.Logf("rank %d: %v", r, errs[r])
				}
			}
		})
	}
}

// Ranks that finish the last collective close at once, while their
// neighbours may still be finishing it: nobody may report a failure
// (a goodbye after the last call is not a dead peer).
func TestCloseAtEnd(t *testing.T) {
	for i := range 40 {
		comms := dialJob(t, 4, Options{Timeout: 10 * time.Second, tcpOnly: i%2 == 1})
		mustAll(t, each(comms, func(c Comm) error {
			x := []float64{float64(c.Rank())}
			for range 3 {
				if err := c.AllReduce64(x, Sum); err != nil {
					return err
				}
			}
			return c.Close()
		}))
	}
}

// The vector add is the Go loop's bit for bit, at every length and
// alignment, in place or not.
func TestAdd32(t *testing.T) {
	for n := 0; n < 70; n++ {
		for off := 0; off < 3; off++ {
			a, b := make([]float32, n+off), make([]float32, n+off)
			fill32(a, 1, n)
			fill32(b, 2, n)
			want, got := make([]float32, n), make([]float32, n)
			add32Go(want, a[off:], b[off:])
			add32(got, a[off:], b[off:])
			add32(a[off:], a[off:], b[off:])
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) || math.Float32bits(a[off+i]) != math.Float32bits(want[i]) {
					t.Fatalf("n=%d off=%d i=%d: %g / %g, want %g", n, off, i, got[i], a[off+i], want[i])
				}
			}
		}
	}
}
