// Counts the tokens of every case in corpus.json with OpenAI's o200k_base encoding (the
// gpt-tokenizer package from npm, which bundles the encoding: no network) and writes
// the counts back into corpus.json, which src/wire/estimate.rs's test reads. Chat cases count the text of each
// message (content, tool call names and arguments) plus OpenAI's framing: 3 tokens per message
// and 3 to prime the reply. Re-run after editing the cases:
//   npm install --prefix /tmp/tok gpt-tokenizer@2
//   NODE_PATH=/tmp/tok/node_modules node testdata/estimates/count.cjs
const fs = require('fs');
const path = require('path');
const { encode } = require('gpt-tokenizer/encoding/o200k_base');
const dir = __dirname;
const cases = JSON.parse(fs.readFileSync(path.join(dir, 'corpus.json'), 'utf8'));
const count = (text) => (text ? encode(text).length : 0);
for (const c of cases) {
  if (c.text !== undefined) {
    c.tokens = count(c.text);
    continue;
  }
  let tokens = 3;
  for (const m of c.messages) {
    tokens += 3;
    const parts = typeof m.content === 'string' ? [m.content] : (m.content || []).map((p) => p.text);
    for (const p of parts) tokens += count(p);
    for (const call of m.tool_calls || []) tokens += count(call.function.name) + count(call.function.arguments);
  }
  c.tokens = tokens;
}
fs.writeFileSync(path.join(dir, 'corpus.json'), JSON.stringify(cases, null, 1) + '\n');
console.log(`${cases.length} cases counted`);
