package tokenizer

import (
	_ "embed"
	"fmt"
	"strings"
)

// ChatFormat is a model family's chat template, reproduced from the
// processors' Jinja templates in transformers.
type ChatFormat string

// The chat formats.
const (
	// ChatQwen2Audio: Qwen2AudioProcessor's template. Every audio item
	// renders as "Audio k: <|audio_bos|><|AUDIO|><|audio_eos|>\n".
	ChatQwen2Audio ChatFormat = "qwen2-audio"
	// ChatQwen25Omni: Qwen2_5OmniProcessor's template with
	// add_audio_id=False (its default): "<|audio_bos|><|AUDIO|><|audio_eos|>".
	ChatQwen25Omni ChatFormat = "qwen2.5-omni"
)

// The special token strings the templates use.
const (
	ImStart    = "<|im_start|>"
	ImEnd      = "<|im_end|>"
	EndOfText  = "<|endoftext|>"
	AudioToken = "<|AUDIO|>"
	AudioBOS   = "<|audio_bos|>"
	AudioEOS   = "<|audio_eos|>"
)

// DefaultSystem is the system message both templates insert when the
// conversation does not start with one.
const DefaultSystem = "You are a helpful assistant."

// OmniSystem is the system prompt Qwen2.5-Omni's model card uses (the
// model was trained with it; it is required for speech output).
const OmniSystem = "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory and visual inputs, as well as generating text and speech."

// Part is one item of a message's content: text, or an audio clip.
type Part struct {
	Text  string
	Audio bool
}

// Message is one chat turn. A message with a single text part renders
// exactly like the templates' string-content branch.
type Message struct {
	Role  string // system, user, assistant
	Parts []Part
}

// TextMessage is a message holding one text part.
func TextMessage(role, text string) Message {
	return Message{Role: role, Parts: []Part{{Text: text}}}
}

var (
	//go:embed jinja/qwen2-audio.jinja
	qwen2AudioJinja string
	//go:embed jinja/qwen2.5-omni.jinja
	qwen25OmniJinja string
)

// Jinja returns the format's chat template in the Jinja form transformers
// uses, for the chat_template.json of exported model directories.
func (f ChatFormat) Jinja() string {
	if f == ChatQwen25Omni {
		return qwen25OmniJinja
	}
	return qwen2AudioJinja
}

// ParseChatFormat checks a chat format name.
func ParseChatFormat(s string) (ChatFormat, error) {
	switch ChatFormat(s) {
	case ChatQwen2Audio, ChatQwen25Omni:
		return ChatFormat(s), nil
	}
	return "", fmt.Errorf("unknown chat format %q: use %q or %q", s, ChatQwen2Audio, ChatQwen25Omni)
}

// Render renders a conversation as the template does: a default system
// turn when the first message is not a system message, then
// "<|im_start|>ROLE\nCONTENT<|im_end|>\n" per message, audio items
// rendered as the format's placeholder, and "<|im_start|>assistant\n"
// when addGenerationPrompt is set.
func (f ChatFormat) Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if _, err := ParseChatFormat(string(f)); err != nil {
		return "", err
	}
	var b strings.Builder
	audio := 0
	for i, m := range msgs {
		if m.Role == "" {
			return "", fmt.Errorf("message %d has no role", i)
		}
		if i == 0 && m.Role != "system" {
			b.WriteString(ImStart + "system\n" + DefaultSystem + ImEnd + "\n")
		}
		b.WriteString(ImStart + m.Role + "\n")
		for _, p := range m.Parts {
			if !p.Audio {
				b.WriteString(p.Text)
				continue
			}
			audio++
			switch f {
			case ChatQwen2Audio:
				fmt.Fprintf(&b, "Audio %d: %s%s%s\n", audio, AudioBOS, AudioToken, AudioEOS)
			case ChatQwen25Omni:
				b.WriteString(AudioBOS + AudioToken + AudioEOS)
			}
		}
		b.WriteString(ImEnd + "\n")
	}
	if addGenerationPrompt {
		b.WriteString(ImStart + "assistant\n")
	}
	return b.String(), nil
}

// Encoder turns text into token ids, splitting special tokens out first.
// *Tokenizer implements it.
type Encoder interface {
	Encode(text string) []int
}

// EncodeChat renders and tokenizes a conversation and expands the k-th
// <|AUDIO|> placeholder into audioTokens[k] copies of audioID, as the
// Qwen processors do before tokenizing. It fails when the number of audio
// items and of counts differ, or a count is not positive.
func EncodeChat(enc Encoder, f ChatFormat, msgs []Message, addGenerationPrompt bool, audioID int, audioTokens []int) ([]int, error) {
	text, err := f.Render(msgs, addGenerationPrompt)
	if err != nil {
		return nil, err
	}
	ids := enc.Encode(text)
	return ExpandAudio(ids, audioID, audioTokens)
}

// ExpandAudio replaces the k-th audioID in ids by audioTokens[k] copies.
func ExpandAudio(ids []int, audioID int, audioTokens []int) ([]int, error) {
	n, total := 0, 0
	for _, id := range ids {
		if id == audioID {
			n++
		}
	}
	if n != len(audioTokens) {
		return nil, fmt.Errorf("prompt has %d audio placeholders but %d audio clips", n, len(audioTokens))
	}
	for k, c := range audioTokens {
		if c <= 0 {
			return nil, fmt.Errorf("audio clip %d yields %d audio tokens: the clip is too short (under 3 mel frames)", k+1, c)
		}
		total += c
	}
	out := make([]int, 0, len(ids)-n+total)
	k := 0
	for _, id := range ids {
		if id != audioID {
			out = append(out, id)
			continue
		}
		for j := 0; j < audioTokens[k]; j++ {
			out = append(out, audioID)
		}
		k++
	}
	return out, nil
}
