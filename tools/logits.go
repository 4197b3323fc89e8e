package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"earl/kernels"
	"earl/kernels/cpu"
	"earl/shards/audio"
	"earl/tools/npy"
	"earl/worker/model"
)

func logitsCommand() *cli.Command {
	return &cli.Command{
		Name:      "logits",
		Usage:     "run a model on one request and write its logits (or target log-probs) as .npy",
		UsageText: "tools logits --model DIR --input REQ.json --out OUT.npy [--logprobs] [--temperature T]",
		Description: `REQ.json: {"input_ids": [...], "audio": [{"features": "x.npy", "frames": T}], "targets": [...]}.
input_ids already hold the expanded audio placeholder tokens. features is a float32 [n_mels, frames]
.npy file (relative paths are relative to REQ.json): for Qwen2-Audio the padded [128, 3000] matrix
(tools mel), for Qwen2.5-Omni the padded or the valid frames (tools mel --valid); frames is the valid
frame count T. Writes logits [N, vocab] as float32 .npy, or with --logprobs the log-probability of
targets[i] at each position i ([N], NaN where targets[i] is -1). This is how anyone can check earl
against another implementation.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Required: true, Usage: "Hugging Face model directory"},
			&cli.StringFlag{Name: "input", Required: true, Usage: "request JSON"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output .npy"},
			&cli.BoolFlag{Name: "logprobs", Usage: "write log p(targets[i]) per position instead of logits"},
			&cli.Float64Flag{Name: "temperature", Value: 1, Usage: "divide the logits by this before the log-softmax (--logprobs)"},
		},
		Action: runLogits,
	}
}

type logitsRequest struct {
	InputIDs []int32 `json:"input_ids"`
	Audio    []struct {
		Features string `json:"features"`
		Frames   int    `json:"frames"`
	} `json:"audio"`
	Targets []int32 `json:"targets"`
}

func runLogits(c *cli.Context) error {
	reqPath := c.String("input")
	b, err := os.ReadFile(reqPath)
	if err != nil {
		return err
	}
	var req logitsRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("%s: %w", reqPath, err)
	}
	if len(req.InputIDs) == 0 {
		return fmt.Errorf("%s: no input_ids", reqPath)
	}
	if req.Targets != nil && len(req.Targets) != len(req.InputIDs) {
		return fmt.Errorf("%s: %d targets for %d input_ids (use -1 where none)", reqPath, len(req.Targets), len(req.InputIDs))
	}
	ck, err := model.Open(c.String("model"))
	if err != nil {
		return err
	}
	cfg := ck.Config
	ck.Close()
	var clips []model.Clip
	rows := 0
	for k, a := range req.Audio {
		p := a.Features
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(reqPath), p)
		}
		shape, v, err := npy.ReadFloat32(p)
		if err != nil {
			return fmt.Errorf("audio %d: %w", k, err)
		}
		if len(shape) != 2 || shape[0] != cfg.Audio.NumMelBins {
			return fmt.Errorf("audio %d: %s has shape %v, want [%d, frames]", k, p, shape, cfg.Audio.NumMelBins)
		}
		total := 3000
		if cfg.Family == model.Qwen25Omni {
			total = 30000
		}
		mels, frames := shape[0], shape[1]
		if a.Frames <= 0 || a.Frames > frames || frames > total {
			return fmt.Errorf("audio %d: frames %d with a [%d, %d] matrix (and at most %d padded frames)", k, a.Frames, mels, frames, total)
		}
		if cfg.Family == model.Qwen2Audio && frames != 3000 {
			return fmt.Errorf("audio %d: Qwen2-Audio reads the padded [128, 3000] log-mel (tools mel --family qwen2-audio), got %d frames", k, frames)
		}
		clip := melClip(a.Frames, mels, v)
		clip.Mel.TotalFrames = total
		clips = append(clips, clip)
		rows += (a.Frames-1)/2 + 1
	}
	m, err := model.Load(cpu.New(), c.String("model"), model.Freeze{Audio: true, Projector: true, Text: true},
		model.Limits{MaxTokens: len(req.InputIDs), MaxSeqs: 1, MaxAudio: len(clips), MaxAudioRows: rows + 1})
	if err != nil {
		return err
	}
	batch := &model.Batch{Tokens: req.InputIDs, Seqs: kernels.Seqs{Offsets: []int32{0, int32(len(req.InputIDs))}}, Audio: clips,
		Temperature: float32(c.Float64("temperature"))}
	n := len(req.InputIDs)
	if !c.Bool("logprobs") {
		logits, err := m.Logits(batch)
		if err != nil {
			return err
		}
		if err := npy.SaveFloat32(c.String("out"), []int{n, cfg.Text.VocabSize}, logits); err != nil {
			return err
		}
		fmt.Printf("wrote logits [%d, %d] to %s\n", n, cfg.Text.VocabSize, c.String("out"))
		return nil
	}
	if req.Targets == nil {
		return fmt.Errorf("%s: --logprobs needs targets", reqPath)
	}
	batch.Targets = req.Targets
	out, err := m.Forward(batch)
	if err != nil {
		return err
	}
	lp := make([]float32, n)
	for i := range lp {
		lp[i] = float32(math.NaN())
	}
	for k, pos := range out.Positions {
		lp[pos] = out.LogProbs[k]
	}
	if err := npy.SaveFloat32(c.String("out"), []int{n}, lp); err != nil {
		return err
	}
	fmt.Printf("wrote %d log-probs to %s\n", len(out.Positions), c.String("out"))
	return nil
}

// melClip wraps a mel-major [mels][frames] matrix with t valid frames as a
// clip (frames at or past the stored ones are never read).
func melClip(t, mels int, v []float32) model.Clip {
	frames := len(v) / mels
	total := 3000
	if frames > total {
		total = 30000
	}
	m := &audio.LogMel{Mels: mels, TotalFrames: total, ValidFrames: t, StoredFrames: frames, Data: make([]float32, mels*frames)}
	for f := 0; f < frames; f++ {
		for ch := 0; ch < mels; ch++ {
			m.Data[f*mels+ch] = v[ch*frames+f]
		}
	}
	return model.Clip{Mel: m}
}
