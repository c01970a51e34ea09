"""The official openai and anthropic SDKs, streamed and not, for the cassette tests: prints
everything the SDKs made of the replies as one JSON document, so a recorded and a replayed
session can be compared."""
import json
import os

import anthropic
import openai

pid = str(os.getpid())
messages = [{"role": "user", "content": "Say the answer."}]
found = {}

client = openai.OpenAI()
whole = client.chat.completions.create(model="gpt-4o-mini", messages=messages, user="run-" + pid)
found["openai_whole"] = whole.model_dump()
stream = client.chat.completions.create(
    model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
)
found["openai_stream"] = [chunk.model_dump() for chunk in stream]

claude = anthropic.Anthropic()
reply = claude.messages.create(
    model="gpt-4o-mini", max_tokens=64, messages=messages, metadata={"user_id": "session_" + pid}
)
found["anthropic_whole"] = reply.model_dump()
with claude.messages.stream(model="gpt-4o-mini", max_tokens=64, messages=messages) as events:
    found["anthropic_stream"] = [event.model_dump() for event in events]
    found["anthropic_stream_final"] = events.get_final_message().model_dump()

print(json.dumps(found, sort_keys=True))
