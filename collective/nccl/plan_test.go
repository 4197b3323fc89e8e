package nccl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"earl/collective"
)

// TestPadPlan runs the padded reduce-scatter and all-gather on host
// slices, call by call exactly as the NCCL backend stages them through
// its scratch buffer, and checks the results against collective.Range:
// every element of every shard is reduced once, every real element lands
// where it belongs, and padding never leaks into a result.
func TestPadPlan(t *testing.T) {
	for _, size := range []int{1, 2, 3, 4, 7, 8} {
		for _, n := range []int{0, 1, 2, 3, 5, 7, 8, 9, 16, 17, 100, 1001} {
			for _, budget := range []int{1, 2, 5, 16, 1 << 20} {
				t.Run(fmt.Sprintf("size%d/n%d/budget%d", size, n, budget), func(t *testing.T) {
					checkPlan(t, n, size, budget)
				})
			}
		}
	}
}

func checkPlan(t *testing.T, n, size, budget int) {
	p := newPadPlan(n, size, budget)
	if p.scratch() > max(budget, size) {
		t.Fatalf("scratch %d exceeds the budget %d (or one element per rank)", p.scratch(), budget)
	}
	// Rank r's input: x_r[i] = r*10000 + i, so a sum names both its
	// terms' origins; pad slots hold NaN-like sentinels (-1e9) that must
	// never reach a result.
	const pad = -1e9
	x := make([][]float64, size)
	for r := range x {
		x[r] = make([]float64, n)
		for i := range x[r] {
			x[r][i] = float64(r*10000 + i)
		}
	}
	sum := make([]float64, n)
	for i := range sum {
		for r := range size {
			sum[i] += x[r][i]
		}
	}

	// Reduce-scatter: each call packs every rank's pieces into the
	// scratch at r*count, reduces the scratches slot by slot (NCCL's
	// ReduceScatter with recvcount = count), and copies rank me's real
	// elements of slot me out to its shard.
	shards := make([][]float64, size)
	for me := range size {
		_, cnt := collective.Range(n, me, size)
		shards[me] = make([]float64, cnt)
		for i := range shards[me] {
			shards[me][i] = pad
		}
	}
	gathered := make([][]float64, size)
	for me := range gathered {
		gathered[me] = make([]float64, n)
		for i := range gathered[me] {
			gathered[me][i] = pad
		}
	}
	covered := make([]int, n)
	for k := range p.calls() {
		start, count := p.call(k)
		if count <= 0 || count > p.chunk {
			t.Fatalf("call %d: count %d outside (0, %d]", k, count, p.chunk)
		}
		scratch := make([][]float64, size) // one per rank
		for me := range size {
			scratch[me] = make([]float64, size*count)
			for i := range scratch[me] {
				scratch[me][i] = pad
			}
			for r := range size {
				src, m := p.piece(k, r)
				if m < count-1 || m > count {
					// A shard is at most one element short of q, so a
					// call's piece is full or one short, except past
					// the end of a short shard.
					if m != 0 {
						t.Fatalf("call %d rank %d: piece of %d of %d", k, r, m, count)
					}
				}
				copy(scratch[me][r*count:r*count+m], x[me][src:src+m])
				if me == 0 {
					for i := src; i < src+m; i++ {
						covered[i]++
					}
				}
			}
		}
		for me := range size {
			_, m := p.piece(k, me)
			for i := range m {
				var s float64
				for r := range size {
					s += scratch[r][me*count+i]
				}
				shards[me][start+i] = s
			}
		}

		// All-gather of the reduced shards: each rank puts its piece in
		// slot me, the gather makes every slot everyone's, and each
		// rank copies every rank's real elements back to their places.
		slots := make([]float64, size*count)
		for i := range slots {
			slots[i] = pad
		}
		for me := range size {
			_, m := p.piece(k, me)
			copy(slots[me*count:me*count+m], shards[me][start:start+m])
		}
		for me := range size {
			for r := range size {
				src, m := p.piece(k, r)
				copy(gathered[me][src:src+m], slots[r*count:r*count+m])
			}
		}
	}
	for i, c := range covered {
		if c != 1 {
			t.Fatalf("element %d travels in %d calls, want 1", i, c)
		}
	}
	for me := range size {
		off, cnt := collective.Range(n, me, size)
		for i := range cnt {
			if got, want := shards[me][i], sum[off+i]; got != want {
				t.Fatalf("reduce-scatter: rank %d shard[%d] = %v, want %v", me, i, got, want)
			}
		}
		for i := range n {
			if got, want := gathered[me][i], sum[i]; got != want {
				t.Fatalf("all-gather: rank %d x[%d] = %v, want %v", me, i, got, want)
			}
		}
	}
}

// TestScalePTX assembles the Avg fallback's kernel with ptxas, for the
// oldest target it declares and for the GPUs earl runs on (A100, H100),
// where the CUDA toolkit is installed (make check-cuda installs it); the
// kernel itself only runs on a GPU (nccl_test.go).
func TestScalePTX(t *testing.T) {
	ptxas, err := exec.LookPath("ptxas")
	if err != nil {
		// make test on a machine without the toolkit; make check-cuda
		// installs it and sets EARL_REQUIRE_PTXAS so this cannot pass by
		// skipping there.
		if os.Getenv("EARL_REQUIRE_PTXAS") != "" {
			t.Fatal("ptxas not found although EARL_REQUIRE_PTXAS is set: make check-cuda installs the CUDA toolkit")
		}
		t.Skip("ptxas not installed (make check-cuda installs the CUDA toolkit)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "scale.ptx")
	if err := os.WriteFile(src, []byte(scalePTX), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []string{"sm_50", "sm_80", "sm_90"} {
		out, err := exec.Command(ptxas, "-arch="+arch, "-o", filepath.Join(dir, arch+".cubin"), src).CombinedOutput()
		if err != nil {
			t.Errorf("ptxas -arch=%s: %v\n%s", arch, err, out)
		}
	}
	if !strings.Contains(scalePTX, ".entry "+scaleKernel+"(") {
		t.Errorf("scalePTX has no entry %s", scaleKernel)
	}
}
