package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"earl/worker/tokenizer"
)

func tokenizeCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokenize",
		Usage: "encode or decode JSONL with earl's Qwen2 tokenizer, for parity checks against Hugging Face",
		UsageText: "tools tokenize --tokenizer DIR [--decode] [--jsonl FILE] [--special NAME=ID ...]\n" +
			"   tools tokenize --tokenizer DIR --bench FILE [--repeat N] [--json OUT]",
		Description: "Reads one JSON object per line from --jsonl (default: standard input) and writes one per line:\n" +
			`{"text": "..."} -> {"ids": [...]}, or with --decode {"ids": [...]} -> {"text": "..."}.` + "\n" +
			"Blank lines are skipped. --tokenizer is a model directory (tokenizer.json, or vocab.json +\n" +
			"merges.txt + tokenizer_config.json) or a tokenizer.json file. --special <|AUDIO|>=151646 adds or\n" +
			"re-points a special token (the Qwen2-Audio tokens on top of the Qwen3 file, say).\n" +
			"--bench times encoding FILE as one text on one core (GOMAXPROCS=1): the first (cold-cache) pass and the\n" +
			"best of --repeat warm passes, in MB/s (10^6 bytes).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tokenizer", Required: true, Usage: "model directory or tokenizer.json"},
			&cli.BoolFlag{Name: "decode", Usage: `read {"ids": [...]} and write {"text": ...}`},
			&cli.StringFlag{Name: "jsonl", Usage: "input file (default: standard input)"},
			&cli.StringSliceFlag{Name: "special", Usage: "NAME=ID: add or re-point a special token (repeatable)"},
			&cli.BoolFlag{Name: "split-special", Usage: "encode special tokens written in the text as plain text (Hugging Face's split_special_tokens=True)"},
			&cli.BoolFlag{Name: "skip-special", Usage: "with --decode: leave special tokens out (skip_special_tokens=True)"},
			&cli.StringFlag{Name: "bench", Usage: "time encoding this text file instead of reading JSONL"},
			&cli.IntFlag{Name: "repeat", Value: 3, Usage: "with --bench: warm passes; the best is reported"},
			&cli.StringFlag{Name: "json", Usage: "with --bench: also write the figures here (read by tools/bench/tokenize_ref.js)"},
		},
		Action: runTokenize,
	}
}

func runTokenize(c *cli.Context) error {
	tok, err := loadTokenizer(c.String("tokenizer"))
	if err != nil {
		return err
	}
	for _, s := range c.StringSlice("special") {
		// Split at the last '=': the token itself may contain one.
		i := strings.LastIndexByte(s, '=')
		if i <= 0 {
			return fmt.Errorf("--special %q: want NAME=ID, e.g. --special '<|AUDIO|>=151646'", s)
		}
		name := s[:i]
		id, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return fmt.Errorf("--special %q: want NAME=ID, e.g. --special '<|AUDIO|>=151646'", s)
		}
		if err := tok.AddSpecial(name, id); err != nil {
			return fmt.Errorf("--special %q: %w", s, err)
		}
	}
	if f := c.String("bench"); f != "" {
		return benchTokenize(tok, f, c.Int("repeat"), c.String("json"))
	}
	in, name := io.Reader(os.Stdin), "standard input"
	if p := c.String("jsonl"); p != "" {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		in, name = f, p
	}
	out := bufio.NewWriter(os.Stdout)
	if err := tokenizeJSONL(tok, in, name, out, c.Bool("decode"), c.Bool("split-special"), c.Bool("skip-special")); err != nil {
		out.Flush()
		return err
	}
	return out.Flush()
}

// loadTokenizer accepts a model directory or a tokenizer.json file.
func loadTokenizer(path string) (*tokenizer.Tokenizer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--tokenizer: %w", err)
	}
	if st.IsDir() {
		return tokenizer.LoadDir(path)
	}
	return tokenizer.Load(path)
}

