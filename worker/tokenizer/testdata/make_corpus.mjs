// Writes corpus.jsonl: texts chosen to break naive Qwen2 tokenizers. Each
// line is {"text": ...}; gen_expected.mjs then tokenises every line with
// the independent JavaScript implementation (@lenml/tokenizers) and the Go
// tests compare. Deterministic: run `node make_corpus.mjs` here.
//
// Kept out on purpose (see gen_expected.mjs, which checks it): characters
// whose regex class differs between the JavaScript engine (node's ICU,
// Unicode 17, and JS's own \s) and Hugging Face's Oniguruma (Unicode 16,
// \s = White_Space) — U+0085 NEL, U+FEFF, letters new in Unicode 17 — and
// "'ſ" (long s after an apostrophe, a contraction only for Oniguruma's
// case folding). Those cases are in the Go tests with reasoned
// expectations instead.
import { writeFileSync } from 'node:fs';

const out = [];
const add = (...texts) => { for (const t of texts) out.push(t); };

// A small deterministic PRNG (mulberry32) for the generated lines.
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20261122);
const pick = (xs) => xs[Math.floor(rand() * xs.length)];

// --- ids known from the model cards / transformers
add('You are a helpful assistant.', 'Audio 1: ', '', ' ', 'a');

// --- contractions, every case of every suffix, in every position
const suffixes = ['s', 't', 're', 've', 'm', 'll', 'd'];
const cases = (s) => {
  // all upper/lower combinations of s
  let res = [''];
  for (const ch of s) res = res.flatMap((p) => [p + ch.toLowerCase(), p + ch.toUpperCase()]);
  return res;
};
for (const s of suffixes) {
  for (const c of cases(s)) {
    add(`word'${c}`, `'${c}`, `'${c}up and more`, `x '${c} y`, `''${c}`, `'${c}'${c}`);
  }
}
add("I'M here, we'Ll see, you'RE right, they'VE gone, he'D know, it'S fine, don't, can't, won't",
  "I'm", "I'M", "we'll", "we'Ll", "WE'LL", "don't", "DON'T", "Don'T", "y'all", "rock'n'roll", "'twas the night",
  "O'Reilly's", "the cat's toy", "the cats' toys", "'s at the start", "'", "''", "'''", "' s", "'1", "'9s",
  "it’s a typographic apostrophe ’s and ’ll", "‘single’ and “double” quotes", "l'homme d'affaires",
  "isn't'nt", "'sss", "'ll've'd", "'re're", "x'", "x' ", "x'\n", "'\u00e9t\u00e9'", "Ma'am", "o'clock", "'S'T'M'D");

// --- numbers: Qwen splits \p{N} one character at a time
add('12345', '0', '007', '3.14159265358979', '1,000,000', '1 000 000', '1\u00a0000\u00a0000', '1\u2009000\u202f000',
  '2024-01-15T12:34:56Z', 'v1.2.3-rc.4+build.5', '0x1F 0b1010 0o777', '-42', '+1e-10', '$1,299.99', '100%', '99.9th percentile',
  '١٢٣٤٥ Arabic-Indic', '۱۲۳ Persian', '१२३४ Devanagari', '১২৩ Bengali', '๑๒๓ Thai', '１２３ fullwidth', '½ ¼ ¾ ² ³ ¹',
  'Ⅻ Ⅳ ⅸ roman', '①②③ ⑩ ⑳', '𝟏𝟐𝟑 math digits', '1st 2nd 3rd 4th', 'abc123def', '123abc', 'a1b2c3', 'x²+y²=z²', 'H₂O and CO₂',
  'IPv4 192.168.0.1 and IPv6 2001:db8::ff00:42:8329', 'phone +1 (555) 010-9999', '3/4 cup, 1.5 tsp', '10:30 AM',
  '1'.repeat(200), '9876543210'.repeat(30), '1.2.3.4.5.6.7.8.9.0', '٣.١٤', '五千三百二十一 and 5321');

