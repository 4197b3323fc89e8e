package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"earl/launcher/progress"
	"earl/shards"
	"earl/shards/audio"
	"earl/shards/sources"
)

func shardCommand() *cli.Command {
	var formats []string
	for _, n := range sources.Names() {
		f, _ := sources.Lookup(n)
		formats = append(formats, fmt.Sprintf("  %-11s %s", n, f.Describe()))
	}
	return &cli.Command{
		Name:      "shard",
		Usage:     "turn an audio QA dataset into HDF5 shards of Whisper log-mel features",
		UsageText: "launcher shard --in NAME --src PATH --audio-root DIR --out DIR [options]",
		Description: "Reads the annotation file, decodes and resamples every clip to 16 kHz, computes the\n" +
			"log-mel features of the model family, and writes shard-NNNNN.h5 files, manifest.json and\n" +
			"rejects.jsonl into --out. Bad records are skipped and listed in rejects.jsonl.\n\nSource formats (--in):\n" +
			strings.Join(formats, "\n"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "in", Usage: "source format: " + strings.Join(sources.Names(), ", "), Required: true},
			&cli.StringFlag{Name: "src", Usage: "annotation file (JSON or JSONL)", Required: true},
			&cli.StringFlag{Name: "audio-root", Usage: "directory the audio paths are relative to (default: the annotation file's directory)"},
			&cli.StringFlag{Name: "out", Usage: "output shard directory", Required: true},
			&cli.StringFlag{Name: "family", Value: string(audio.Qwen2Audio), Usage: "feature layout: qwen2-audio (30 s, 3000 frames) or qwen2.5-omni (300 s, valid frames)"},
			&cli.StringFlag{Name: "dtype", Value: string(shards.Float32), Usage: "stored feature type: float32 (exact) or float16"},
			&cli.IntFlag{Name: "shard-size", Value: 1000, Usage: "samples per shard file"},
			&cli.IntFlag{Name: "workers", Value: runtime.GOMAXPROCS(0), Usage: "decode and feature goroutines"},
			&cli.Float64Flag{Name: "max-reject-fraction", Value: 0.01, Usage: "fail when more than this fraction of records is rejected"},
			&cli.BoolFlag{Name: "strict", Usage: "fail on the first bad record"},
			&cli.BoolFlag{Name: "resume", Usage: "finish an interrupted run in --out (same flags)"},
			&cli.StringFlag{Name: "split", Usage: "dataset split for layouts that need it (soundmind: audio at SPLIT/ID/question.wav; default from the file name)"},
		},
		Action: runShard,
	}
}

func runShard(c *cli.Context) error {
	dt, err := shards.ParseDType(c.String("dtype"))
	if err != nil {
		return err
	}
	fam := audio.Family(c.String("family"))
	if _, err := audio.ConfigFor(fam); err != nil {
		return err
	}
	root := c.String("audio-root")
	if root == "" {
		root = dirOf(c.String("src"))
	}
	frac := c.Float64("max-reject-fraction")
	if frac == 0 {
		frac = -1 // BuildOptions: negative means "no rejects allowed"
	}
	opt := shards.BuildOptions{
		Format: c.String("in"), Src: c.String("src"), AudioRoot: root, Out: c.String("out"), Split: c.String("split"),
		Family: fam, DType: dt, ShardSize: c.Int("shard-size"), Workers: c.Int("workers"),
		MaxRejectFraction: frac, Strict: c.Bool("strict"), Resume: c.Bool("resume"),
	}
	var rep *progress.Reporter
	opt.Progress = func(p shards.Progress) {
		if rep == nil {
			rep = progress.New(os.Stderr, "shard "+opt.Format, "records", p.Total, p.Resumed)
			if p.Resumed > 0 {
				fmt.Fprintf(os.Stderr, "resuming: %d of %d records already in complete shards\n", p.Resumed, p.Total)
			}
		}
		note := ""
		if p.Rejected > 0 {
			note = fmt.Sprintf("%d rejected", p.Rejected)
		}
		rep.Update(p.Done, note)
	}
	start := time.Now()
	res, err := shards.Build(c.Context, opt)
	if rep != nil {
		rep.Finish()
	}
	if errors.Is(err, context.Canceled) {
		// 130 = 128 + SIGINT, as shells report an interrupted command.
		return cli.Exit(fmt.Sprintf("interrupted: complete shards are kept in %s; rerun the same command with --resume to finish", opt.Out), 130)
	}
	if err != nil {
		return err
	}
	m := res.Manifest
	el := time.Since(start).Seconds()
	fmt.Printf("wrote %d samples in %d shards to %s (%s, %s, %.1f h of audio) in %.1f s",
		m.Samples, len(m.Shards), opt.Out, m.Features.Family, m.DType, m.Duration/3600, el)
	if res.Resumed > 0 {
		fmt.Printf(", %d shards kept from the earlier run", res.Resumed)
	}
	fmt.Println()
	if m.Rejects.Total > 0 {
		fmt.Printf("rejected %d of %d records (see %s/%s):", m.Rejects.Total, m.Source.Records, opt.Out, shards.RejectsName)
		for _, r := range sortedKeys(m.Rejects.ByReason) {
			fmt.Printf(" %s %d", r, m.Rejects.ByReason[r])
		}
		fmt.Println()
		for i, r := range res.Rejects {
			if i == 3 {
				fmt.Println("  ...")
				break
			}
			fmt.Println("  " + r.String())
		}
	}
	return nil
}