// tokenizeJSONL converts each line of in; errors name the input and line.
func tokenizeJSONL(tok *tokenizer.Tokenizer, in io.Reader, name string, w io.Writer, decode, splitSpecial, skipSpecial bool) error {
	r := bufio.NewReaderSize(in, 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep "<|im_end|>" readable
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			if perr := tokenizeLine(tok, line, enc, decode, splitSpecial, skipSpecial); perr != nil {
				return fmt.Errorf("%s line %d: %w", name, n, perr)
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s line %d: %w", name, n, err)
		}
	}
}

func tokenizeLine(tok *tokenizer.Tokenizer, line []byte, enc *json.Encoder, decode, splitSpecial, skipSpecial bool) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if !decode {
		raw, ok := obj["text"]
		var text string
		if !ok {
			return errors.New(`no "text" field (use --decode to turn {"ids": [...]} into text)`)
		}
		if err := json.Unmarshal(raw, &text); err != nil {
			return fmt.Errorf(`"text" is not a string: %s`, raw)
		}
		ids := tok.Encode(text)
		if splitSpecial {
			ids = tok.EncodeNoSpecial(text)
		}
		if ids == nil {
			ids = []int{}
		}
		return enc.Encode(struct {
			IDs []int `json:"ids"`
		}{ids})
	}
	raw, ok := obj["ids"]
	if !ok {
		return errors.New(`no "ids" field (without --decode the input is {"text": ...})`)
	}
	var ids []int
	if err := json.Unmarshal(raw, &ids); err != nil {
		return fmt.Errorf(`"ids" is not a list of integers: %s`, raw)
	}
	for i, id := range ids {
		if _, ok := tok.IDToToken(id); !ok {
			return fmt.Errorf("ids[%d] = %d is not a token of this tokenizer (ids run 0..%d; add missing special tokens with --special)", i, id, tok.VocabSize()-1)
		}
	}
	text := tok.Decode(ids)
	if skipSpecial {
		text = tok.DecodeSkipSpecial(ids)
	}
	return enc.Encode(struct {
		Text string `json:"text"`
	}{text})
}

// benchTokenize times Encode of one file on one goroutine and prints (and
// optionally writes as JSON) the throughput and a hash of the ids, which
// tools/bench/tokenize_ref.js compares with the JavaScript reference's.
func benchTokenize(tok *tokenizer.Tokenizer, path string, repeat int, jsonOut string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	repeat = max(repeat, 1)
	// One core, like the single-threaded reference: without this the
	// garbage collector would work on the other cores for free.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	t0 := time.Now()
	ids := tok.Encode(text)
	cold := time.Since(t0)
	warm := time.Duration(1<<63 - 1)
	for i := 0; i < repeat; i++ {
		t0 := time.Now()
		tok.Encode(text)
		warm = min(warm, time.Since(t0))
	}
	idsJSON, _ := json.Marshal(ids)
	sum := sha256.Sum256(idsJSON)
	mbps := func(d time.Duration) float64 { return float64(len(data)) / 1e6 / d.Seconds() }
	res := map[string]any{
		"implementation": "earl (Go " + runtime.Version() + ")",
		"file":           path,
		"bytes":          len(data),
		"tokens":         len(ids),
		"cold_s":         cold.Seconds(),
		"warm_s":         warm.Seconds(),
		"cold_mb_s":      mbps(cold),
		"warm_mb_s":      mbps(warm),
		"ids_sha256":     hex.EncodeToString(sum[:]),
		"threads":        1,
	}
	fmt.Printf("earl tokenize %s: %d bytes -> %d tokens, cold %.2f MB/s, warm %.2f MB/s (best of %d), one core\n",
		path, len(data), len(ids), mbps(cold), mbps(warm), repeat)
	if jsonOut == "" {
		return nil
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(jsonOut, append(b, '\n'), 0o644)
}
