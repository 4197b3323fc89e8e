// Command tools holds earl's windows for checking it from outside:
// synthetic datasets (synth) and log-mel features as .npy (mel). See
// README.md for the full usage.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"earl/launcher/argorder"

	"earl/shards/audio"
	"earl/shards/sources"
	"earl/tools/npy"
	"earl/tools/synth"
)

func main() {
	app := &cli.App{
		Name:           "tools",
		Usage:          "earl's tools for data generation and parity checks",
		Commands:       []*cli.Command{synthCommand(), melCommand(), initModelCommand(), logitsCommand(), tokenizeCommand(), grpoLossCommand(), rewardsCommand(), benchCommand(), scoreCommand()},
		ExitErrHandler: func(*cli.Context, error) {},
	}
	if err := app.Run(argorder.FlagsFirst(app, os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "tools:", err)
		if ec, ok := err.(cli.ExitCoder); ok {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func synthCommand() *cli.Command {
	return &cli.Command{
		Name:  "synth",
		Usage: "write a synthetic audio QA dataset in a source format, or fill in audio for real annotations",
		UsageText: "tools synth --task NAME --format SOURCE --n N --seed S --out DIR [--rates ...] [--channels ...] [--duration MIN:MAX]\n" +
			"   tools synth --fill-audio ANNOTATION --format SOURCE --out AUDIO_ROOT",
		Description: "Tasks with answers verifiable from the audio: count (beeps), pitch (which tone is higher),\n" +
			"duration (which sound is longer), loudness (louder first or second), sweep (rising or falling),\n" +
			"or mixed (one of them per sample). Clips are WAV files of varied rates, channel counts and\n" +
			"encodings. --fill-audio writes a short clip at every audio path of an existing annotation file.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "task", Value: "mixed", Usage: "mixed, " + strings.Join(synth.Tasks, ", ")},
			&cli.StringFlag{Name: "format", Value: "jsonl", Usage: "source format to write: " + strings.Join(sources.Names(), ", ")},
			&cli.IntFlag{Name: "n", Value: 100, Usage: "number of samples"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed writes the same files"},
			&cli.StringFlag{Name: "out", Usage: "output directory", Required: true},
			&cli.StringFlag{Name: "rates", Usage: "comma-separated sample rates to draw from (default 8000,16000,22050,32000,44100,48000)"},
			&cli.StringFlag{Name: "channels", Value: "1,2", Usage: "comma-separated channel counts to draw from"},
			&cli.StringFlag{Name: "duration", Value: "1:6", Usage: "clip length in seconds, MIN:MAX or a single value"},
			&cli.StringFlag{Name: "encoding", Usage: "force one WAV encoding: pcm8, pcm16, pcm24, pcm32, float32, float64 (default: a mix)"},
			&cli.StringFlag{Name: "fill-audio", Usage: "annotation file whose referenced audio files to synthesise under --out"},
		},
		Action: runSynth,
	}
}

func runSynth(c *cli.Context) error {
	if ann := c.String("fill-audio"); ann != "" {
		n, err := synth.FillAudio(c.String("format"), ann, c.String("out"), c.Uint64("seed"), false)
		if err != nil {
			return err
		}
		fmt.Printf("wrote %d clips under %s for %s\n", n, c.String("out"), ann)
		return nil
	}
	o := synth.Options{Task: c.String("task"), Format: c.String("format"), N: c.Int("n"), Seed: c.Uint64("seed"), Out: c.String("out")}
	var err error
	if s := c.String("rates"); s != "" {
		if o.Rates, err = intList(s, "--rates"); err != nil {
			return err
		}
	}
	if o.Channels, err = intList(c.String("channels"), "--channels"); err != nil {
		return err
	}
	lo, hi, ok := strings.Cut(c.String("duration"), ":")
	if !ok {
		hi = lo
	}
	if o.MinSeconds, err = strconv.ParseFloat(lo, 64); err != nil {
		return fmt.Errorf("--duration %q: want MIN:MAX seconds", c.String("duration"))
	}
	if o.MaxSeconds, err = strconv.ParseFloat(hi, 64); err != nil {
		return fmt.Errorf("--duration %q: want MIN:MAX seconds", c.String("duration"))
	}
	if e := c.String("encoding"); e != "" {
		enc, ok := map[string]audio.Encoding{"pcm8": audio.PCM8, "pcm16": audio.PCM16, "pcm24": audio.PCM24,
			"pcm32": audio.PCM32, "float32": audio.Float32, "float64": audio.Float64}[e]
		if !ok {
			return fmt.Errorf("--encoding %q: use pcm8, pcm16, pcm24, pcm32, float32 or float64", e)
		}
		o.Encodings = []audio.Encoding{enc}
	}
	res, err := synth.Generate(o)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d samples to %s\n", res.Samples, o.Out)
	cmd := fmt.Sprintf("launcher shard --in %s --src %s --audio-root %s --out SHARD_DIR", o.Format, res.Annotation, res.AudioRoot)
	if res.Split != "" {
		cmd += " --split " + res.Split
	}
	fmt.Println("shard it with:", cmd)
	return nil
}

func intList(s, flag string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%s %q: want comma-separated positive integers", flag, s)
		}
		out = append(out, v)
	}
	return out, nil
}

func melCommand() *cli.Command {
	return &cli.Command{
		Name:      "mel",
		Usage:     "compute the Whisper log-mel of an audio file and write it as .npy",
		UsageText: "tools mel IN.wav --family qwen2-audio|qwen2.5-omni --npy OUT.npy [--valid]",
		Description: "Decodes (WAV, FLAC, MP3), mixes to mono, resamples to 16 kHz and writes the full padded\n" +
			"log-mel [128, frames] as float32 .npy, exactly as `launcher shard` computes it; --valid writes\n" +
			"only the valid frames (what Qwen2.5-Omni's encoder reads).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "family", Value: string(audio.Qwen2Audio), Usage: "qwen2-audio or qwen2.5-omni"},
			&cli.StringFlag{Name: "npy", Usage: "output .npy file", Required: true},
			&cli.BoolFlag{Name: "valid", Usage: "write the valid frames only"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("usage: tools mel IN.wav --family F --npy OUT.npy", 2)
			}
			cfg, err := audio.ConfigFor(audio.Family(c.String("family")))
			if err != nil {
				return err
			}
			clip, err := audio.Decode(c.Args().First())
			if err != nil {
				return err
			}
			x := clip.Samples
			if clip.SampleRate != cfg.SampleRate {
				rs, err := audio.NewResampler(clip.SampleRate, cfg.SampleRate)
				if err != nil {
					return fmt.Errorf("%s: %w", c.Args().First(), err)
				}
				x = rs.Resample(nil, x)
			}
			ext, err := audio.NewExtractor(cfg)
			if err != nil {
				return err
			}
			m := ext.Compute(x)
			frames, data := m.TotalFrames, m.Padded()
			if c.Bool("valid") {
				frames, data = m.ValidFrames, m.Valid()
			}
			if err := npy.SaveFloat32(c.String("npy"), []int{m.Mels, frames}, data); err != nil {
				return err
			}
			fmt.Printf("%s: %s, %d Hz, %d ch, %.3f s -> %s [%d, %d] (%d valid frames)\n", c.Args().First(), clip.Format,
				clip.SampleRate, clip.Channels, clip.Duration(), c.String("npy"), m.Mels, frames, m.ValidFrames)
			return nil
		},
	}
}
