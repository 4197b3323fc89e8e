package train

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every committed job config is one worker train accepts.
func TestCommittedConfigsLoad(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.toml")
	if err != nil || len(files) < 4 {
		t.Fatalf("configs: %v %v", files, err)
	}
	for _, f := range files {
		c, err := Load(f, nil)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if c.Model.Path == "" || c.Data.Train == "" && c.Eval.Shards == "" {
			t.Errorf("%s: no model.path, or neither data.train nor eval.shards", f)
		}
	}
}

func TestConfigErrorsNameFileAndKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		path string
		sets []string
		want string
	}{
		{write("typo.toml", "[model]\npath = \"m\"\n[grpo]\nnum_generation = 4\n"), nil, "typo.toml: unknown keys grpo.num_generation"},
		{write("neg.toml", "[model]\npath = \"m\"\n[grpo]\nbeta = -1\n"), nil, "neg.toml: invalid config: grpo: beta must be non-negative"},
		{write("nomodel.toml", "mode = \"grpo\"\n"), nil, "nomodel.toml: invalid config: model.path is required"},
		{write("ok.toml", "[model]\npath = \"m\"\n"), []string{"grpo.bogus=1"}, `--set grpo.bogus=1: unknown key "grpo.bogus"`},
		{write("ok2.toml", "[model]\npath = \"m\"\n"), []string{"train.max_steps=ten"}, "--set train.max_steps=ten"},
		{write("mode.toml", "mode = \"ppo\"\n[model]\npath = \"m\"\n"), nil, `mode "ppo"`},
		{write("rule.toml", "[model]\npath = \"m\"\n[eval]\nrule = \"best\"\n"), nil, `eval.rule "best"`},
		{write("arule.toml", "[model]\npath = \"m\"\n[data]\nanswer_rule = \"MMAU\"\n"), nil, `data.answer_rule "MMAU"`},
	} {
		_, err := Load(c.path, c.sets)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %v: %v, want %q", filepath.Base(c.path), c.sets, err, c.want)
		}
	}
	// --set overrides the file, lists included.
	c, err := Load(write("base.toml", "[model]\npath = \"m\"\n[grpo]\nbeta = 0.1\n"),
		[]string{"grpo.beta=0.02", `grpo.rewards=[{name="accuracy", weight=2.0}]`, "model.freeze_audio=false"})
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPO.Beta != 0.02 || len(c.GRPO.Rewards) != 1 || c.GRPO.Rewards[0].Weight != 2 || c.Model.FreezeAudio {
		t.Errorf("overrides not applied: beta %v rewards %+v freeze_audio %v", c.GRPO.Beta, c.GRPO.Rewards, c.Model.FreezeAudio)
	}
}
