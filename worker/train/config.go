// Package train runs one rank of an earl training job: GRPO, SFT and ReST
// on audio question-answering shards, with AdamW state ZeRO-1 sharded over
// the job's ranks, checkpoints that resume exactly, and offline
// evaluation. docs/config.md documents every configuration key.
package train

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"earl/worker/grpo"
	"earl/worker/score"
)

// Config is a training or evaluation job. Defaults follow TRL's
// GRPOConfig and r1-aqa where they apply (learning_rate 1e-6, beta 0.04,
// num_generations 8, temperature 1.0, epsilon 0.2,
// max_completion_length 256, template "default").
type Config struct {
	Mode   string `toml:"mode"`    // grpo | sft | rest
	RunDir string `toml:"run_dir"` // checkpoints/, metrics.jsonl, eval/
	Seed   uint64 `toml:"seed"`

	Model ModelConfig `toml:"model"`
	Data  DataConfig  `toml:"data"`
	Train TrainConfig `toml:"train"`
	GRPO  GRPOConfig  `toml:"grpo"`
	SFT   SFTConfig   `toml:"sft"`
	ReST  ReSTConfig  `toml:"rest"`
	Eval  EvalConfig  `toml:"eval"`
	// Slurm holds defaults for `launcher sbatch`; the worker ignores it.
	Slurm map[string]any `toml:"slurm"`
}

// ModelConfig says which model to train and what of it trains.
type ModelConfig struct {
	Path        string   `toml:"path"` // Hugging Face model directory
	FreezeAudio bool     `toml:"freeze_audio"`
	FreezeProj  bool     `toml:"freeze_projector"`
	LoRARank    int      `toml:"lora_rank"` // 0: full fine-tuning
	LoRAAlpha   float64  `toml:"lora_alpha"`
	LoRATargets []string `toml:"lora_targets"`
	MaxTokens   int      `toml:"max_tokens"` // packed tokens per forward (activation buffers)
	// MaxPromptTokens bounds a prompt (audio tokens included); it sizes
	// the generation KV cache with max_completion_length.
	MaxPromptTokens int `toml:"max_prompt_tokens"`
	MaxAudioRows    int `toml:"max_audio_rows"` // audio encoder rows per forward
}

// DataConfig says where samples come from and how prompts are built.
type DataConfig struct {
	Train    string `toml:"train"` // shard directory
	Template string `toml:"template"`
	System   string `toml:"system"` // system prompt; empty: the chat format's default
	Chat     string `toml:"chat"`   // qwen2-audio | qwen2.5-omni; empty: the model's family
	// AnswerRule judges correctness for rewards and eval: choice | exact | mmau.
	AnswerRule score.Rule `toml:"answer_rule"`
}

// TrainConfig holds the optimizer and loop settings.
type TrainConfig struct {
	LearningRate float64 `toml:"learning_rate"`
	Schedule     string  `toml:"schedule"` // constant | cosine
	WarmupSteps  int     `toml:"warmup_steps"`
	MaxSteps     int     `toml:"max_steps"`
	// PromptsPerRank is how many prompts each rank takes per step (GRPO:
	// each becomes a group of num_generations completions; SFT: one
	// sequence each).
	PromptsPerRank int     `toml:"prompts_per_rank"`
	WeightDecay    float64 `toml:"weight_decay"`
	AdamBeta1      float64 `toml:"adam_beta1"`
	AdamBeta2      float64 `toml:"adam_beta2"`
	AdamEps        float64 `toml:"adam_epsilon"`
	MaxGradNorm    float64 `toml:"max_grad_norm"` // 0: no clipping
	SaveSteps      int     `toml:"save_steps"`
	SaveTotalLimit int     `toml:"save_total_limit"`
	LogSteps       int     `toml:"log_steps"`
}

// GRPOConfig holds the GRPO options, named as TRL names them.
type GRPOConfig struct {
	NumGenerations      int               `toml:"num_generations"`
	Temperature         float64           `toml:"temperature"`
	TopP                float64           `toml:"top_p"`
	TopK                int               `toml:"top_k"`
	MaxCompletionLength int               `toml:"max_completion_length"`
	Epsilon             float64           `toml:"epsilon"`
	EpsilonHigh         float64           `toml:"epsilon_high"` // 0: same as epsilon
	Delta               float64           `toml:"delta"`        // 0: no two-sided clipping
	Beta                float64           `toml:"beta"`
	ScaleRewards        grpo.Scaling      `toml:"scale_rewards"`
	LossType            grpo.LossType     `toml:"loss_type"`
	NumIterations       int               `toml:"num_iterations"` // mu: updates per generation batch
	MaskTruncated       bool              `toml:"mask_truncated_completions"`
	DynamicSampling     bool              `toml:"dynamic_sampling"` // drop groups whose rewards are all equal (DAPO)
	Rewards             []grpo.RewardSpec `toml:"rewards"`
}

