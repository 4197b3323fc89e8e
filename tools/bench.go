package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards"
	"earl/shards/audio"
	"earl/tools/npy"
	"earl/tools/synth"
	"earl/worker/model"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure earl against references (make bench runs these side by side with numpy / torch)",
		Subcommands: []*cli.Command{
			{
				Name:  "mel",
				Usage: "time the log-mel of N 16 kHz clips and write inputs and outputs for the Python reference",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "clips", Value: 32},
					&cli.Float64Flag{Name: "seconds", Value: 10},
					&cli.StringFlag{Name: "family", Value: string(audio.Qwen2Audio)},
					&cli.IntFlag{Name: "repeat", Value: 3, Usage: "timed passes; the best is reported"},
					&cli.StringFlag{Name: "out", Required: true, Usage: "directory for input.npy, earl.npy and earl.json"},
				},
				Action: benchMel,
			},
			{
				Name:  "model",
				Usage: "forward + backward tokens/s of the language model path, and generation tokens/s",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "model", Required: true, Usage: "Hugging Face model directory (tools init-model)"},
					&cli.IntFlag{Name: "batch", Value: 4},
					&cli.IntFlag{Name: "seq", Value: 256},
					&cli.IntFlag{Name: "repeat", Value: 3, Usage: "timed steps; the best is reported"},
					&cli.IntFlag{Name: "gen-tokens", Value: 64, Usage: "new tokens per sequence in the generation benchmark"},
					&cli.StringFlag{Name: "json", Usage: "also write the figures here"},
				},
				Action: benchModel,
			},
			{
				Name:  "shard",
				Usage: "end-to-end `launcher shard` throughput on synthetic WAV clips",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "clips", Value: 300},
					&cli.Float64Flag{Name: "seconds", Value: 10},
					&cli.IntFlag{Name: "rate", Value: 44100},
					&cli.IntFlag{Name: "channels", Value: 2},
					&cli.IntFlag{Name: "workers", Value: runtime.GOMAXPROCS(0)},
					&cli.IntFlag{Name: "repeat", Value: 3, Usage: "timed runs; the best is reported"},
					&cli.StringFlag{Name: "dir", Required: true, Usage: "work directory (clips are generated once and reused)"},
					&cli.StringFlag{Name: "json", Usage: "also write the figures here"},
				},
				Action: benchShard,
			},
			benchCkptCommand(),
			benchGRPOCommand(),
			benchCollectiveCommand(),
		},
	}
}

// benchClip is a deterministic 16 kHz test signal: tones over noise.
func benchClip(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 11))
	x := make([]float32, n)
	f1, f2 := 200+800*r.Float64(), 1000+3000*r.Float64()
	for i := range x {
		t := float64(i) / 16000
		x[i] = float32(0.3*math.Sin(2*math.Pi*f1*t) + 0.1*math.Sin(2*math.Pi*f2*t) + 0.02*r.NormFloat64())
	}
	return x
}

func benchMel(c *cli.Context) error {
	cfg, err := audio.ConfigFor(audio.Family(c.String("family")))
	if err != nil {
		return err
	}
	n, clips := int(c.Float64("seconds")*16000), c.Int("clips")
	in := make([][]float32, clips)
	for i := range in {
		in[i] = benchClip(n, uint64(i))
	}
	out := make([]*audio.LogMel, clips)
	run := func(workers int) time.Duration {
		best := time.Duration(math.MaxInt64)
		for rep := 0; rep < c.Int("repeat"); rep++ {
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					e, _ := audio.NewExtractor(cfg)
					for i := w; i < clips; i += workers {
						out[i] = e.Compute(in[i])
					}
				}()
			}
			wg.Wait()
			best = min(best, time.Since(start))
		}
		return best
	}
	one := run(1)
	all := run(runtime.GOMAXPROCS(0))
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	flat := make([]float32, 0, clips*n)
	for _, x := range in {
		flat = append(flat, x...)
	}
	if err := npy.SaveFloat32(filepath.Join(dir, "input.npy"), []int{clips, n}, flat); err != nil {
		return err
	}
	frames := cfg.TotalFrames()
	feats := make([]float32, 0, clips*cfg.Mels*frames)
	for _, m := range out {
		feats = append(feats, m.Padded()...)
	}
	if err := npy.SaveFloat32(filepath.Join(dir, "earl.npy"), []int{clips, cfg.Mels, frames}, feats); err != nil {
		return err
	}
	res := map[string]any{"clips": clips, "seconds": c.Float64("seconds"), "family": cfg.Family, "n_samples": cfg.PadSamples,
		"earl_1thread_s": one.Seconds(), "earl_all_s": all.Seconds(), "threads": runtime.GOMAXPROCS(0)}
	b, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, "earl.json"), b, 0o644); err != nil {
		return err
	}
	fmt.Printf("earl log-mel, %d clips of %gs (%s): %.2f ms/clip on 1 thread, %.2f ms/clip on %d threads\n",
		clips, c.Float64("seconds"), cfg.Family, 1e3*one.Seconds()/float64(clips), 1e3*all.Seconds()/float64(clips), runtime.GOMAXPROCS(0))
	return nil
}

