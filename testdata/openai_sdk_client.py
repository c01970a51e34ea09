"""Drives the official openai Python SDK through `smartproxy run`; prints one JSON line of findings.

The SDK reads OPENAI_BASE_URL and OPENAI_API_KEY from the environment that `run` gave it.
"""
import json
import os

import openai

client = openai.OpenAI(max_retries=0)
out = {"sdk_version": openai.__version__, "base_url": str(client.base_url)}

reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "What is the answer?"}],
)
out["whole_content"] = reply.choices[0].message.content
out["whole_usage"] = [reply.usage.prompt_tokens, reply.usage.completion_tokens]

chunks = list(
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the answer?"}],
        stream=True,
    )
)
out["stream_content"] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
out["stream_usage_seen"] = any(getattr(c, "usage", None) for c in chunks)

chunks = list(
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the answer?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
last = chunks[-1]
out["stream_usage"] = [last.usage.prompt_tokens, last.usage.completion_tokens] if last.usage else None

# The Responses API (what Codex speaks), whole and streamed.
response = client.responses.create(model="gpt-4o-mini", input="What is the answer?")
out["responses_text"] = response.output_text
out["responses_usage"] = [response.usage.input_tokens, response.usage.output_tokens]
events = list(client.responses.create(model="gpt-4o-mini", input="What is the answer?", stream=True))
out["responses_stream_text"] = "".join(e.delta for e in events if e.type == "response.output_text.delta")
completed = [e for e in events if e.type == "response.completed"]
out["responses_stream_usage"] = [completed[0].response.usage.input_tokens, completed[0].response.usage.output_tokens] if completed else None

# The Responses API translated for a chat provider (the mock), whole and through the SDK's
# stream helper, which rebuilds the response from the events and checks their order.
response = client.responses.create(model="mock", instructions="Be brief.", input="hi")
out["translated_text"] = response.output_text
with client.responses.stream(model="mock", input="hi") as stream:
    final = stream.get_final_response()
out["translated_stream_text"] = final.output_text
out["translated_stream_usage"] = [final.usage.input_tokens > 0, final.usage.output_tokens > 0]

# Embeddings.
embedded = client.embeddings.create(model="gpt-4o-mini", input=["one", "two"])
out["embeddings"] = [len(embedded.data), embedded.usage.prompt_tokens]

try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[])
except openai.BadRequestError as err:
    out["bad_request"] = [err.status_code, err.code]

wrong = openai.OpenAI(api_key="sk-wrong", max_retries=0)
try:
    wrong.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
except openai.AuthenticationError as err:
    out["wrong_key"] = [err.status_code, err.code]

out["real_key_visible"] = os.environ.get("UPSTREAM_KEY") is not None
print(json.dumps(out))