// SFTConfig holds supervised fine-tuning options.
type SFTConfig struct {
	// Target is what the model learns to write: "answer" (<answer>choice</answer>)
	// or "reasoning" (the sample's reasoning trace from its extra field
	// "reasoning" or "thinking" in <think>, then the answer).
	Target string `toml:"target"`
}

// ReSTConfig holds ReST options: generate Samples per prompt, keep the
// correct ones ("all", "best" or "topk"), then SFT on them, for Iterations
// rounds with per-round learning rates.
type ReSTConfig struct {
	Samples       int       `toml:"samples"`
	Keep          string    `toml:"keep"`
	TopK          int       `toml:"top_k"`
	Iterations    int       `toml:"iterations"`
	LearningRates []float64 `toml:"learning_rates"`
	StepsPerIter  int       `toml:"steps_per_iteration"`
}

// EvalConfig configures `worker eval`.
type EvalConfig struct {
	Shards              string     `toml:"shards"`
	Checkpoint          string     `toml:"checkpoint"` // a step directory, or empty for the model path
	Out                 string     `toml:"out"`        // predictions JSONL
	Samples             int        `toml:"samples"`    // k per prompt (1: greedy)
	Temperature         float64    `toml:"temperature"`
	MaxCompletionLength int        `toml:"max_completion_length"`
	Rule                score.Rule `toml:"rule"`
	BatchPrompts        int        `toml:"batch_prompts"`
	Limit               int        `toml:"limit"` // evaluate the first N samples (0: all)
}

// Default returns the configuration with every default filled in.
func Default() *Config {
	return &Config{
		Mode: "grpo", RunDir: "runs/earl", Seed: 1,
		Model: ModelConfig{FreezeAudio: true, MaxTokens: 8192, MaxPromptTokens: 2048, MaxAudioRows: 4096},
		Data:  DataConfig{Template: "default", AnswerRule: score.RuleChoice},
		Train: TrainConfig{LearningRate: 1e-6, Schedule: "constant", MaxSteps: 100, PromptsPerRank: 1, AdamBeta1: 0.9,
			AdamBeta2: 0.999, AdamEps: 1e-8, MaxGradNorm: 1.0, SaveSteps: 50, SaveTotalLimit: 3, LogSteps: 1},
		GRPO: GRPOConfig{NumGenerations: 8, Temperature: 1.0, TopP: 1.0, MaxCompletionLength: 256, Epsilon: 0.2, Beta: 0.04,
			ScaleRewards: grpo.ScaleGroup, LossType: grpo.LossGRPO, NumIterations: 1,
			Rewards: []grpo.RewardSpec{{Name: "accuracy", Weight: 1}, {Name: "format", Format: "answer", Weight: 1}}},
		SFT:  SFTConfig{Target: "answer"},
		ReST: ReSTConfig{Samples: 8, Keep: "all", TopK: 1, Iterations: 1, StepsPerIter: 50},
		Eval: EvalConfig{Samples: 1, Temperature: 1.0, MaxCompletionLength: 256, Rule: score.RuleChoice, BatchPrompts: 8},
	}
}

// Load reads a TOML config over the defaults and applies --set overrides
// ("grpo.beta=0.02"). Unknown keys are errors, naming the key and file.
func Load(path string, sets []string) (*Config, error) {
	c := Default()
	if path != "" {
		md, err := toml.DecodeFile(path, c)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			var keys []string
			for _, k := range und {
				if !strings.HasPrefix(k.String(), "slurm.") {
					keys = append(keys, k.String())
				}
			}
			if len(keys) > 0 {
				return nil, fmt.Errorf("config %s: unknown keys %s (see docs/config.md)", path, strings.Join(keys, ", "))
			}
		}
	}
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("--set %q: want key=value", s)
		}
		if err := set(c, strings.TrimSpace(k), strings.TrimSpace(v)); err != nil {
			return nil, fmt.Errorf("--set %s: %w", s, err)
		}
	}
	if err := c.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return nil, err
	}
	return c, nil
}

// set assigns a dotted TOML key from its text (numbers, booleans,
// strings; lists as TOML arrays).
func set(c *Config, key, val string) error {
	v := reflect.ValueOf(c).Elem()
	parts := strings.Split(key, ".")
	for i, p := range parts {
		f, ok := fieldByTag(v, p)
		if !ok {
			return fmt.Errorf("unknown key %q", strings.Join(parts[:i+1], "."))
		}
		v = f
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(val)
	case reflect.Bool:
		b, err := strconv.ParseBool(val)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case reflect.Uint64:
		n, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return err
		}
		v.SetUint(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return err
		}
		v.SetFloat(f)
	default:
		// Lists and tables: parse the value as TOML.
		holder := reflect.New(reflect.StructOf([]reflect.StructField{{Name: "V", Type: v.Type(), Tag: `toml:"v"`}}))
		if _, err := toml.Decode("v = "+val, holder.Interface()); err != nil {
			return err
		}
		v.Set(holder.Elem().Field(0))
	}
	return nil
}

