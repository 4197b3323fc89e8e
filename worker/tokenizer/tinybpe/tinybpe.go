// Package tinybpe builds a small byte-level BPE tokenizer for randomly
// initialised tiny models, in the tokenizer.json layout of Qwen's (NFC, the
// Qwen split regex, byte-level mapping, BPE without byte fallback), so earl
// and transformers load it through the same code path as a real
// checkpoint's.
package tinybpe

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// byteSymbols is GPT-2's bytes_to_unicode: printable Latin-1 bytes map to
// themselves, the others to U+0100 upwards; vocabulary ids 0..255 follow
// this order, as in Qwen's vocabulary.
func byteSymbols() (order []byte, sym [256]string) {
	var printable []int
	for b := '!'; b <= '~'; b++ {
		printable = append(printable, int(b))
	}
	for b := 0xA1; b <= 0xAC; b++ {
		printable = append(printable, b)
	}
	for b := 0xAE; b <= 0xFF; b++ {
		printable = append(printable, b)
	}
	isPrint := map[int]bool{}
	for _, b := range printable {
		isPrint[b] = true
		sym[b] = string(rune(b))
		order = append(order, byte(b))
	}
	n := 0
	for b := 0; b < 256; b++ {
		if !isPrint[b] {
			sym[b] = string(rune(256 + n))
			order = append(order, byte(b))
			n++
		}
	}
	return order, sym
}

// tinyCorpus is what the merges are learned from: the prompt text earl's
// templates and synthetic tasks produce, so tiny models see short prompts.
const tinyCorpus = `You are a helpful assistant. Please choose the answer from the following options.
Output the final answer in <answer> </answer>. Output the thinking process in <think> </think> and final answer in <answer> </answer>.
How many beeps are in the audio clip? Two tones play one after the other. Which tone is higher in pitch? the first tone the second tone
Two sounds play in turn. Which sound lasts longer? the first sound the second sound The same tone plays twice. Is it louder the first time or the second time?
A tone glides in pitch. Is it rising or falling? rising falling 1 2 3 4 5 6 7 Audio 1: system user assistant entailed not-entailed
What is the sound in the audio? Based on the given audio, identify the source of the sound. the music the speech the dog the man the woman
I hear separate short beeps and count them one by one. The tone moves from low to high, so it is rising. The answer is`

// trainBPE learns n merges from text with the classic greedy algorithm:
// count adjacent symbol pairs within words (a word carries its leading
// space, as the Qwen regex splits), merge the most frequent (ties broken
// by the pair's text, so the result is deterministic), repeat.
func trainBPE(text string, n int) [][2]string {
	_, sym := byteSymbols()
	counts := map[string]int{}
	for _, w := range splitWords(text) {
		var b strings.Builder
		for _, c := range []byte(w) {
			b.WriteString(sym[c])
		}
		counts[b.String()]++
	}
	type word struct {
		parts []string
		n     int
	}
	var words []word
	for w, c := range counts {
		var parts []string
		for _, r := range w {
			parts = append(parts, string(r))
		}
		words = append(words, word{parts, c})
	}
	sort.Slice(words, func(i, j int) bool { return strings.Join(words[i].parts, "") < strings.Join(words[j].parts, "") })
	var merges [][2]string
	for len(merges) < n {
		pairs := map[[2]string]int{}
		for _, w := range words {
			for i := 0; i+1 < len(w.parts); i++ {
				pairs[[2]string{w.parts[i], w.parts[i+1]}] += w.n
			}
		}
		var best [2]string
		bestN := 0
		for p, c := range pairs {
			if c > bestN || (c == bestN && p[0]+" "+p[1] < best[0]+" "+best[1]) {
				best, bestN = p, c
			}
		}
		if bestN < 2 {
			break
		}
		merges = append(merges, best)
		for k := range words {
			w := &words[k]
			var out []string
			for i := 0; i < len(w.parts); i++ {
				if i+1 < len(w.parts) && w.parts[i] == best[0] && w.parts[i+1] == best[1] {
					out = append(out, best[0]+best[1])
					i++
				} else {
					out = append(out, w.parts[i])
				}
			}
			w.parts = out
		}
	}
	return merges
}

// splitWords approximates the Qwen pre-tokenizer for training: letter runs
// with an optional leading space, single digits, punctuation runs.
func splitWords(text string) []string {
	var out []string
	rs := []rune(text)
	for i := 0; i < len(rs); {
		j := i
		if rs[j] == ' ' && j+1 < len(rs) {
			j++
		}
		switch {
		case unicode.IsLetter(rs[j]):
			for j < len(rs) && unicode.IsLetter(rs[j]) {
				j++
			}
		case unicode.IsDigit(rs[j]):
			j++
		case unicode.IsSpace(rs[j]):
			for j < len(rs) && unicode.IsSpace(rs[j]) {
				j++
			}
		default:
			for j < len(rs) && !unicode.IsLetter(rs[j]) && !unicode.IsDigit(rs[j]) && !unicode.IsSpace(rs[j]) {
				j++
			}
		}
		out = append(out, string(rs[i:j]))
		i = j
	}
	return out
}

// qwenSplitRegex is the pre-tokenizer pattern of Qwen2 / Qwen2.5 / Qwen3.
const qwenSplitRegex = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// tinySpecials are the added tokens, in id order after the vocabulary.
var tinySpecials = []string{"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"}

// Files builds tokenizer.json and tokenizer_config.json for a
// byte-level BPE with n merges; it returns them with the special ids.
func Files(n int) (files map[string][]byte, special map[string]int, size int, err error) {
	order, sym := byteSymbols()
	vocab := map[string]int{}
	for i, b := range order {
		vocab[sym[b]] = i
	}
	merges := trainBPE(tinyCorpus, n)
	var mergeList [][]string
	for _, m := range merges {
		if _, dup := vocab[m[0]+m[1]]; !dup {
			vocab[m[0]+m[1]] = len(vocab)
		}
		mergeList = append(mergeList, []string{m[0], m[1]})
	}
	special = map[string]int{}
	var added []map[string]any
	decoder := map[string]any{}
	for _, s := range tinySpecials {
		id := len(vocab) + len(special)
		special[s] = id
		added = append(added, map[string]any{"id": id, "content": s, "single_word": false, "lstrip": false,
			"rstrip": false, "normalized": false, "special": true})
		decoder[strconv.Itoa(id)] = map[string]any{"content": s, "lstrip": false, "normalized": false,
			"rstrip": false, "single_word": false, "special": true}
	}
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	tok := map[string]any{
		"version": "1.0", "truncation": nil, "padding": nil, "added_tokens": added,
		"normalizer": map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwenSplitRegex}, "behavior": "Isolated", "invert": false},
			byteLevel,
		}},
		"post_processor": byteLevel,
		"decoder":        byteLevel,
		"model": map[string]any{"type": "BPE", "dropout": nil, "unk_token": nil, "continuing_subword_prefix": "",
			"end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
			"vocab": vocab, "merges": mergeList},
	}
	cfg := map[string]any{
		"tokenizer_class": "Qwen2Tokenizer", "added_tokens_decoder": decoder, "additional_special_tokens": tinySpecials[1:],
		"bos_token": nil, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": nil,
		"model_max_length": 32768, "errors": "replace", "split_special_tokens": false, "clean_up_tokenization_spaces": false,
	}
	files = map[string][]byte{}
	for name, v := range map[string]any{"tokenizer.json": tok, "tokenizer_config.json": cfg} {
		if files[name], err = json.MarshalIndent(v, "", "  "); err != nil {
			return nil, nil, 0, err
		}
	}
	return files, special, len(vocab) + len(special), nil
}