// --- whitespace of every kind
add('a b', 'a  b', 'a   b', 'a    b', 'a\tb', 'a\t\tb', 'a \tb', 'a\t b', 'a\u00a0b', 'a\u00a0\u00a0b', 'a \u00a0b', 'a\u00a0 b',
  'a\u3000b', 'a\u3000\u3000b', 'a\u2028b', 'a\u2029b', 'a\u2003b', 'a\u2009b', 'a\u200ab', 'a\u205fb', 'a\u1680b',
  'a\u200bb zero-width space is not whitespace', 'a\u200db', 'a\u000bb', 'a\u000cb', 'a\u000b\u000cb',
  '  leading', '   leading three', '\tleading tab', '\u00a0leading nbsp', 'trailing ', 'trailing  ', 'trailing   ',
  'trailing\t', 'trailing\u00a0', 'trailing\u3000', ' ', '  ', '   ', '\t', '\t\t', '\u00a0', '\u3000', '\u2028',
  '\n', '\n\n', '\n\n\n', '\r', '\r\r', '\r\n', '\r\n\r\n', '\n\r', ' \n', '\n ', ' \n ', '\t\n\t',
  'a\nb', 'a\n\nb', 'a\n\n\nb', 'a\r\nb', 'a\r\n\r\nb', 'a\rb', 'a\r\rb', 'a\n\rb', 'a \n b', 'a\n \nb', 'a \t\n\t b',
  'a  \n  b', 'a \n\n  b', 'end\n', 'end\n\n', 'end\r\n', 'end \n', 'end\n ', '  \n  \n  x', '1 2  3   4    5',
  'x \u00a0\n', '\t \u00a0 \u3000 x', 'a \u2028 b', 'a\u2028\nb', 'a\n\u2028b', '!\n', '!!\n\n', '?\r\n', ' ...\n',
  ' !', '  !', '   !', '\t!', '\u00a0!', 'a !b', 'a  !b', 'a ! b', 'a\n!b', 'a\n !b', ' 1', '  1', 'a 1', 'a  1', '\n1',
  ' '.repeat(300), '\n'.repeat(300), ' \n'.repeat(50), '\t'.repeat(64) + 'x', 'x' + ' '.repeat(100) + 'y',
  'word \r\n  word', 'col1\tcol2\tcol3\n1\t2\t3\n', 'line one\nline two\r\nline three\rline four');