func fieldByTag(v reflect.Value, tag string) (reflect.Value, bool) {
	if v.Kind() != reflect.Struct {
		return reflect.Value{}, false
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		if strings.Split(t.Field(i).Tag.Get("toml"), ",")[0] == tag {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// Validate checks the configuration, naming the key at fault.
func (c *Config) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	switch c.Mode {
	case "grpo", "sft", "rest", "eval":
	default:
		bad("mode %q: use grpo, sft or rest", c.Mode)
	}
	if c.Model.Path == "" {
		bad("model.path is required")
	}
	t, g := c.Train, c.GRPO
	if t.LearningRate < 0 || t.MaxSteps < 0 || t.PromptsPerRank < 1 {
		bad("train: learning_rate, max_steps must be non-negative and prompts_per_rank at least 1")
	}
	if t.Schedule != "constant" && t.Schedule != "cosine" {
		bad("train.schedule %q: use constant or cosine", t.Schedule)
	}
	if t.AdamBeta1 < 0 || t.AdamBeta1 >= 1 || t.AdamBeta2 < 0 || t.AdamBeta2 >= 1 || t.AdamEps <= 0 {
		bad("train: adam_beta1 and adam_beta2 must be in [0, 1) and adam_epsilon positive")
	}
	if g.NumGenerations < 1 || g.MaxCompletionLength < 1 || g.NumIterations < 1 {
		bad("grpo: num_generations, max_completion_length and num_iterations must be at least 1")
	}
	if g.Temperature < 0 || g.TopP < 0 || g.TopP > 1 || g.TopK < 0 {
		bad("grpo: temperature >= 0, top_p in [0, 1], top_k >= 0")
	}
	if _, err := grpo.NewRewards(g.Rewards); err != nil && c.Mode == "grpo" {
		bad("grpo.rewards: %v", err)
	}
	if err := c.LossConfig().Validate(); err != nil && c.Mode == "grpo" {
		bad("grpo: %v", err)
	}
	if c.SFT.Target != "answer" && c.SFT.Target != "reasoning" {
		bad("sft.target %q: use answer or reasoning", c.SFT.Target)
	}
	if c.ReST.Samples < 1 || c.ReST.StepsPerIter < 1 || c.ReST.Iterations < 1 || (c.ReST.Keep == "topk" && c.ReST.TopK < 1) {
		bad("rest: samples, steps_per_iteration, iterations (and top_k with keep = \"topk\") must be at least 1")
	}
	if !c.Data.AnswerRule.Valid() {
		bad("data.answer_rule %q: use choice, exact, mmau or mmsu", c.Data.AnswerRule)
	}
	if !c.Eval.Rule.Valid() {
		bad("eval.rule %q: use choice, exact, mmau or mmsu", c.Eval.Rule)
	}
	switch c.ReST.Keep {
	case "all", "best", "topk":
	default:
		bad("rest.keep %q: use all, best or topk", c.ReST.Keep)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// TotalSteps is where training stops: train.max_steps, or for ReST
// rest.iterations x rest.steps_per_iteration.
func (c *Config) TotalSteps() int {
	if c.Mode == "rest" {
		return c.ReST.Iterations * c.ReST.StepsPerIter
	}
	return c.Train.MaxSteps
}

// LossConfig is the grpo package's view of the GRPO options.
func (c *Config) LossConfig() *grpo.Config {
	g := c.GRPO
	hi := g.EpsilonHigh
	if hi == 0 {
		hi = g.Epsilon
	}
	lc := &grpo.Config{NumGenerations: g.NumGenerations, MaxCompletionLength: g.MaxCompletionLength, EpsilonLow: g.Epsilon,
		EpsilonHigh: hi, Beta: g.Beta, ScaleRewards: g.ScaleRewards, LossType: g.LossType}
	if g.Delta != 0 {
		d := g.Delta
		lc.Delta = &d
	}
	return lc
}

// Hash identifies the settings that decide a run's numbers; a resume with
// a different hash is refused unless forced.
func (c *Config) Hash() string {
	cc := *c
	// Where the run lives and how long it goes on do not change what a
	// step computes: a moved run directory or a raised max_steps resumes.
	cc.Eval, cc.Slurm, cc.RunDir = EvalConfig{}, nil, ""
	cc.Train.MaxSteps, cc.Train.SaveSteps, cc.Train.SaveTotalLimit, cc.Train.LogSteps = 0, 0, 0, 0
	b, _ := json.Marshal(cc)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// WriteFile saves the effective configuration (defaults and overrides
// applied) as TOML, for the record in the run directory.
func (c *Config) WriteFile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = toml.NewEncoder(f).Encode(c)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
