// Reference tokenizer timings for `make bench`, side by side with earl:
// @lenml/tokenizers (transformers.js's tokenizers, pure JavaScript; exact
// version in package.json) encodes the same file with the same
// tokenizer.json that `tools tokenize --bench` timed, and the two rows are
// printed with their ratio. The ids are compared through a SHA-256 of
// their JSON, so the table also says whether both produced the same ids.
//
//   node tools/bench/tokenize_ref.js TEXT_FILE TOKENIZER_DIR EARL_JSON
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TokenizerLoader } from '@lenml/tokenizers';

const [textFile, tokDir, earlJSON] = process.argv.slice(2);
if (!earlJSON) {
  console.error('usage: node tokenize_ref.js TEXT_FILE TOKENIZER_DIR EARL_JSON');
  process.exit(2);
}
const earl = JSON.parse(readFileSync(earlJSON, 'utf8'));
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8')),
  tokenizerConfig: JSON.parse(readFileSync(path.join(tokDir, 'tokenizer_config.json'), 'utf8')),
});
const text = readFileSync(textFile, 'utf8');
const bytes = Buffer.byteLength(text, 'utf8');
const encode = () => tok.encode(text, { add_special_tokens: false });

let t0 = process.hrtime.bigint();
const ids = encode();
const cold = Number(process.hrtime.bigint() - t0) / 1e9;
let warm = Infinity;
for (let i = 0; i < 3; i++) {
  t0 = process.hrtime.bigint();
  encode();
  warm = Math.min(warm, Number(process.hrtime.bigint() - t0) / 1e9);
}
const sha = createHash('sha256').update(JSON.stringify(ids)).digest('hex');
const pkg = JSON.parse(readFileSync(new URL('./node_modules/@lenml/tokenizers/package.json', import.meta.url), 'utf8'));

const mb = (s) => bytes / 1e6 / s;
const rows = [
  [earl.implementation, earl.cold_mb_s, earl.warm_mb_s],
  [`@lenml/tokenizers ${pkg.version} (node ${process.version})`, mb(cold), mb(warm)],
];
console.log(`tokenize ${textFile}: ${bytes} bytes, ${ids.length} tokens, one thread; MB/s = 10^6 bytes/s;` +
  ' cold = first pass, warm = best of 3 with the word cache filled');
console.log(`${'implementation'.padEnd(44)} ${'MB/s cold'.padStart(10)} ${'MB/s warm'.padStart(10)} ${'warm/earl'.padStart(10)}`);
for (const [name, c, w] of rows) {
  console.log(`${name.padEnd(44)} ${c.toFixed(2).padStart(10)} ${w.toFixed(2).padStart(10)} ${(w / earl.warm_mb_s).toFixed(3).padStart(9)}x`);
}
console.log(`earl / reference, warm: ${(earl.warm_mb_s / mb(warm)).toFixed(2)}x; cold: ${(earl.cold_mb_s / mb(cold)).toFixed(2)}x`);
if (earl.bytes !== bytes) console.log(`WARNING: earl read ${earl.bytes} bytes, the reference ${bytes}`);
console.log(sha === earl.ids_sha256 ? `ids identical (${ids.length} tokens, sha256 ${sha.slice(0, 16)}...)` :
  `IDS DIFFER: earl ${earl.tokens} tokens sha256 ${earl.ids_sha256.slice(0, 16)}..., reference ${ids.length} tokens ${sha.slice(0, 16)}...`);
if (sha !== earl.ids_sha256) process.exitCode = 1;
