package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"earl/worker/ckpt"
	"earl/worker/model"
)

func benchCkptCommand() *cli.Command {
	return &cli.Command{
		Name:  "ckpt",
		Usage: "checkpoint write / read throughput and size: earl's zstd container (levels, byte shuffle) against plain safetensors",
		Description: "Three data sets of float32: a model's weights (--model, or the small preset as tools init-model makes it),\n" +
			"and AdamW-like moments of the same size, m ~ N(0, 1e-4) and v ~ |N(0, 1e-8)|. Each is written and read back\n" +
			"as safetensors F32 and BF16 (ckpt.WriteFile) and as earl checkpoint files (ckpt.SaveWeights) at each zstd\n" +
			"level with and without the byte-plane shuffle; every read is compared with the data (bit for bit; BF16 with\n" +
			"the data rounded to bf16). Writes include fsync and rename; reads come from the page cache.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "Hugging Face model directory (default: the small preset's random float32 weights)"},
			&cli.IntFlag{Name: "mb", Usage: "MB of float32 data per data set (default: all of the model's weights)"},
			&cli.StringFlag{Name: "levels", Value: "1,3", Usage: "zstd levels to compare"},
			&cli.IntFlag{Name: "repeat", Value: 3, Usage: "timed passes; the best is reported"},
			&cli.StringFlag{Name: "dir", Usage: "work directory (default: a temporary one, removed afterwards)"},
			&cli.BoolFlag{Name: "sweep", Usage: "also time block sizes and concurrency (zstd level 1, shuffled weights)"},
			&cli.StringFlag{Name: "json", Usage: "also write the figures here"},
		},
		Action: benchCkpt,
	}
}

type ckptSet struct {
	name    string
	values  []float32
	tensors []ckpt.TensorRef
}

type ckptRow struct {
	Data      string  `json:"data"`
	Format    string  `json:"format"`
	Bytes     int64   `json:"bytes"`
	Ratio     float64 `json:"ratio"`
	WriteMBps float64 `json:"write_mb_per_s"`
	ReadMBps  float64 `json:"read_mb_per_s"`
	WriteCPU  float64 `json:"write_mb_per_cpu_s"` // MB per second of CPU time (user + system): robust on a busy machine
	ReadCPU   float64 `json:"read_mb_per_cpu_s"`
	Check     string  `json:"check"`
}