func benchShard(c *cli.Context) error {
	dir := c.String("dir")
	src := filepath.Join(dir, "clips")
	ann := filepath.Join(src, "synth.jsonl")
	clips := c.Int("clips")
	if _, err := os.Stat(ann); err != nil {
		fmt.Printf("generating %d clips of %gs, %d Hz, %d channels, PCM16 in %s\n", clips, c.Float64("seconds"), c.Int("rate"), c.Int("channels"), src)
		_, err := synth.Generate(synth.Options{Format: "jsonl", N: clips, Seed: 1, Out: src, Rates: []int{c.Int("rate")},
			Channels: []int{c.Int("channels")}, MinSeconds: c.Float64("seconds"), MaxSeconds: c.Float64("seconds"),
			Encodings: []audio.Encoding{audio.PCM16}})
		if err != nil {
			return err
		}
	}
	// Read every clip once so the timed runs measure earl, not the disk.
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			os.ReadFile(p)
		}
		return nil
	})
	best := math.Inf(1)
	var res *shards.BuildResult
	for rep := 0; rep < c.Int("repeat"); rep++ {
		out := filepath.Join(dir, "shards")
		os.RemoveAll(out)
		start := time.Now()
		r, err := shards.Build(context.Background(), shards.BuildOptions{Format: "jsonl", Src: ann, AudioRoot: src, Out: out,
			Workers: c.Int("workers")})
		if err != nil {
			return err
		}
		best, res = math.Min(best, time.Since(start).Seconds()), r
	}
	if res.Manifest.Samples != clips {
		return fmt.Errorf("sharded %d of %d clips", res.Manifest.Samples, clips)
	}
	var bytes int64
	for _, s := range res.Manifest.Shards {
		bytes += s.Bytes
	}
	rate := float64(clips) / best
	fmt.Printf("earl shard: %d clips of %gs %d Hz %d ch in %.2f s = %.1f clips/s with %d workers (%.1f MB of shards)\n",
		clips, c.Float64("seconds"), c.Int("rate"), c.Int("channels"), best, rate, c.Int("workers"), float64(bytes)/1e6)
	if p := c.String("json"); p != "" {
		b, _ := json.MarshalIndent(map[string]any{"clips": clips, "seconds": best, "clips_per_s": rate, "workers": c.Int("workers"),
			"shard_bytes": bytes, "clip_seconds": c.Float64("seconds"), "rate": c.Int("rate"), "channels": c.Int("channels")}, "", "  ")
		return os.WriteFile(p, b, 0o644)
	}
	return nil
}

func benchModel(c *cli.Context) error {
	B, T := c.Int("batch"), c.Int("seq")
	m, err := model.Load(cpu.New(), c.String("model"), model.Freeze{Audio: true, Projector: true},
		model.Limits{MaxTokens: B * T, MaxSeqs: B, LogProbChunk: 128})
	if err != nil {
		return err
	}
	r := rand.New(rand.NewPCG(1, 2))
	v := m.Cfg.Text.VocabSize
	b := &model.Batch{Seqs: kernels.Seqs{Offsets: []int32{0}}}
	for s := 0; s < B; s++ {
		for i := 0; i < T; i++ {
			b.Tokens = append(b.Tokens, int32(r.IntN(v)))
		}
		b.Seqs.Offsets = append(b.Seqs.Offsets, int32(len(b.Tokens)))
	}
	b.Targets = make([]int32, len(b.Tokens))
	for i := range b.Targets {
		if (i+1)%T == 0 {
			b.Targets[i] = -1
		} else {
			b.Targets[i] = b.Tokens[i+1]
		}
	}
	var fwd, step time.Duration = math.MaxInt64, math.MaxInt64
	for rep := 0; rep < c.Int("repeat")+1; rep++ {
		start := time.Now()
		out, err := m.Forward(b)
		if err != nil {
			return err
		}
		mid := time.Now()
		w := make([]float32, len(out.LogProbs))
		for i := range w {
			w[i] = -1 / float32(len(w))
		}
		m.ZeroGrad()
		if err := m.Backward(w, nil); err != nil {
			return err
		}
		if rep > 0 { // the first step warms caches and page-faults buffers
			fwd, step = min(fwd, mid.Sub(start)), min(step, time.Since(start))
		}
	}
	tokens := float64(B * T)
	fmt.Printf("earl model %s: batch %d x %d tokens: forward %.1f ms, forward+backward %.1f ms = %.0f tokens/s (%d threads)\n",
		c.String("model"), B, T, ms(fwd), ms(step), tokens/step.Seconds(), runtime.GOMAXPROCS(0))

	// Generation: B prompts of 32 tokens, gen-tokens new tokens each, greedy.
	nt := c.Int("gen-tokens")
	g, err := m.NewGenerator(model.GenLimits{Slots: B, MaxLen: 32 + nt})
	if err != nil {
		return err
	}
	var ps []model.Prompt
	for s := 0; s < B; s++ {
		ps = append(ps, model.Prompt{Tokens: b.Tokens[s*T : s*T+32], Seed: uint64(s)})
	}
	var gen time.Duration = math.MaxInt64
	for rep := 0; rep < 2; rep++ {
		start := time.Now()
		if _, err := g.Generate(ps, 1, model.SampleOptions{MaxNewTokens: nt}); err != nil {
			return err
		}
		gen = min(gen, time.Since(start))
	}
	genRate := float64(B*nt) / gen.Seconds()
	peak := peakRSS()
	fmt.Printf("earl generation: %d sequences x %d new tokens in %.1f ms = %.0f tokens/s; peak RSS %.0f MB\n", B, nt, ms(gen), genRate, peak/1e6)
	if p := c.String("json"); p != "" {
		b, _ := json.MarshalIndent(map[string]any{"batch": B, "seq": T, "forward_ms": ms(fwd), "step_ms": ms(step),
			"tokens_per_s": tokens / step.Seconds(), "gen_tokens_per_s": genRate, "peak_rss_bytes": peak,
			"threads": runtime.GOMAXPROCS(0)}, "", "  ")
		return os.WriteFile(p, b, 0o644)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:")), "%f", &kb)
			return kb * 1024
		}
	}
	return 0
}
