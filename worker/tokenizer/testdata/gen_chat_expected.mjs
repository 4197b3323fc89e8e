// Reference ids for whole rendered conversations (chat_test.go): the
// Qwen2-Audio and Qwen2.5-Omni chat templates (../jinja/*.jinja, as the
// processors ship them) rendered by @huggingface/jinja 0.5.11 (the Jinja
// engine of transformers.js) with the options transformers uses, each
// <|AUDIO|> then
// expanded to the clip's token count as the processors do, and the text
// tokenised by the same independent tokenizer, with the audio tokens at
// ids 151646..151648 on top of the Qwen3 file.
//
//   npm ci && node gen_chat_expected.mjs      (writes chat_expected.jsonl)
import { readFileSync, writeFileSync } from 'node:fs';
import { Template } from '@huggingface/jinja';
import { TokenizerLoader } from '@lenml/tokenizers';

const here = (p) => new URL(p, import.meta.url);
const shared = '../../../../shared/testdata/qwen3-tokenizer/';
const j = JSON.parse(readFileSync(here(shared + 'tokenizer.json'), 'utf8'));
const c = JSON.parse(readFileSync(here(shared + 'tokenizer_config.json'), 'utf8'));
const audio = { 151646: '<|AUDIO|>', 151647: '<|audio_bos|>', 151648: '<|audio_eos|>' };
for (const a of j.added_tokens) if (audio[a.id]) a.content = audio[a.id];
for (const [id, a] of Object.entries(c.added_tokens_decoder)) if (audio[id]) a.content = audio[id];
const tok = TokenizerLoader.fromPreTrained({ tokenizerJSON: j, tokenizerConfig: c });

const templates = {
  'qwen2-audio': readFileSync(here('../jinja/qwen2-audio.jinja'), 'utf8'),
  'qwen2.5-omni': readFileSync(here('../jinja/qwen2.5-omni.jinja'), 'utf8'),
};
const q = "How many beeps are in the audio clip? Please choose the answer from the following options: ['2', '3', \"it's 4\"]. " +
  'Output the thinking process in <think> </think> and final answer in <answer> </answer>.';
const conversations = [
  { audio_tokens: [250], messages: [
    { role: 'user', content: [{ type: 'audio', audio_url: 'a.wav' }, { type: 'text', text: q }] },
  ] },
  { audio_tokens: [750, 12], messages: [
    { role: 'system', content: 'You are an audio expert. Think step by step.' },
    { role: 'user', content: [{ type: 'text', text: 'Compare the first clip ' }, { type: 'audio', audio_url: 'a.wav' },
      { type: 'text', text: ' with the second:\n' }, { type: 'audio', audio_url: 'b.wav' }, { type: 'text', text: 'Which is louder?' }] },
    { role: 'assistant', content: '<think>The second clip peaks higher.</think>\n<answer>the second</answer>' },
    { role: 'user', content: 'Are you sure?  Explain in 日本語 too ✓' },
  ] },
  { audio_tokens: [1], messages: [
    { role: 'user', content: [{ type: 'audio', audio_url: 'a.wav' }, { type: 'text', text: "Premise: 'entailed' or 'not-entailed'?\r\nAnswer:" }] },
  ] },
];
const out = [];
for (const [format, template] of Object.entries(templates)) {
  for (const conv of conversations) {
    for (const gen of [true, false]) {
      let text = new Template(template).render({ messages: conv.messages, add_generation_prompt: gen });
      let k = 0;
      text = text.replace(/<\|AUDIO\|>/g, () => '<|AUDIO|>'.repeat(conv.audio_tokens[k++]));
      if (k !== conv.audio_tokens.length) throw new Error(`${format}: ${k} audio placeholders, ${conv.audio_tokens.length} clips`);
      out.push(JSON.stringify({ format, add_generation_prompt: gen, messages: conv.messages, audio_tokens: conv.audio_tokens,
        ids: Array.from(tok.encode(text, { add_special_tokens: false })) }));
    }
  }
}
writeFileSync(here('chat_expected.jsonl'), out.join('\n') + '\n');
console.log(`wrote ${out.length} conversations to chat_expected.jsonl`);