func benchCkpt(c *cli.Context) error {
	weights, err := benchWeights(c.String("model"))
	if err != nil {
		return err
	}
	if mb := c.Int("mb"); mb > 0 {
		weights = cutOrTile(weights, mb*1_000_000/4)
	}
	n := len(weights.values)
	r := rand.New(rand.NewPCG(1, 2))
	m := &ckptSet{name: "adam m ~ N(0, 1e-4)", values: make([]float32, n), tensors: weights.tensors}
	v := &ckptSet{name: "adam v ~ |N(0, 1e-8)|", values: make([]float32, n), tensors: weights.tensors}
	for i := range n {
		m.values[i] = float32(1e-4 * r.NormFloat64())
		v.values[i] = float32(math.Abs(1e-8 * r.NormFloat64()))
	}
	var levels []int
	for _, s := range strings.Split(c.String("levels"), ",") {
		l, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("--levels %q: %v", c.String("levels"), err)
		}
		levels = append(levels, l)
	}
	dir := c.String("dir")
	if dir == "" {
		if dir, err = os.MkdirTemp("", "earl-bench-ckpt-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	repeat := max(1, c.Int("repeat"))
	fmt.Printf("earl checkpoint bench: %d float32 values (%.1f MB) per data set, %d threads, best of %d; writes fsync, reads from the page cache;\n"+
		"MB/s is wall-clock, MB/cpu is MB per second of this process's CPU time (user + system, all threads)\n\n",
		n, float64(4*n)/1e6, runtime.GOMAXPROCS(0), repeat)
	fmt.Printf("%-24s %-26s %8s %6s %10s %9s %12s %11s  %s\n", "data", "format", "MB", "ratio", "write MB/s", "read MB/s", "write MB/cpu", "read MB/cpu", "check")
	var rows []ckptRow
	for _, set := range []*ckptSet{weights, m, v} {
		for _, f := range benchFormats(levels) {
			row, err := benchOne(dir, set, f, repeat)
			if err != nil {
				return err
			}
			rows = append(rows, row)
			fmt.Printf("%-24s %-26s %8.1f %6.3f %10.0f %9.0f %12.0f %11.0f  %s\n", row.Data, row.Format, float64(row.Bytes)/1e6, row.Ratio,
				row.WriteMBps, row.ReadMBps, row.WriteCPU, row.ReadCPU, row.Check)
		}
		fmt.Println()
	}
	if c.Bool("sweep") {
		fmt.Printf("block size and concurrency: %s, zstd level 1, shuffled\n", weights.name)
		fmt.Printf("%-10s %-11s %11s %10s %13s %12s %9s\n", "block MiB", "concurrency", "write MB/s", "read MB/s", "write MB/cpu", "read MB/cpu", "MB")
		for _, mib := range []int{1, 2, 4, 8, 16, 32} {
			for _, conc := range []int{1, 2} {
				f := ckptFormat{name: "sweep", opt: ckpt.SaveOptions{Level: 1, BlockBytes: mib << 20, Concurrency: conc}, procs: conc}
				row, err := benchOne(dir, weights, f, repeat)
				if err != nil {
					return err
				}
				fmt.Printf("%-10d %-11d %11.0f %10.0f %13.0f %12.0f %9.1f\n", mib, conc, row.WriteMBps, row.ReadMBps, row.WriteCPU, row.ReadCPU, float64(row.Bytes)/1e6)
			}
		}
	}
	if p := c.String("json"); p != "" {
		b, _ := json.MarshalIndent(map[string]any{"values": n, "threads": runtime.GOMAXPROCS(0), "rows": rows}, "", "  ")
		return os.WriteFile(p, b, 0o644)
	}
	return nil
}

// benchWeights is every weight of a model directory in one flat buffer (in
// name order) with its tensor table; without a directory, the small
// preset's random weights as tools init-model --dtype f32 writes them.
func benchWeights(dir string) (*ckptSet, error) {
	set := &ckptSet{}
	if dir == "" {
		cfg, err := model.NewConfig(model.Qwen2Audio, "small", 4096, 4093, 4094, 4095, []int{4092})
		if err != nil {
			return nil, err
		}
		for _, t := range cfg.RandomWeights(1, ckpt.F32) {
			set.tensors = append(set.tensors, ckpt.TensorRef{Name: t.Name, Offset: len(set.values), Shape: t.Shape})
			set.values = append(set.values, t.Values...)
		}
		set.name = fmt.Sprintf("weights small %.1fM", float64(len(set.values))/1e6)
		return set, nil
	}
	d, err := ckpt.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	dtypes := map[ckpt.DType]bool{}
	for _, t := range d.Tensors() {
		n := t.NumElements()
		set.tensors = append(set.tensors, ckpt.TensorRef{Name: t.Name, Offset: len(set.values), Shape: t.Shape})
		set.values = append(set.values, make([]float32, n)...)
		if _, err := d.Float32(t.Name, set.values[len(set.values)-n:]); err != nil {
			return nil, err
		}
		dtypes[t.DType] = true
	}
	var ds []string
	for k := range dtypes {
		ds = append(ds, string(k))
	}
	set.name = fmt.Sprintf("weights %s %.1fM", strings.Join(ds, "+"), float64(len(set.values))/1e6)
	return set, nil
}

// cutOrTile resizes a data set to n values: the leading values when
// cutting, repeated copies when growing. The tensor table is rebuilt to
// cover every value — the whole tensors that fit, copies renamed
// "copyK/NAME", and a last "tail" tensor for the rest — so that the
// safetensors files hold the same data as the containers.
func cutOrTile(s *ckptSet, n int) *ckptSet {
	out := &ckptSet{values: make([]float32, n)}
	for i := 0; i < n; i += len(s.values) {
		copy(out.values[i:], s.values)
	}
	end := 0
	for k := 0; k*len(s.values) < n; k++ {
		for _, t := range s.tensors {
			off := k*len(s.values) + t.Offset
			if off+numel(t.Shape) > n {
				break
			}
			name := t.Name
			if k > 0 {
				name = fmt.Sprintf("copy%d/%s", k, t.Name)
			}
			out.tensors = append(out.tensors, ckpt.TensorRef{Name: name, Offset: off, Shape: t.Shape})
			end = off + numel(t.Shape)
		}
	}
	if end < n {
		out.tensors = append(out.tensors, ckpt.TensorRef{Name: "tail", Offset: end, Shape: []int{n - end}})
	}
	out.name = fmt.Sprintf("%s→%dMB", strings.Fields(s.name)[0], 4*n/1_000_000)
	return out
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

type ckptFormat struct {
	name        string
	safetensors ckpt.DType // "" : earl's container with opt
	opt         ckpt.SaveOptions
	procs       int // GOMAXPROCS for the run (0: unchanged), so that 1 means one core
}

func benchFormats(levels []int) []ckptFormat {
	fs := []ckptFormat{{name: "safetensors F32", safetensors: ckpt.F32}, {name: "safetensors BF16 (lossy)", safetensors: ckpt.BF16}}
	for _, l := range levels {
		fs = append(fs,
			ckptFormat{name: fmt.Sprintf("earl zstd-%d + shuffle", l), opt: ckpt.SaveOptions{Level: l}},
			ckptFormat{name: fmt.Sprintf("earl zstd-%d, no shuffle", l), opt: ckpt.SaveOptions{Level: l, NoShuffle: true}})
	}
	return fs
}

// benchOne writes and reads one data set in one format, best of repeat,
// and checks what comes back.
func benchOne(dir string, set *ckptSet, f ckptFormat, repeat int) (ckptRow, error) {
	row := ckptRow{Data: set.name, Format: f.name}
	if f.procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(f.procs))
	}
	work := filepath.Join(dir, "work")
	os.RemoveAll(work)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return row, err
	}
	var path string
	write := func() error {
		if f.safetensors != "" {
			path = filepath.Join(work, "data.safetensors")
			ts := make([]ckpt.Tensor, len(set.tensors))
			for i, t := range set.tensors {
				ts[i] = ckpt.Tensor{Name: t.Name, DType: f.safetensors, Shape: t.Shape, Values: set.values[t.Offset : t.Offset+numel(t.Shape)]}
			}
			return ckpt.WriteFile(path, ts, nil)
		}
		path = filepath.Join(work, ckpt.WeightsFileName)
		return ckpt.SaveWeights(work, []ckpt.Buffer{{Name: "data", Values: set.values, Tensors: set.tensors}}, f.opt)
	}
	out := make([]float32, len(set.values))
	read := func() error {
		if f.safetensors != "" {
			sf, err := ckpt.Open(path)
			if err != nil {
				return err
			}
			defer sf.Close()
			for _, t := range set.tensors {
				info, _ := sf.Tensor(t.Name)
				if _, err := sf.Float32(t.Name, out[t.Offset:t.Offset+info.NumElements()]); err != nil {
					return err
				}
			}
			return nil
		}
		bufs, err := ckpt.LoadWeights(work)
		if err != nil {
			return err
		}
		out = bufs[0].Values
		return nil
	}
	mb := float64(4*len(set.values)) / 1e6
	var best = [2]time.Duration{math.MaxInt64, math.MaxInt64}
	var cpu = [2]time.Duration{math.MaxInt64, math.MaxInt64}
	for range repeat {
		runtime.GC()
		t0, c0 := time.Now(), cpuTime()
		if err := write(); err != nil {
			return row, err
		}
		best[0], cpu[0] = min(best[0], time.Since(t0)), min(cpu[0], cpuTime()-c0)
		runtime.GC()
		t0, c0 = time.Now(), cpuTime()
		if err := read(); err != nil {
			return row, err
		}
		best[1], cpu[1] = min(best[1], time.Since(t0)), min(cpu[1], cpuTime()-c0)
	}
	st, err := os.Stat(path)
	if err != nil {
		return row, err
	}
	row.Bytes = st.Size()
	row.Ratio = float64(4*len(set.values)) / float64(row.Bytes)
	row.WriteMBps = mb / best[0].Seconds()
	row.ReadMBps = mb / best[1].Seconds()
	row.WriteCPU = mb / cpu[0].Seconds()
	row.ReadCPU = mb / cpu[1].Seconds()
	// The tensor table covers every value (benchWeights and cutOrTile make
	// it so); the check compares through it, as the trainer's views would.
	covered := 0
	for i, t := range set.tensors {
		n := numel(t.Shape)
		want, got := set.values[t.Offset:t.Offset+n], out[t.Offset:t.Offset+n]
		for j := range want {
			w := want[j]
			if f.safetensors == ckpt.BF16 {
				w = ckpt.BF16ToFloat32(ckpt.Float32ToBF16(w))
			}
			if math.Float32bits(got[j]) != math.Float32bits(w) {
				return row, fmt.Errorf("%s %s: tensor %d %s value %d: read %g, wrote %g", set.name, f.name, i, t.Name, j, got[j], w)
			}
		}
		covered += n
	}
	if covered != len(set.values) {
		return row, fmt.Errorf("internal error: the tensor table covers %d of %d values", covered, len(set.values))
	}
	row.Check = fmt.Sprintf("%d values bit-exact", covered)
	if f.safetensors == ckpt.BF16 {
		row.Check = fmt.Sprintf("%d values = bf16(data)", covered)
	}
	return row, nil
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
