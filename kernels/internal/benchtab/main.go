// Command benchtab turns `go test -bench` output on standard input into
// tables, one per top-level benchmark: a column per part of the
// sub-benchmark name, then one per metric (the rates first, the mean
// ns/op last). `make bench` pipes kernels/cpu's benchmarks through it.
// Lines that are not benchmark results (the goos/cpu header, FAIL, ok) are
// copied through; the exit status is 1 if go test reported a failure.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
)

// table is the rows of one top-level benchmark.
type table struct {
	name    string
	parts   int      // most name parts of any row
	metrics []string // units, in first-seen order
	rows    []row
}

type row struct {
	parts  []string
	values map[string]string
}

// columns names the name parts of the benchmarks earl has.
var columns = map[string][]string{
	"Linear": {"layer", "product", "m x n x k"},
	"Ops":    {"op", "shape"},
}

// order ranks metrics; unknown ones go between the rates and ns/op.
var order = map[string]int{"earl-GFLOP/s": 0, "sgemm-GFLOP/s": 1, "earl/sgemm-%": 2,
	"GFLOP/s": 3, "GB/s": 4, "best-ms": 5, "ns/op": 9}

func rank(unit string) int {
	if r, ok := order[unit]; ok {
		return r
	}
	return 8
}

// procs is the -GOMAXPROCS suffix go test adds to names.
var procs = regexp.MustCompile(`-\d+$`)

func main() {
	var tables []*table
	byName := map[string]*table{}
	failed := false
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(strings.TrimSpace(line), "--- FAIL") {
				failed = true
			}
			fmt.Println(line)
			continue
		}
		name := strings.Split(procs.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), ""), "/")
		t := byName[name[0]]
		if t == nil {
			t = &table{name: name[0]}
			byName[name[0]] = t
			tables = append(tables, t)
		}
		r := row{parts: name[1:], values: map[string]string{}}
		t.parts = max(t.parts, len(r.parts))
		for i := 2; i+1 < len(f); i += 2 { // value, unit pairs after the iteration count
			unit := f[i+1]
			if _, ok := r.values[unit]; !ok && !contains(t.metrics, unit) {
				t.metrics = append(t.metrics, unit)
			}
			r.values[unit] = f[i]
		}
		t.rows = append(t.rows, r)
	}
	for _, t := range tables {
		fmt.Printf("\n%s\n", t.name)
		sort.SliceStable(t.metrics, func(i, j int) bool { return rank(t.metrics[i]) < rank(t.metrics[j]) })
		w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
		head := make([]string, t.parts)
		copy(head, columns[t.name])
		head = append(head, t.metrics...)
		fmt.Fprintln(w, strings.Join(head, "\t")+"\t")
		for _, r := range t.rows {
			cells := append([]string{}, r.parts...)
			for len(cells) < t.parts {
				cells = append(cells, "")
			}
			for _, m := range t.metrics {
				cells = append(cells, r.values[m])
			}
			fmt.Fprintln(w, strings.Join(cells, "\t")+"\t")
		}
		w.Flush()
	}
	if failed {
		os.Exit(1)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
