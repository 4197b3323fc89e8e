package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"earl/worker/score"
	"earl/worker/train"
)

func reportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "print eval results side by side, and plot training curves",
		UsageText: "launcher report [--metrics RUN/metrics.jsonl] [--png FILE] NAME[@STEP]=PRED.jsonl | DIR ...",
		Description: "Each argument is an evaluation: worker eval's predictions (PRED.jsonl) or the tables\n" +
			"it wrote beside them (PRED.json), named NAME (default: the file name); or a directory of them\n" +
			"such as launcher eval writes (RUN/eval: every NAME/step-N.json under it, in step order, the\n" +
			"step taken from the file name). Prints one column per\n" +
			"evaluation: overall accuracy, then by task, category, sub-category and difficulty.\n" +
			"With --png, draws the run's mean reward and sampled accuracy per step (from --metrics,\n" +
			"smoothed over 10 steps) and every evaluation given a step (NAME@STEP=FILE) as a point\n" +
			"of held-out accuracy.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "metrics", Usage: "a run's metrics.jsonl, for --png"},
			&cli.StringFlag{Name: "png", Usage: "write the curves to this PNG file"},
		},
		Action: runReport,
	}
}

type evalArg struct {
	name   string
	series string // what a curve of held-out points joins: run and benchmark of an eval directory
	step   int    // -1: none
	rep    *score.Report
}

func parseEvalArg(a string) (evalArg, error) {
	e := evalArg{step: -1}
	spec, path, ok := strings.Cut(a, "=")
	if !ok {
		path, spec = a, strings.TrimSuffix(filepath.Base(a), filepath.Ext(a))
	}
	e.name = spec
	if n, s, ok := strings.Cut(spec, "@"); ok {
		st, err := strconv.Atoi(s)
		if err != nil || st < 0 {
			return e, fmt.Errorf("%q: the step after @ must be a non-negative number", a)
		}
		e.name, e.step = n, st
	}
	rep, err := loadReport(path)
	if err != nil {
		return e, err
	}
	e.rep = rep
	return e, nil
}

var stepLabel = regexp.MustCompile(`^step-([0-9]+)$`)

// expandEvalArg reads one argument: an evaluation file, or a directory of
// the tables launcher eval writes (DIR/BENCH/LABEL.json), each named
// "PREFIX BENCH LABEL" where PREFIX is the run's name for RUN/eval.
func expandEvalArg(a string) ([]evalArg, error) {
	fi, err := os.Stat(a)
	if strings.Contains(a, "=") || err != nil || !fi.IsDir() {
		e, err := parseEvalArg(a)
		return []evalArg{e}, err
	}
	prefix := filepath.Base(filepath.Clean(a))
	if prefix == "eval" {
		prefix = filepath.Base(filepath.Dir(filepath.Clean(a)))
	}
	files, err := filepath.Glob(filepath.Join(a, "*", "*.json"))
	if err != nil {
		return nil, err
	}
	type item struct {
		bench, label string
		step         int
		path         string
	}
	var items []item
	for _, f := range files {
		label := strings.TrimSuffix(filepath.Base(f), ".json")
		it := item{bench: filepath.Base(filepath.Dir(f)), label: label, step: -1, path: f}
		if m := stepLabel.FindStringSubmatch(label); m != nil {
			it.step, _ = strconv.Atoi(m[1])
			it.label = "step-" + strconv.Itoa(it.step)
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no evaluation tables (BENCH/LABEL.json) in this directory: name prediction files, or the eval directory launcher eval wrote", a)
	}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].bench != items[j].bench {
			return items[i].bench < items[j].bench
		}
		if items[i].step != items[j].step {
			return items[i].step < items[j].step
		}
		return items[i].label < items[j].label
	})
	var out []evalArg
	for _, it := range items {
		rep, err := loadReport(it.path)
		if err != nil {
			return nil, err
		}
		out = append(out, evalArg{name: prefix + " " + it.bench + " " + it.label, series: prefix + " " + it.bench, step: it.step, rep: rep})
	}
	return out, nil
}

// loadReport reads a report JSON, or rebuilds the report from predictions.
func loadReport(path string) (*score.Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if filepath.Ext(path) == ".json" {
		r, err := score.ParseJSON(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return r, nil
	}
	r := score.NewReport(path)
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var p train.Prediction
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("%s:%d: %w (want worker eval's predictions JSONL or its .json tables)", path, line, err)
		}
		r.Add(score.Verdict{Correct: p.Correct, Task: p.Task, Categories: p.Categories, SubCategory: p.SubCategory, Difficulty: p.Difficulty})
	}
	return r, sc.Err()
}

func runReport(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.Exit("name at least one evaluation: NAME[@STEP]=PRED.jsonl", 2)
	}
	var evals []evalArg
	var names []string
	var reps []*score.Report
	for _, a := range c.Args().Slice() {
		es, err := expandEvalArg(a)
		if err != nil {
			return err
		}
		for _, e := range es {
			evals = append(evals, e)
			names, reps = append(names, e.name), append(reps, e.rep)
		}
	}
	if err := score.Compare(os.Stdout, names, reps); err != nil {
		return err
	}
	if png := c.String("png"); png != "" {
		var ms []train.Metrics
		if p := c.String("metrics"); p != "" {
			var err error
			if ms, err = readMetrics(p); err != nil {
				return err
			}
		}
		if err := plotCurves(png, ms, evals); err != nil {
			return fmt.Errorf("--png %s: %w", png, err)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", png)
	}
	return nil
}

