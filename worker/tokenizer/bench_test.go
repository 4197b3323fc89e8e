package tokenizer

import (
	"os"
	"testing"
)

// BenchmarkEncodeMixed encodes testdata/bench_mixed.txt (643 KB: English
// prose, Go code, some Chinese and JSON; see internal/gen/benchtext) as one
// text on one goroutine, the word cache warm after the first pass. The
// same file is what `make bench` gives `tools tokenize --bench` and the
// JavaScript reference.
func BenchmarkEncodeMixed(b *testing.B) {
	tok := qwen3(b)
	data, err := os.ReadFile("testdata/bench_mixed.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkEncodeMixedCold is BenchmarkEncodeMixed with the word cache
// emptied before every pass: every distinct pre-token goes through BPE.
func BenchmarkEncodeMixedCold(b *testing.B) {
	tok := qwen3(b)
	data, err := os.ReadFile("testdata/bench_mixed.txt")
	if err != nil {
		b.Fatal(err)
	}
	text := string(data)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		b.StopTimer()
		tok.cache.mu.Lock()
		tok.cache.m = nil
		tok.cache.mu.Unlock()
		b.StartTimer()
		tok.Encode(text)
	}
}

// BenchmarkDecodeMixed decodes the ids of the same text.
func BenchmarkDecodeMixed(b *testing.B) {
	tok := qwen3(b)
	data, err := os.ReadFile("testdata/bench_mixed.txt")
	if err != nil {
		b.Fatal(err)
	}
	ids := tok.Encode(string(data))
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		tok.Decode(ids)
	}
}
