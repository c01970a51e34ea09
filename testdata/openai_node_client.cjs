// Drives the official `openai` Node SDK (openai-node) through `smartproxy run`; prints one JSON
// line of findings. The SDK reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment `run`
// gave it; NODE_PATH points at the tests' installed packages.
const OpenAI = require("openai");

async function main() {
  const client = new OpenAI({ maxRetries: 0 });
  const out = { base_url: client.baseURL };
  const ask = [{ role: "user", content: "What is the answer?" }];

  const whole = await client.chat.completions.create({ model: "gpt-4o-mini", messages: ask });
  out.whole = whole.choices[0].message.content;
  out.whole_usage = [whole.usage.prompt_tokens, whole.usage.completion_tokens];

  const stream = await client.chat.completions.create({
    model: "gpt-4o-mini",
    messages: ask,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  for await (const chunk of stream) {
    if (chunk.choices[0]) text += chunk.choices[0].delta.content ?? "";
    if (chunk.usage) out.stream_usage = [chunk.usage.prompt_tokens, chunk.usage.completion_tokens];
  }
  out.stream = text;

  const response = await client.responses.create({ model: "gpt-4o-mini", input: "What is the answer?" });
  out.responses = response.output_text;

  const embedded = await client.embeddings.create({ model: "gpt-4o-mini", input: ["one", "two"] });
  out.embeddings = embedded.data.length;

  try {
    await new OpenAI({ apiKey: "sk-wrong", maxRetries: 0 }).chat.completions.create({
      model: "gpt-4o-mini",
      messages: ask,
    });
  } catch (err) {
    out.wrong_key = [err.status, err.code];
  }
  console.log(JSON.stringify(out));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
