"""A tiny stand-in for an AI agent: three chat requests (one streamed) with Python's standard
library only, to the OpenAI-compatible endpoint in OPENAI_BASE_URL. `smartproxy run` sets it."""
import json
import os
import urllib.request

BASE = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
KEY = os.environ.get("OPENAI_API_KEY", "")


def chat(prompt, model="gpt-4o-mini", stream=False):
    body = {"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]}
    req = urllib.request.Request(
        BASE + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + KEY, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req) as resp:
        if not stream:
            return json.load(resp)["choices"][0]["message"]["content"]
        text = []
        for line in resp:
            line = line.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                delta = json.loads(line[6:])["choices"][0]["delta"]
                text.append(delta.get("content") or "")
        return "".join(text)


print("agent:", chat("Plan the task."))
print("agent:", chat("Do the task.", model="gpt-4o", stream=True))
print("agent:", chat("Summarise.", model="claude-sonnet-4-5"))
