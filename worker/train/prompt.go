package train

import (
	"fmt"
	"strings"

	"earl/shards"
	"earl/worker/grpo"
	"earl/worker/model"
	"earl/worker/score"
	"earl/worker/tokenizer"
)

// Prompter turns shard records into model prompts: the task template
// renders the question, the chat format wraps it with the audio in a user
// turn, and the audio placeholder is expanded to the clip's token count.
type Prompter struct {
	Tok    *tokenizer.Tokenizer
	tmpl   *tokenizer.Template
	format tokenizer.ChatFormat
	system string
	cfg    *model.Config
	// Stop ends a completion: <|im_end|> and <|endoftext|>.
	Stop []int32
	// ImEnd is the id that closes an assistant turn (the SFT target's end).
	ImEnd int32
	// Suppress are the audio placeholder and markers: a completion holding
	// them would read as audio input when scored.
	Suppress []int32
}

// NewPrompter builds a Prompter for a model. Tokens the chat needs must be
// in the tokenizer with the ids the model's config gives the audio tokens.
func NewPrompter(tok *tokenizer.Tokenizer, mc *model.Config, d DataConfig) (*Prompter, error) {
	tmpl, err := tokenizer.NewTemplate(d.Template)
	if err != nil {
		return nil, fmt.Errorf("data.template: %w", err)
	}
	format := tokenizer.ChatQwen2Audio
	if mc.Family == model.Qwen25Omni {
		format = tokenizer.ChatQwen25Omni
	}
	if d.Chat != "" {
		if format, err = tokenizer.ParseChatFormat(d.Chat); err != nil {
			return nil, fmt.Errorf("data.chat: %w", err)
		}
	}
	p := &Prompter{Tok: tok, tmpl: tmpl, format: format, system: d.System, cfg: mc}
	for tokText, want := range map[string]int{tokenizer.AudioToken: mc.AudioTokenID, tokenizer.AudioBOS: mc.AudioStartID, tokenizer.AudioEOS: mc.AudioEndID} {
		if ids := tok.Encode(tokText); len(ids) != 1 || ids[0] != want {
			return nil, fmt.Errorf("the tokenizer encodes %s as %v but the model's config gives it id %d: the tokenizer does not belong to this model", tokText, ids, want)
		}
	}
	for _, s := range []string{tokenizer.ImEnd, tokenizer.EndOfText} {
		ids := tok.Encode(s)
		if len(ids) != 1 {
			return nil, fmt.Errorf("the tokenizer has no single token for %s", s)
		}
		p.Stop = append(p.Stop, int32(ids[0]))
	}
	p.ImEnd = p.Stop[0]
	p.Suppress = []int32{int32(mc.AudioTokenID), int32(mc.AudioStartID), int32(mc.AudioEndID)}
	return p, nil
}

// Question is what the template sees of a record.
func question(r *shards.Record) tokenizer.Question {
	return tokenizer.Question{Question: r.Question, Choices: r.Choices, Source: r.Source}
}

// Prompt returns the token ids of a record's prompt (audio placeholders
// expanded, ending with the assistant turn's header) and its clip.
func (p *Prompter) Prompt(r *shards.Record) ([]int32, model.Clip, error) {
	text, err := p.tmpl.Render(question(r))
	if err != nil {
		return nil, model.Clip{}, fmt.Errorf("sample %s: %w", r.ID, err)
	}
	var msgs []tokenizer.Message
	if p.system != "" {
		msgs = append(msgs, tokenizer.TextMessage("system", p.system))
	}
	msgs = append(msgs, tokenizer.Message{Role: "user", Parts: []tokenizer.Part{{Audio: true}, {Text: text}}})
	if r.Mel == nil {
		return nil, model.Clip{}, fmt.Errorf("sample %s: no features loaded", r.ID)
	}
	n := p.cfg.AudioTokens(r.Mel.ValidFrames)
	ids, err := tokenizer.EncodeChat(p.Tok, p.format, msgs, true, p.cfg.AudioTokenID, []int{n})
	if err != nil {
		return nil, model.Clip{}, fmt.Errorf("sample %s: %w", r.ID, err)
	}
	return toInt32(ids), model.Clip{Mel: r.Mel}, nil
}

// Completion decodes generated ids as TRL does (skip_special_tokens).
func (p *Prompter) Completion(ids []int32) string {
	return p.Tok.DecodeSkipSpecial(toInt(ids))
}

// Stopped reports whether a completion ended with a stop token (rather than
// running into the length limit).
func (p *Prompter) Stopped(ids []int32) bool {
	if len(ids) == 0 {
		return false
	}
	for _, s := range p.Stop {
		if ids[len(ids)-1] == s {
			return true
		}
	}
	return false
}

// Target is the assistant text SFT trains on for a record: the answer in
// <answer> tags, or with target "reasoning" the record's reasoning trace in
// <think> first (SoundMind's extra field "reasoning", or "thinking").
func Target(r *shards.Record, target string) (string, error) {
	ans := "<answer>" + r.Answer + "</answer>"
	if target != "reasoning" {
		return ans, nil
	}
	trace := r.Extra["reasoning"]
	if trace == "" {
		trace = r.Extra["thinking"]
	}
	if trace == "" {
		return "", fmt.Errorf("sample %s has no reasoning trace (extra field \"reasoning\" or \"thinking\") for sft.target = \"reasoning\"", r.ID)
	}
	// A SoundMind trace may already hold its <think> and <answer> parts.
	if strings.Contains(trace, "<answer>") {
		return trace, nil
	}
	return "<think>" + score.Strip(trace) + "</think>" + ans, nil
}

// SFTTokens is the completion SFT trains on: the target text's tokens and
// <|im_end|>.
func (p *Prompter) SFTTokens(text string) []int32 {
	return append(toInt32(p.Tok.Encode(text)), p.ImEnd)
}

// Item is what the reward functions see of a completion of a record.
func Item(r *shards.Record, completion string) grpo.Item {
	it := grpo.Item{Completion: completion, Solution: r.Answer, Choices: r.Choices}
	if tr := r.Extra["reasoning"]; tr != "" {
		it.ThinkTargetWords = len(score.Fields(tr))
	}
	return it
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

func toInt(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
