package shards

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// All 65536 half values: widening is exact (checked against the binary16
// definition computed in float64) and narrowing the result gives the same
// bits back.
func TestHalfExhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		u := uint16(h)
		f := halfToFloat32(u)
		sign := 1.0
		if u&0x8000 != 0 {
			sign = -1
		}
		e, m := int(u>>10)&31, float64(u&0x3ff)
		var want float64
		switch {
		case e == 31 && m != 0:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("%#04x: %v, want NaN", u, f)
			}
			if back := float32ToHalf(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("%#04x: NaN narrows to %#04x", u, back)
			}
			continue
		case e == 31:
			want = sign * math.Inf(1)
		case e == 0:
			want = sign * m * math.Pow(2, -24)
		default:
			want = sign * (1 + m/1024) * math.Pow(2, float64(e-15))
		}
		if float64(f) != want || math.Signbit(float64(f)) != (sign < 0) {
			t.Fatalf("%#04x widens to %v, want %v", u, f, want)
		}
		if back := float32ToHalf(f); back != u {
			t.Fatalf("%#04x -> %v -> %#04x", u, f, back)
		}
	}
}

// Narrowing rounds to the nearest half, ties to even: checked against a
// brute-force search over all finite halves on random values and on every
// exact midpoint between neighbours.
func TestHalfRounding(t *testing.T) {
	type hv struct {
		bits uint16
		v    float64
	}
	var halves []hv
	for h := 0; h < 0x7c00; h++ { // non-negative finite
		halves = append(halves, hv{uint16(h), float64(halfToFloat32(uint16(h)))})
	}
	sort.Slice(halves, func(i, j int) bool { return halves[i].v < halves[j].v })
	maxHalf := halves[len(halves)-1].v
	nearest := func(x float64) uint16 {
		ax := math.Abs(x)
		// Beyond max + half an ulp rounds to infinity.
		if ax >= maxHalf+math.Pow(2, 15-10-1) {
			return 0x7c00 | signBits(x)
		}
		i := sort.Search(len(halves), func(i int) bool { return halves[i].v >= ax })
		best := halves[min(i, len(halves)-1)]
		if i > 0 {
			lo := halves[i-1]
			dl, dh := ax-lo.v, best.v-ax
			if dl < dh || (dl == dh && lo.bits&1 == 0) {
				best = lo
			}
		}
		return best.bits | signBits(x)
	}
	r := rand.New(rand.NewPCG(1, 1))
	check := func(f float32) {
		if got, want := float32ToHalf(f), nearest(float64(f)); got != want {
			t.Fatalf("float32ToHalf(%v) = %#04x, want %#04x", f, got, want)
		}
	}
	for i := 0; i < 200000; i++ {
		check(float32(math.Ldexp(r.Float64()*2-1, r.IntN(40)-30)))
	}
	for i := 0; i+1 < len(halves); i++ {
		mid := (halves[i].v + halves[i+1].v) / 2
		if float64(float32(mid)) == mid { // exactly representable tie
			check(float32(mid))
			check(-float32(mid))
		}
		check(math.Nextafter32(float32(mid), 0))
		check(math.Nextafter32(float32(mid), 1e9))
	}
	check(65520) // ties away to infinity
	check(65519.99)
}

func signBits(x float64) uint16 {
	if math.Signbit(x) {
		return 0x8000
	}
	return 0
}

// h5py (Debian's python3-h5py on libhdf5) reads our shards: the filters
// written by Go workers decode in HDF5 itself, float16 data included, and
// the values equal what earl's reader returns.
func TestH5pyReadsShards(t *testing.T) {
	const py = "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import h5py, numpy").Run(); err != nil {
		t.Fatalf("python3-h5py and python3-numpy are needed (run `make deps`): %v", err)
	}
	for _, dt := range []DType{Float32, Float16} {
		o := synthSet(t, "mmau", 7, 3)
		o.DType = dt
		mustBuild(t, o)
		d, err := Open(o.Out)
		if err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for i := 0; i < d.Len(); i++ {
			r, err := d.Record(i)
			if err != nil {
				t.Fatal(err)
			}
			p := r.Mel.Padded()
			var s float64
			for _, v := range p {
				s += float64(v)
			}
			fmt.Fprintf(&want, "%s %d %d %.3f %s\n", r.ID, r.Mel.ValidFrames, r.Mel.TotalFrames, s, r.Answer)
		}
		d.Close()
		script := `
import sys, glob, json, h5py, numpy as np
for path in sorted(glob.glob(sys.argv[1] + '/shard-*.h5')):
    with h5py.File(path, 'r') as f:
        total = int(f.attrs['nb_max_frames'])
        for i in range(int(f.attrs['num_samples'])):
            ds = f['features/%08d' % i]
            assert ds.compression == 'gzip' and ds.shuffle, (ds.compression, ds.shuffle)
            x = ds[:].astype(np.float32)
            padded = np.full((total, x.shape[1]), f['fill'][i], dtype=np.float32)
            padded[:x.shape[0]] = x
            print(f['id'][i].decode(), f['valid_frames'][i], total, '%.3f' % padded.astype(np.float64).sum(), f['answer'][i].decode())
`
		out, err := exec.Command(py, "-c", script, o.Out).CombinedOutput()
		if err != nil {
			t.Fatalf("h5py: %v\n%s", err, out)
		}
		if string(out) != want.String() {
			t.Errorf("%s: h5py sees\n%s\nearl reads\n%s", dt, out, want.String())
		}
	}
}
