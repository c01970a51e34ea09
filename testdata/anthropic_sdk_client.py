"""Drives the official anthropic Python SDK through `smartproxy run`; prints one JSON line of findings.

The SDK reads ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment that `run` gave it.
"""
import json

import anthropic

client = anthropic.Anthropic(max_retries=0)
out = {"sdk_version": anthropic.__version__, "base_url": str(client.base_url)}

message = client.messages.create(
    model="claude-sonnet-4-5",
    max_tokens=200,
    system="You are terse.",
    messages=[{"role": "user", "content": "What is the answer?"}],
)
out["whole_text"] = message.content[0].text
out["whole_usage"] = [message.usage.input_tokens, message.usage.output_tokens]
out["stop_reason"] = message.stop_reason

with client.messages.stream(
    model="claude-sonnet-4-5",
    max_tokens=200,
    messages=[{"role": "user", "content": "What is the answer?"}],
) as stream:
    out["stream_text"] = "".join(stream.text_stream)
    final = stream.get_final_message()
out["stream_usage"] = [final.usage.input_tokens, final.usage.output_tokens]

try:
    client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[])
except anthropic.BadRequestError as err:
    out["bad_request"] = err.status_code

wrong = anthropic.Anthropic(api_key="sk-wrong", max_retries=0)
try:
    wrong.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
except anthropic.AuthenticationError as err:
    out["wrong_key"] = err.status_code

print(json.dumps(out))
