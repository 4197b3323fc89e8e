package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/launcher/progress"
	"earl/shards"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "describe a shard directory: counts per shard, source, task and category, durations",
		UsageText: "launcher inspect DIR [--json] [--verify]",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON document instead of tables"},
			&cli.BoolFlag{Name: "verify", Usage: "re-check every shard's sha256 and read every sample's features"},
		},
		Action: runInspect,
	}
}

// inspectReport is the --json document.
type inspectReport struct {
	*shards.Summary
	Verified *bool    `json:"verified,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

func runInspect(c *cli.Context) error {
	if c.NArg() != 1 {
		return cli.Exit("usage: launcher inspect DIR [--json] [--verify]", 2)
	}
	d, err := shards.Open(c.Args().First())
	if err != nil {
		return err
	}
	defer d.Close()
	sum, err := d.Summarize()
	if err != nil {
		return err
	}
	rep := inspectReport{Summary: sum}
	if c.Bool("verify") {
		pr := progress.New(os.Stderr, "verify", "samples", sum.Samples, 0)
		problems, err := d.Verify(func(n int) { pr.Update(n, "") })
		pr.Finish()
		if err != nil {
			return err
		}
		ok := len(problems) == 0
		rep.Verified, rep.Problems = &ok, problems
	}
	if c.Bool("json") {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printSummary(os.Stdout, &rep)
	}
	if rep.Verified != nil && !*rep.Verified {
		return cli.Exit(fmt.Sprintf("verify: %d problems in %s", len(rep.Problems), sum.Dir), 1)
	}
	return nil
}

func printSummary(w io.Writer, r *inspectReport) {
	s := r.Summary
	fmt.Fprintf(w, "%s: %d samples in %d shards, %s features (%s, %d frames padded), %.2f h of audio\n",
		s.Dir, s.Samples, len(s.Shards), s.DType, s.Family, s.Frames, s.Duration/3600)
	fmt.Fprintf(w, "source: %s %s (%d records, sha256 %.12s)\n", s.Source.Format, s.Source.Path, s.Source.Records, s.Source.SHA256)
	fmt.Fprintf(w, "rejected: %d", s.Rejects.Total)
	if s.Rejects.Total > 0 {
		var parts []string
		for _, k := range sortedKeys(s.Rejects.ByReason) {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Rejects.ByReason[k]))
		}
		fmt.Fprintf(w, " (%s; see %s)", strings.Join(parts, ", "), filepath.Join(s.Dir, s.Rejects.File))
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "\n%-18s %8s %12s %10s  %s\n", "shard", "samples", "bytes", "hours", "sha256")
	for _, sh := range s.Shards {
		fmt.Fprintf(w, "%-18s %8d %12d %10.3f  %.16s\n", sh.File, sh.Samples, sh.Bytes, sh.Duration/3600, sh.SHA256)
	}
	for _, t := range []struct {
		title string
		m     map[string]int
	}{{"source", s.BySource}, {"task", s.ByTask}, {"category", s.ByCategory}} {
		if len(t.m) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nby %s:\n", t.title)
		for _, k := range sortedByCount(t.m) {
			fmt.Fprintf(w, "  %-40s %8d\n", k, t.m[k])
		}
	}
	fmt.Fprintf(w, "\nclip duration:\n")
	most := 1
	for _, b := range s.Durations {
		most = max(most, b.Count)
	}
	for _, b := range s.Durations {
		hi := "+"
		if b.Hi > 0 {
			hi = fmt.Sprintf("-%gs", b.Hi)
		}
		label := fmt.Sprintf("%g%s", b.Lo, hi)
		fmt.Fprintf(w, "  %-9s %8d %s\n", label, b.Count, strings.Repeat("#", b.Count*40/most))
	}
	if r.Verified != nil {
		if *r.Verified {
			fmt.Fprintf(w, "\nverify: OK (sha256 of %d shards, features of %d samples)\n", len(s.Shards), s.Samples)
		} else {
			fmt.Fprintf(w, "\nverify: %d problems\n", len(r.Problems))
			for _, p := range r.Problems {
				fmt.Fprintln(w, "  "+p)
			}
		}
	}
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	return keys
}

func sortedByCount(m map[string]int) []string {
	keys := sortedKeys(m)
	sort.SliceStable(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	return keys
}

func dirOf(path string) string { return filepath.Dir(path) }
