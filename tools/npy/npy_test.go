package npy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// numpy itself is the reference: the file must load with numpy.load with
// the right shape, dtype and values. python3-numpy comes with `make deps`.
func TestNumpyLoadsOurFiles(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("%s missing: run `make deps`", py)
	}
	dir := t.TempDir()
	cases := []struct {
		shape []int
		data  []float32
	}{
		{[]int{3}, []float32{1, -2.5, 3e-8}},
		{[]int{2, 3}, []float32{0, 1, 2, 3, 4, 5}},
		{[]int{128, 7}, ramp(128 * 7)},
		{[]int{0}, nil},
	}
	for i, c := range cases {
		p := filepath.Join(dir, fmt.Sprintf("a%d.npy", i))
		if err := SaveFloat32(p, c.shape, c.data); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, "-c", `
import sys, numpy as np
a = np.load(sys.argv[1])
print(a.dtype, list(a.shape), a.flags['C_CONTIGUOUS'])
for v in a.ravel(): print('%.17g' % float(v))
`, p).CombinedOutput()
		if err != nil {
			t.Fatalf("numpy.load: %v\n%s(run `make deps` for python3-numpy)", err, out)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		want := fmt.Sprintf("float32 %s True", strings.ReplaceAll(fmt.Sprint(c.shape), " ", ", "))
		if lines[0] != want {
			t.Fatalf("case %d: numpy says %q, want %q", i, lines[0], want)
		}
		if len(lines)-1 != len(c.data) {
			t.Fatalf("case %d: numpy read %d values, wrote %d", i, len(lines)-1, len(c.data))
		}
		for k, s := range lines[1:] {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v != float64(c.data[k]) {
				t.Fatalf("case %d value %d: numpy %s, wrote %v", i, k, s, c.data[k])
			}
		}
	}
	if err := SaveFloat32(filepath.Join(dir, "bad.npy"), []int{2, 2}, []float32{1}); err == nil {
		t.Error("shape mismatch accepted")
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.npy")); !os.IsNotExist(err) {
		t.Error("failed write left a file behind")
	}
}

func ramp(n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i)*0.25 - 7
	}
	return x
}

// Files numpy writes read back with their shape and values.
func TestReadNumpyFiles(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command("/usr/bin/python3", "-c", `
import sys, numpy as np
np.save(sys.argv[1] + '/a.npy', (np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3))
np.save(sys.argv[1] + '/b.npy', np.array([1.5, -2.25], dtype=np.float64))
np.save(sys.argv[1] + '/c.npy', np.zeros((2, 2), dtype=np.int32))
`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("numpy: %v\n%s(run `make deps`)", err, out)
	}
	shape, v, err := ReadFloat32(filepath.Join(dir, "a.npy"))
	if err != nil || fmt.Sprint(shape) != "[2 3 4]" || v[0] != -3 || v[23] != 8.5 {
		t.Errorf("a.npy: %v %v %v", shape, v, err)
	}
	shape, v, err = ReadFloat32(filepath.Join(dir, "b.npy"))
	if err != nil || fmt.Sprint(shape) != "[2]" || v[1] != -2.25 {
		t.Errorf("b.npy: %v %v %v", shape, v, err)
	}
	if _, _, err := ReadFloat32(filepath.Join(dir, "c.npy")); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("int32 array: %v", err)
	}
}
