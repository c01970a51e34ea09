"""Streams one reply per model named on the command line through `smartproxy run` with the official anthropic Python SDK, each cut
short by the provider; prints one JSON line saying, for each, what the SDK did with it.

A whole stream ends in `message_stop`; a cut one must make the SDK raise, not hand over half a
reply as a finished message.
"""
import json
import sys

import anthropic

client = anthropic.Anthropic(max_retries=0)
out = []
for model in sys.argv[1:]:
    found = {}
    try:
        with client.messages.stream(
            model=model,
            max_tokens=200,
            messages=[{"role": "user", "content": "What is the answer?"}],
        ) as stream:
            found["text"] = "".join(stream.text_stream)
            final = stream.get_final_message()
        found["stop_reason"] = final.stop_reason
    except anthropic.APIError as err:
        found["raised"] = type(err).__name__
        found["message"] = str(err)
    except Exception as err:  # anything else is a finding too
        found["raised_other"] = f"{type(err).__name__}: {err}"
    out.append(found)
print(json.dumps(out))
