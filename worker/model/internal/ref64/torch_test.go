//go:build torchref

// The PyTorch cross-check needs python3-torch, which `make test` does not
// install, so it is behind the build tag torchref:
//
//	make bench-deps   # or: apt-get install -y python3-torch
//	go test -tags torchref -run Torch -v ./worker/model/internal/ref64/
//
// It fails (never skips) when torch is missing. The interpreter is
// $EARL_PYTHON, else /usr/bin/python3 (Debian's, where python3-torch
// lives), else python3 on PATH.

package ref64

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"earl/worker/model"
)

// torchTolerance is the largest absolute difference allowed between the
// two float64 references on any logit or activation.
const torchTolerance = 1e-9

func python(t *testing.T) string {
	t.Helper()
	py := os.Getenv("EARL_PYTHON")
	if py == "" {
		py = "/usr/bin/python3"
		if _, err := os.Stat(py); err != nil {
			py = "python3"
		}
	}
	out, err := exec.Command(py, "-c", "import torch, numpy; print(torch.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("the torch cross-check needs PyTorch and numpy for %s: install python3-torch (make bench-deps), or point EARL_PYTHON at a Python that has them\n%s", py, out)
	}
	t.Logf("%s: torch %s", py, strings.TrimSpace(string(out)))
	return py
}

func TestTorchCrossCheck(t *testing.T) {
	py := python(t)
	script, err := filepath.Abs("testdata/torch_forward.py")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		fam    model.Family
		frames []int
		edit   func(*model.Config)
	}{
		// Two clips: odd and even T, one near the end of the 30 s window.
		{"qwen2-audio", model.Qwen2Audio, []int{301, 2800}, nil},
		{"qwen2-audio-tied", model.Qwen2Audio, []int{1000}, func(c *model.Config) { c.Text.TieWordEmbeddings = true }},
		// Chunks of 200+200+37 and of 150 in one batch (torch pads all
		// chunks to 200).
		{"omni", model.Qwen25Omni, []int{437, 150}, nil},
		// One short chunk alone: torch pads to 150, ref64 to 200.
		{"omni-short-thinker-prefix", model.Qwen25Omni, []int{150}, func(c *model.Config) { c.Prefix = "thinker." }},
		{"omni-text-only", model.Qwen25Omni, nil, nil},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, cfg := writeModel(t, c.fam, "tiny", uint64(100+i), c.edit)
			m := load(t, dir)
			var audios []Audio
			var counts []int
			for k, T := range c.frames {
				if c.fam == model.Qwen2Audio {
					audios = append(audios, qwen2AudioClip(cfg, T, uint64(k+1)))
				} else {
					audios = append(audios, omniClip(cfg, T, uint64(k+1)))
				}
				counts = append(counts, pyTokens(T))
			}
			ids := promptIDs(uint64(i), 7, counts...)
			logits, acts := forward(t, m, ids, audios...)
			acts["logits"] = logits

			caseDir := t.TempDir()
			spec := map[string]any{"model_dir": dir, "ids": "ids.npy", "audios": []any{}}
			idsF := make([]float64, len(ids))
			for j, id := range ids {
				idsF[j] = float64(id)
			}
			writeNpy(t, filepath.Join(caseDir, "ids.npy"), "<i8", []int{len(ids)}, idsF)
			var aspec []any
			for k, a := range audios {
				name := fmt.Sprintf("mel%d.npy", k)
				var flat []float64
				for _, row := range a.Mel {
					flat = append(flat, row...)
				}
				writeNpy(t, filepath.Join(caseDir, name), "<f8", []int{len(a.Mel), len(a.Mel[0])}, flat)
				aspec = append(aspec, map[string]any{"mel": name, "valid_frames": a.ValidFrames})
			}
			if aspec != nil {
				spec["audios"] = aspec
			}
			js, _ := json.Marshal(spec)
			if err := os.WriteFile(filepath.Join(caseDir, "case.json"), js, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(py, script, caseDir).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s", py, script, err, out)
			}

			files, _ := filepath.Glob(filepath.Join(caseDir, "out", "*.npy"))
			got := map[string][][]float64{}
			for _, f := range files {
				got[strings.TrimSuffix(filepath.Base(f), ".npy")] = readNpy(t, f)
			}
			var names []string
			for name := range acts {
				names = append(names, name)
			}
			sort.Strings(names)
			worst, worstName := 0.0, ""
			for _, name := range names {
				want := acts[name]
				g, ok := got[name]
				if !ok {
					t.Errorf("%s: torch wrote no %s", c.name, name)
					continue
				}
				if len(g) != len(want) || (len(g) > 0 && len(g[0]) != len(want[0])) {
					t.Errorf("%s: shape torch %dx%d, ref64 %dx%d", name, len(g), cols(g), len(want), cols(want))
					continue
				}
				d := maxAbsDiff(g, want, 0, len(g))
				if d > worst || worstName == "" {
					worst, worstName = d, name
				}
				if d > torchTolerance {
					t.Errorf("%s: torch and ref64 differ by %.3g (> %g)", name, d, torchTolerance)
				}
			}
			for name := range got {
				if _, ok := acts[name]; !ok {
					t.Errorf("torch wrote %s, which ref64 does not report", name)
				}
			}
			scale := 0.0
			for _, r := range logits {
				for _, v := range r {
					scale = math.Max(scale, math.Abs(v))
				}
			}
			t.Logf("%s: %d tensors compared, max |torch − ref64| = %.3g (in %s); max |logit| = %.3g",
				c.name, len(names), worst, worstName, scale)
		})
	}
}