func readMetrics(path string) ([]train.Metrics, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []train.Metrics
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var m train.Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		// A resumed run may repeat steps after its checkpoint: keep the
		// latest line of each step.
		for len(out) > 0 && out[len(out)-1].Step >= m.Step {
			out = out[:len(out)-1]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// smooth is a trailing mean over w points.
func smooth(ys []float64, w int) []float64 {
	out := make([]float64, len(ys))
	var s float64
	for i, y := range ys {
		s += y
		if i >= w {
			s -= ys[i-w]
		}
		out[i] = s / float64(min(i+1, w))
	}
	return out
}

func plotCurves(path string, ms []train.Metrics, evals []evalArg) error {
	p := plot.New()
	p.Title.Text = "earl: reward and accuracy"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "value"
	p.Legend.Top = true
	p.Legend.Left = true
	if len(ms) > 0 {
		reward, acc := make([]float64, len(ms)), make([]float64, len(ms))
		for i, m := range ms {
			reward[i], acc[i] = m.Reward, m.Accuracy
		}
		for _, s := range []struct {
			name string
			ys   []float64
			c    color.RGBA
		}{
			{"mean reward (train, smoothed)", smooth(reward, 10), color.RGBA{R: 31, G: 119, B: 180, A: 255}},
			{"sampled accuracy (train, smoothed)", smooth(acc, 10), color.RGBA{R: 255, G: 127, B: 14, A: 255}},
		} {
			pts := make(plotter.XYs, len(ms))
			for i, m := range ms {
				pts[i].X, pts[i].Y = float64(m.Step), s.ys[i]
			}
			l, err := plotter.NewLine(pts)
			if err != nil {
				return err
			}
			l.Color = s.c
			l.Width = vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.name, l)
		}
	}
	// Held-out points, one series per run and benchmark (an eval
	// directory), or one for the NAME@STEP arguments; a series of several
	// points is joined by a line.
	type series struct {
		name   string
		pts    plotter.XYs
		labels []string
	}
	var all []*series
	byName := map[string]*series{}
	for _, e := range evals {
		if e.step < 0 {
			continue
		}
		c, t := e.rep.Accuracy()
		if t == 0 {
			continue
		}
		sr := byName[e.series]
		if sr == nil {
			sr = &series{name: e.series}
			byName[e.series] = sr
			all = append(all, sr)
		}
		acc := float64(c) / float64(t)
		sr.pts = append(sr.pts, plotter.XY{X: float64(e.step), Y: acc})
		sr.labels = append(sr.labels, fmt.Sprintf("%s %.1f%%", e.name, 100*acc))
	}
	palette := []color.RGBA{{R: 44, G: 160, B: 44, A: 255}, {R: 214, G: 39, B: 40, A: 255}, {R: 148, G: 103, B: 189, A: 255},
		{R: 140, G: 86, B: 75, A: 255}, {R: 227, G: 119, B: 194, A: 255}, {R: 23, G: 190, B: 207, A: 255}}
	npts := 0
	for i, sr := range all {
		npts += len(sr.pts)
		idx := make([]int, len(sr.pts))
		for k := range idx {
			idx[k] = k
		}
		sort.SliceStable(idx, func(a, b int) bool { return sr.pts[idx[a]].X < sr.pts[idx[b]].X })
		pts0, labels0 := slices.Clone(sr.pts), slices.Clone(sr.labels)
		for k, j := range idx {
			sr.pts[k], sr.labels[k] = pts0[j], labels0[j]
		}
		col := palette[i%len(palette)]
		sc, err := plotter.NewScatter(sr.pts)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		sc.GlyphStyle.Radius = vg.Points(4)
		sc.GlyphStyle.Color = col
		p.Add(sc)
		name := "held-out accuracy (greedy)"
		if sr.name != "" {
			name = "held-out: " + sr.name
		}
		if len(sr.pts) > 1 && sr.name != "" {
			l, err := plotter.NewLine(sr.pts)
			if err != nil {
				return err
			}
			l.Color, l.Width = col, vg.Points(1)
			p.Add(l)
		}
		p.Legend.Add(name, sc)
		// Every point named when there is one series (the demo's start and
		// final); otherwise the last point's value only, to stay legible.
		pts, labels := sr.pts, sr.labels
		if len(all) > 1 {
			last := len(sr.pts) - 1
			pts, labels = sr.pts[last:], []string{fmt.Sprintf("%.1f%%", 100*sr.pts[last].Y)}
		}
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: labels})
		if err != nil {
			return err
		}
		lab.Offset = vg.Point{X: vg.Points(6), Y: vg.Points(-4)}
		p.Add(lab)
	}
	if len(ms) == 0 && npts == 0 {
		return fmt.Errorf("nothing to plot: give --metrics or evaluations with @STEP")
	}
	p.Add(plotter.NewGrid())
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
