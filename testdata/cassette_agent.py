"""A scripted agent for the cassette tests (standard library only): OpenAI chat whole and
streamed, one request asked twice, an Anthropic, a Responses API (streamed) and an Ollama request, each with the fields real
SDKs change run to run. Prints every status and body exactly as received; exits 3 when any
request failed."""
import json
import os
import sys
import urllib.error
import urllib.request

proxy = os.environ["ANTHROPIC_BASE_URL"]
prompt = os.environ.get("AGENT_PROMPT", "What is the answer?")
secret_note = os.environ.get("AGENT_NOTE", "")


def post(path, body, headers):
    request = urllib.request.Request(
        proxy + path,
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


openai = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
anthropic = {"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"}
messages = [
    {"role": "system", "content": "You are terse." + secret_note},
    {"role": "user", "content": prompt},
]
pid = str(os.getpid())
replies = [
    post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": messages, "user": "run-" + pid}, openai),
    post(
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": messages, "stream": True,
         "stream_options": {"include_usage": True}},
        openai,
    ),
]
for _ in range(2):
    roll = [{"role": "user", "content": "Roll a die."}]
    replies.append(post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": roll}, openai))
replies.append(
    post(
        "/v1/messages",
        {"model": "gpt-4o-mini", "max_tokens": 50, "metadata": {"user_id": "session_" + pid},
         "messages": [{"role": "user", "content": "Hello from Anthropic's format."}]},
        anthropic,
    )
)
replies.append(
    post("/v1/responses", {"model": "gpt-4o-mini", "input": "Hello from the Responses API.",
                           "stream": True}, openai)
)
replies.append(
    post("/api/chat", {"model": "gpt-4o-mini", "stream": False,
                       "messages": [{"role": "user", "content": "Hello from Ollama's format."}]}, {})
)
for status, body in replies:
    print(status, body)
sys.exit(0 if all(status == 200 for status, _ in replies) else 3)