func cols(m [][]float64) int {
	if len(m) == 0 {
		return 0
	}
	return len(m[0])
}

// writeNpy writes a C-order .npy file of dtype descr ("<f8" or "<i8").
func writeNpy(t *testing.T, path, descr string, shape []int, vals []float64) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	shp := strings.Join(dims, ", ")
	if len(shape) == 1 {
		shp += ","
	}
	header := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp)
	// magic (6) + version (2) + header length (2) + header + '\n', padded
	// to a multiple of 64.
	for (10+len(header)+1)%64 != 0 {
		header += " "
	}
	header += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	for _, v := range vals {
		if descr == "<i8" {
			binary.Write(&b, binary.LittleEndian, int64(v))
		} else {
			binary.Write(&b, binary.LittleEndian, v)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

var npyShape = regexp.MustCompile(`'shape': \(([0-9, ]*)\)`)

// readNpy reads a C-order little-endian float64 .npy of one or two
// dimensions as rows (a vector is one row).
func readNpy(t *testing.T, path string) [][]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		t.Fatalf("%s: not an .npy file", path)
	}
	var hlen, off int
	switch b[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(b[8:])), 10
	default:
		hlen, off = int(binary.LittleEndian.Uint32(b[8:])), 12
	}
	header := string(b[off : off+hlen])
	if !strings.Contains(header, "'descr': '<f8'") || !strings.Contains(header, "'fortran_order': False") {
		t.Fatalf("%s: want C-order <f8, header %s", path, header)
	}
	sm := npyShape.FindStringSubmatch(header)
	if sm == nil {
		t.Fatalf("%s: no shape in %s", path, header)
	}
	var shape []int
	for _, f := range strings.Split(sm[1], ",") {
		if f = strings.TrimSpace(f); f != "" {
			n, _ := strconv.Atoi(f)
			shape = append(shape, n)
		}
	}
	data := b[off+hlen:]
	rows, colsN := 1, 0
	switch len(shape) {
	case 1:
		colsN = shape[0]
	case 2:
		rows, colsN = shape[0], shape[1]
	default:
		t.Fatalf("%s: shape %v", path, shape)
	}
	if len(data) != 8*rows*colsN {
		t.Fatalf("%s: %d data bytes for shape %v", path, len(data), shape)
	}
	m := newMat(rows, colsN)
	for i := range m {
		for j := range m[i] {
			m[i][j] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*(i*colsN+j):]))
		}
	}
	return m
}