// --- scripts
add('你好，世界！今天天气很好。', '我们在研究音频语言模型的推理能力',
  '中华人民共和国成立于一九四九年十月一日，首都是北京。这是一个很长的句子没有任何标点符号用来测试长词的字节对编码合并',
  '繁體中文與簡體中文的區別在於字形', '「引号」和『书名号』《红楼梦》', '中文English混合text测试',
  'こんにちは、世界。今日はいい天気ですね。', 'カタカナとひらがなと漢字が混ざった文章です', '東京都渋谷区１－２－３',
  'ｶﾀｶﾅ半角カナ', 'ポケットモンスター・ソード', '안녕하세요, 세계! 오늘 날씨가 좋네요.', '한국어 문장은 띄어쓰기를 합니다',
  'ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ', 'สวัสดีครับ ยินดีต้อนรับ', 'مرحبا بالعالم! كيف حالك؟', 'اَلْعَرَبِيَّةُ مع التشكيل',
  'שלום עולם! מה שלומך?', 'שָׁלוֹם עִם נִקּוּד', 'नमस्ते दुनिया! आप कैसे हैं?', 'क्षत्रिय और ज्ञान', 'হ্যালো বিশ্ব',
  'வணக்கம் உலகம்', 'Привет, мир! Как дела?', 'Ελληνικά: Γειά σου Κόσμε, ὁ λόγος', 'Tiếng Việt có nhiều dấu: Trường Đại học',
  'ქართული ენა', 'Հայերեն լեզու', 'ኢትዮጵያ አማርኛ', 'བོད་ཡིག', 'ខ្មែរ', 'ລາວ', 'မြန်မာ', 'ᠮᠣᠩᠭᠣᠯ', 'ᐃᓄᒃᑎᑐᑦ',
  'Türkçe: ığüşöç İĞÜŞÖÇ', 'Polski: zażółć gęślą jaźń', 'Deutsch: Straße, Maß, Größe', 'Français: où est l’élève ?',
  'Español: ¿Qué tal? ¡Muy bien!', 'Íslenska: þú ðú', 'ǅemal ǈubljana ǋegoš', 'ΣΊΣΥΦΟΣ σίσυφος',
  'Ꭰ Cherokee ꭰ', '𐐷 Deseret 𐐏', '𓀀𓀁𓀂 hieroglyphs', '𒀀𒀁 cuneiform', 'ꦗꦮ Javanese', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕿𝖊𝖝𝖙');

// --- NFC: texts the normaliser changes (all characters of Unicode <= 9.0,
// where Hugging Face's NFC tables, Go's and node's agree)
add('e\u0301', 'cafe\u0301 vs caf\u00e9', 'E\u0301COLE', 'A\u030a', 'A\u030angstr\u00f6m', '\u212b Angstrom sign', '\u2126 ohm sign',
  'a\u0308\u0301', 'n\u0303', 'ma\u00f1ana vs man\u0303ana', 'q\u0307\u0323', 'q\u0323\u0307', '\u1e0b\u0323', 'd\u0307\u0323',
  'A\u0327\u0301', 'o\u031b\u0300 Vietnamese stacked', 'Vie\u0323\u0302t Nam', '\u1100\u1161\u11a8', '\u1100\u1161', '\u1112\u1161\u11ab\u1100\u1173\u11af',
  '\u110b\u1161\u11ab\u1102\u1167\u11bc\u1112\u1161\u1109\u1166\u110b\u116d', '\uac00\u11a8', '\uf900 compatibility ideograph', '\u0344', '\u0958 and \u0915\u093c',
  '\ufb2a Hebrew shin', '\u05e9\u05c1', 'ﬁ ligature (NFC keeps it)', 'Å vs A\u030a vs \u212b', '\u0041\u030a\u0301', 'e\u0301\u0301\u0301',
  '\u0301 leading combining mark', ' \u0301', 'x\u0301y\u0302z\u0303', '\u03a9\u0301 \u1ff9', 'u\u0308\u0304 \u01d6',
  'i\u0307 dotted', '\u0627\u0653 Arabic madda', '\u0915\u094d\u0937 conjunct', '\u0e40\u0e01\u0e34\u0e14', 'Z\u0335\u0321a\u0334l\u0337g\u0336o\u0338 text',
  '\u0061\u0300\u0315\u0301', '\u00c5\u0328', '<\u0338 and >\u0338 and =\u0338');

// --- emoji
add('👍', '👍🏽', '👍🏿👍🏻', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '🇯🇵🇺🇸🇩🇪', '🇺🇳', '❤️', '❤', '1️⃣ 2️⃣ #️⃣ *️⃣', '🧑🏿‍💻 coder',
  '😀😃😄😁', 'I ❤️ Go!', '🫠🫡🫥', '🐱‍👤', '👩‍❤️‍💋‍👨', '🏴󠁧󠁢󠁳󠁣󠁴󠁿 Scotland', 'emoji at end 🎉', '🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉🎉',
  '☺︎ text style ☺️ emoji style', '✔️✅❌', '🔊 audio 🎵🎶 music 🎤');

// --- code
add(`package main

import "fmt"

func main() {
	for i := 0; i < 10; i++ {
		fmt.Printf("%d\\n", i)
	}
}
`, `def fib(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    a, b = 0, 1
    for _ in range(n - 1):
        a, b = b, a + b
    return b


class Foo(object):
    def __init__(self):
        self.x = {'a': [1, 2, 3], "b": None}
`, '{"text": "hello", "ids": [1, 2, 3], "nested": {"k": "v\\"q\\"", "n": null, "t": true, "f": -1.5e+10}}',
  '[\n  {\n    "id": 1,\n    "name": "x"\n  }\n]', '#include <stdio.h>\nint main(void) { /* comment */ return 0; }\n',
  '$ ls -la | grep "\\.go$" && echo done || exit 1', '<html><body><p class="x">Hi &amp; bye</p></body></html>',
  "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%o%';", '^(?:[a-z0-9!#$%&\'*+/=?^_`{|}~-]+)$',
  '```go\nfmt.Println("hi")\n```', 'key:\n  - a: 1\n    b: [x, y]\n  - c: "z"\n', '--- a/f.go\n+++ b/f.go\n@@ -1,3 +1,3 @@\n-old\n+new\n',
  'C:\\Users\\Public\\Documents\\file.txt', 'if (x != y && z <= 0) { return a->b[i]++; }', 'x+=1;y-=2;z*=3;w/=4;v%=5;u**=6',
  '\tindented with tab\n\t\tdouble\n', 'line1\r\n    line2\r\n', 'const f = async () => { await g?.(); };', 'std::vector<int> v{1,2,3};',
  'fn main() -> Result<(), Box<dyn Error>> { Ok(()) }', '    \n    \n', '        return self._cache[key]', '__init__ __name__ ___',
  '/* ** */ // /// #!/usr/bin/env python3', 'a==b!=c<=d>=e=>f->g::h..i...j', '(((())))[[[]]]{{{}}}', '~!@#$%^&*()_+`-=[]\\;\',./{}|:"<>?');

// --- URLs, e-mail, paths
add('https://example.com/path/to/page?query=1&x=%20y#frag', 'http://localhost:8080/', 'user.name+tag@example.co.uk',
  'ftp://ftp.example.org/pub/file.tar.gz', 'See https://en.wikipedia.org/wiki/Byte_pair_encoding.', 'www.example.com/a_b-c~d',
  '/usr/local/go/bin/go', '../../shared/testdata/qwen3-tokenizer/tokenizer.json', 'mailto:someone@example.com?subject=Hi%20there');

// --- maths
add('∀x∈ℝ: x²≥0', '∑_{i=1}^{n} i = n(n+1)/2', '√2 ≈ 1.41421356', '≠ ≤ ≥ ∞ ∫ ∂ ∇ ∈ ∉ ⊂ ⊆ ∪ ∩', 'α+β=γ, Δx→0',
  '\\frac{a}{b} + \\sqrt{x^2 + y^2}', 'ℵ₀ < 2^ℵ₀', 'x₁ + x₂ + … + xₙ', 'f(x) = e^{-x²/2} / √(2π)', '∮ E·dA = Q/ε₀',
  '½ + ⅓ = ⅚', '2 × 3 ÷ 4 − 5 ± 6', '∅ ≡ ⊥ ⊤ ¬ ∧ ∨ ⇒ ⇔', '𝑓(𝑥) = 𝑎𝑥² + 𝑏𝑥 + 𝑐');

// --- added tokens, literal and in the middle of words
add('<|im_start|>user\nhi<|im_end|>', '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n',
  'foo<|endoftext|>bar', '<|endoftext|>', '<|endoftext|><|endoftext|>', 'x<|im_start|><|im_end|>y', '<think>\nLet me think.\n</think>\n\nThe answer is 4.',
  '<think></think>', 'a<think>b</think>c', '<|im_end|', '<|im_end|>>', '<<|im_end|>', '<|im_end|><', '|im_end|>', '<|im_end >', '<|IM_END|>',
  '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>', '<tool_response>ok</tool_response>', '<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>',
  '<|vision_start|><|image_pad|><|vision_end|>', '<|object_ref_start|>the cat<|object_ref_end|><|box_start|>(1,2)<|box_end|>',
  '  <|im_end|>  ', '\n<|im_start|>', '<|im_end|>\n\n', ' <|im_end|> ', 'e<|im_end|>\u0301', '<|im_end|>\u0301', '<|AUDIO|> not in Qwen3',
  '<|audio_bos|><|AUDIO|><|audio_eos|>', 'Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat is the sound?', '<|im_start|><|im_start|>');

// --- BPE merge order traps
add('aaaa', 'aaaaa', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'ababab', 'abababababababababababababababababababab',
  '......', '====', '----------', '**********', '________', '!!!???', '.,;:', '—–-', '""""', "''''''", '\\\\\\\\', '////', '####', '~~~~',
  'the the the the', 'The THE tHe', 'HELLO WORLD', 'hElLo WoRlD', 'Hello', ' Hello', '  Hello', 'hello.', 'hello,world', 'hello_world', 'helloWorld');

// --- long words
add('supercalifragilisticexpialidocious', 'Pneumonoultramicroscopicsilicovolcanoconiosis',
  'Rindfleischetikettierungsüberwachungsaufgabenübertragungsgesetz', 'a'.repeat(500), 'abc'.repeat(200),
  'x'.repeat(1000), '!'.repeat(300), 'ab!'.repeat(100), '😀'.repeat(100), '中'.repeat(300), 'ñ'.repeat(200),
  'e\u0301'.repeat(50), 'аб'.repeat(150), 'ก'.repeat(200));
{
  const letters = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZéüßøåçñ';
  let w = '';
  for (let i = 0; i < 2000; i++) w += pick([...letters]);
  add(w);
  const han = [...'的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买皇养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗姐介坏讨丽良序升监临亮露永呼味野架域沙掉括舰鱼杂误湾吉减编楚肯测败屋跑梦散温困剑渐封救贵枪缺楼县尚毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨炮旧端探湖录叶春乡附吸予礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督毒油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博勒烟授诺伦岸奥唐卖俄炸载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫爷篇肉嘴馆遍凡础洞卷坦牛宁纸诸训私庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店鬼软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩盟末乃悲拍丁赵硬麦蒋操耶阻订彩抽赞魔纷沿喊违妹浪汇币丰蓝殊献桌啦瓦莱援译夺汽烧距裁偏符勇触课敬哭懂墙袭召罚侠厅拜巧侧韩冒债曼融惯享戴童犹乘挂奖绍厚纵障讯涉彻刊丈爆乌役描洗玛患妙镜唱烦签仙彼弗症仿倾牌陷鸟轰咱菜闭奋庆撤泪茶疾缘播朗杜奶季丹狗尾仪偷奔珠虫驻孔宜艾桥淡翼恨繁寒伴叹旦愈潮粮缩罢聚径恰挑袋灰捕徐珍幕映裂泰隔启尖忠累炎暂估泛荒偿横拒瑞忆孤鼻闹羊呆厉衡胞零穷舍码赫婆魂灾洪腿胆津俗辩胸晓劲贫仁偶辑邦恢赖圈摸仰润堆碰艇稍迟辆废净凶署壁御奉旋冬矿抬蛋晨伏吹鸡倍糊秦盾杯租骑乏隆诊奴摄丧污渡旗甘耐凭扎抢绪粗肩梁幻菲皆碎宙叔岩荡综爬荷悉蒂返井壮薄悄扫敏碍殖详迪矛霍允幅撒剩凯颗骂赏液番箱贴漫酸郎腰舒眉忧浮辛恋餐吓挺励辞艘键伍峰尺昨黎辈贯侦滑券崇扰宪绕趋慈乔阅汗枝拖墨胁插箭腊粉泥氏彭拔骗凤慧媒佩愤扑龄驱惜豪掩兼跃尸肃帕驶堡届欣惠册储飘桑闲惨洁踪勃宾频仇磨递邪撞拟滚奏巡颜剂绩贡疯坡瞧截燃焦殿伪柳锁逼颇昏劝呈搜勤戒驾漂饮曹朵仔柔俩孟腐幼践籍牧凉牲佳娜浓芳稿竹腹跌逻垂遵脉貌柏狱猜怜惑陶兽帐饰贷昌叙躺钢沟寄扶铺邓寿惧询汤盗肥尝匆辉奈扣廷澳嘛董迁凝慰厌脏腾幽怨鞋丢埋泉涌辖躲晋紫艰魏吾慌祝邮吐狠鉴曰械咬邻赤挤弯椅陪割揭韦悟聪雾锋梯猫祥阔誉筹丛牵鸣沈阁穆屈旨袖猎臂蛇贺柱抛鼠瑟戈牢逊迈欺吨琴衰瓶恼燕仲诱狼池疼卢仗冠粒遥吕玄尘冯抚浅敦纠钻晶岂峡苍喷耗凌敲菌赔涂粹扁亏寂煤熊恭湿循暖糖赋抑秩帽哀宿踏烂袁侯抖夹昆肝擦猪炼恒慎搬纽纹玻渔磁铜齿跨押怖漠疲叛遣兹祭醉拳弥斜档稀捷肤疫肿豆削岗晃吞宏癌肚隶履涨耀扭坛拨沃绘伐堪仆郭牺歼墓雇廉契拼惩捉覆刷劫嫌瓜歇雕闷乳串娃缴唤赢莲霸桃妥瘦搭赴岳嘉舱俊址庞耕锐缝悔邀玲惟斥宅添挖呵讼氧浩羽斤酷掠妖祸侍乙妨贪挣汪尿莉悬唇翰仓轨枚盐览傅帅庙芬屏寺胖璃愚滴疏萧姿颤丑劣柯寸扔盯辱匹俱辨饿蜂哦腔郁溃谨糟葛苗肠忌溜鸿爵鹏鹰笼丘桂滋聊挡纲肌茨壳痕碗穴膀卓贤卧膜毅锦欠哩函茫昂薛皱夸豫胃舌剥傲拾窝睁携陵哼棉晴铃填饲渴吻扮逆脆喘罩卜炉柴愉绳胎蓄眠竭喂傻慕浑奸扇柜悦拦诞饱乾泡贼亭夕爹酬儒姻卵氛泄杆挨僧蜜吟猩遂狭肖甜霞驳裕顽於摘矮秒卿畜咽披辅勾盆疆赌塑畏吵囊嗯泊肺骤缠冈羞瞪吊贾漏斑涛悠鹿俘锡卑葬铭滩嫁催璇翅盒蛮矣潘歧赐鲍锅廊拆灌勉盲宰佐啥胀扯禧辽抹筒棋裤唉朴咐孕誓喉妄拘链驰栏逝窃艳臭纤玑棵趁匠盈翁愁瞬婴孝颈倘浙谅蔽畅赠妮莎尉冻跪闯葡後厨鸭颠遮谊圳吁仑辟瘤嫂陀框谭亨钦庸歉芝吼甫衫摊宴嘱衷娇陕矩浦讶耸裸碧摧薪淋耻胶屠鹅饥盼脖虹翠崩账萍逢赚撑翔倡绵猴枯巫昭怔渊凑溪蠢禅阐旺寓藤匪伞碑挪琼脂谎慨菩萄狮掘抄岭晕逮砍掏狄晰罕挽脾舟痴蔡剪脊弓懒叉拐喃僚捐姊骚拓歪粘柄坑陌窄湘兆崖骄刹鞭芒筋聘钩棍嚷腺弦焰耍俯厘愣厦恳饶钉寡憾摔叠惹喻谱愧煌徽溶坠煞巾滥洒堵瓷咒姨棒郡浴媚稣淮哎屁漆淫巢吩撰啸滞玫硕钓蝶膝姚茂躯吏猿寨恕渠戚辰舶颁惶狐讽笨袍嘲啡泼衔倦涵雀旬僵撕肢垄夷逸茅侨舆窑涅蒲谦杭噢弊勋刮郊凄捧浸砖鼎篮蒸饼亩肾陡爪兔殷贞荐哑炭坟眨搏咳拢舅昧擅爽咖搁禄雌哨巩绢螺裹昔轩谬谍龟媳姜瞎冤鸦蓬巷琳栽沾诈斋瞒彪厄咨纺罐桶壤糕颂膨谐垒咕隙辣绑宠嘿兑霉挫稽辐乞纱裙嘻哇绣杖塘衍轴攀膊譬斌祈踢肆坎轿棚泣屡躁邱凰溢椎砸趟帘帆栖窜丸斩堤塌贩厢掀喀乖谜捏阎滨虏匙芦苹卸沼钥株祷剖熙哗劈怯棠胳桩瑰娱娶沫嗓蹲焚淘嫩韵衬匈钧竖峻豹捞菊鄙魄兜哄颖镑屑蚁壶怡渗秃迦旱哟咸焉谴宛稻铸锻伽詹毙恍贬烛骇芯汁桓坊驴朽靖佣汝碌迄冀荆崔雁绅珊榜诵傍彦醇笛禽勿娟瞄幢寇睹贿踩霆呜拱妃蔑谕缚诡篷淹腕煮倩卒勘馨逗甸贱炒灿敞蜡囚栗辜垫妒魁谣寞蜀甩涯枕丐泳奎泌逾叮黛燥掷藉枢憎鲸弘倚侮藩拂鹤蚀浆芙垃烤晒霜剿蕴圾绸屿氢驼妆捆铅逛淑榴丙痒钞蹄犬躬昼藻蛛褐颊奠募耽蹈陋侣魅岚侄虐堕陛莹荫狡阀绞膏垮茎缅喇绒搅凳梭丫姬诏钮棺耿缔懈嫉灶匀嗣鸽澡凿纬沸畴刃遏烁嗅叭熬瞥骸奢拙栋毯桐砂莽泻坪梳杉晤稚蔬蝇捣顷麽尴镖诧尬硫嚼羡沦沪旷彬芽狸冥碳咧惕暑咯萝汹腥窥俺潭崎麟捡拯厥澄萎哉涡滔暇溯鳞酿茵愕瞅暮衙诫斧兮焕棕佑嘶妓喧蓉删樱伺嗡娥梢坝蚕敷澜杏绥冶庇挠搂倏聂婉噪稼鳍菱盏匿吱寝揽髓秉哺矢啪帜邵嗽挟缸揉腻驯缆晌瘫贮觅朦僻隋蔓咋嵌虔畔琐碟涩胧嘟蹦冢浏裔襟叨诀旭虾簿啤擒枣嘎苑牟呕骆凸熄兀喔裳凹赎屯膛浇灼裘砰棘橡碱聋姥瑜毋娅沮萌俏黯撇粟粪尹苟癫蚂禹廖俭帖煎缕窦簇棱叩呐瑶墅莺烫蛙歹伶葱哮眩坤廓讳啼乍瓣矫跋枉梗厕琢讥釉窟敛轼庐胚呻绰扼懿炯竿慷虞锤栓桨蚊磅孽惭戳禀鄂馈垣溅咚钙礁彰豁眯磷雯墟迂瞻颅琉悼蝴拣渺眷悯汰慑婶斐嘘镶炕宦趴绷窘襄珀嚣拚酌浊毓撼嗜扛峭磕翘槽淌栅颓熏瑛颐忖'];
  for (let k = 0; k < 6; k++) {
    let s = '';
    for (let i = 0; i < 40 + k * 20; i++) s += pick(han) + (rand() < 0.1 ? pick(['，', '。', '、', '！', '？', '：', '；']) : '');
    add(s);
  }
  // A generated mix of words, numbers, punctuation and whitespace.
  const words = ['the', 'audio', 'model', 'reasons', 'over', 'sound', 'GRPO', 'reward', "don't", "it's", 'Qwen2', '3.5', '2024',
    '(a)', '"quoted"', 'end.', 'what?', 'yes!', 'co-op', 'e-mail', 'naïve', 'résumé', '中文', '日本語', '한국어', '🎵', '—', '…', '\n', '\t', '  '];
  for (let k = 0; k < 40; k++) {
    let s = '';
    const n = 3 + Math.floor(rand() * 25);
    for (let i = 0; i < n; i++) s += pick(words) + pick([' ', ' ', ' ', '', ', ', '. ', '\n', '  ', '\u00a0']);
    add(s);
  }
}

// --- controls and oddities
add('\u0000', 'a\u0000b', '\u0001\u0002\u0003', '\u007f', '\u001b[31mred\u001b[0m', '\u00ad soft hyphen', 'in\u00adter\u00adna\u00adtion\u00adal',
  '\ufffd replacement', '\ue000 private use \uf8ff', '\u{10fffd}', '\u{1f9ff}', '\u200e\u200f bidi marks', '\u202e reversed \u202c',
  '\u2060 word joiner', '\u00a0\u2007\u2008 figure and punctuation spaces', '\u3164 hangul filler', '\u115f\u1160', 'x\ufe0fy', 'a\u034fb',
  '\u0600\u0601 Arabic number signs', '\u{e0001}\u{e0041} tags', '\u180e Mongolian vowel separator', 'ﾠ halfwidth hangul filler');

// --- Unicode 15.1/16.0 letters and digits (letters for Hugging Face's
// Oniguruma and for node's ICU, but not for Go's unicode package; none has
// a decomposition, so every NFC version leaves them alone)
add('\u{10d4a}\u{10d4b}\u{10d4c} Garay', 'x\u{10d50}\u{10d51}y', ' \u{10d70}\u{10d71}\u{10d72}', 'Garay digits \u{10d40}\u{10d41}\u{10d42}',
  '\u{1e5d0}\u{1e5d1}\u{1e5d2} Ol Onal', 'Ol Onal digits \u{1e5f1}\u{1e5f2}', '\u{11bc0}\u{11bc1}\u{11bc2} Sunuwar \u{11bf0}\u{11bf1}',
  '\u{2ebf0}\u{2ebf1}\u{2ebf2} CJK Extension I', '中\u{2ebf0}文', '\u{13460}\u{13461} hieroglyphs extended-A', 'Latin \ua7cb\ua7cd \ua7da\ua7db\ua7dc',
  'Cyrillic \u1c89\u1c8a', '\u{1ccf0}\u{1ccf1}\u{1ccf2} outlined digits', 'Myanmar \u{116d0}\u{116d1}', "'\u{10d4a}", '"\u{1e5d0}\u{1e5d1}"',
  ' \u{2ebf0}', '\t\u{11bc0}', 'a\u{10d4a}1\u{10d40}b');

// --- a prompt in the shape earl builds
add('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n' +
  'Which instrument plays the melody?\nA. piano\nB. violin\nC. flute\nD. guitar\nAnswer with the letter.<|im_end|>\n<|im_start|>assistant\n<think>\n');

// --- a 10 KB paragraph of English prose
{
  const sentences = [
    'The quick brown fox jumps over the lazy dog.', 'Audio-language models learn to reason about sounds they hear.',
    "It's not always obvious which of two tones is higher, especially when they're close.",
    'Researchers evaluated the model on MMAU, a benchmark of 10,000 audio clips with multiple-choice questions.',
    'Reinforcement learning with group relative policy optimisation (GRPO) improves accuracy by 5.3 points.',
    'However, the gains depend on the reward function: format rewards alone are not enough.',
    'In 2024, several groups reported similar findings; see e.g. Li et al. (2025), pp. 12–15.',
    'The clip—recorded at 44.1 kHz—was resampled to 16 kHz before computing 128 log-mel bins.',
    'Why does the dog bark? Because it hears the doorbell, of course!', 'Temperature was set to 1.0 and top-p to 0.95.',
    '“Listen carefully,” she said, “and count the beeps.”', 'There were 3, maybe 4, short beeps followed by a long tone.',
  ];
  let p = '';
  while (p.length < 10240) p += pick(sentences) + (rand() < 0.15 ? '\n\n' : ' ');
  add(p);
}

writeFileSync(new URL('./corpus.jsonl', import.meta.url), out.map((text) => JSON.stringify({ text })).join('\n') + '\n');
console.log(`wrote corpus.jsonl: ${out.length} lines`);
