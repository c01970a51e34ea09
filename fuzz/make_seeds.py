#!/usr/bin/env python3
"""Writes fuzz/seeds/TARGET/ from the fixtures under testdata/. Run from anywhere; the seed
files are checked in, so this is only needed when fixtures change.

Streaming targets take a split plan first (see fuzz/src/lib.rs: one byte n, n chunk sizes,
then the stream); whole-body targets with several entry points take a selector byte first."""
import glob
import hashlib
import os
import shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
MAX = 16384  # the -max_len of fuzz/run
PLANS = [b"\x00", b"\x04\x03\x01\x07\x02", b"\x01\x01"]


def files(*patterns):
    out = []
    for p in patterns:
        out.extend(sorted(glob.glob(os.path.join(ROOT, "testdata", p))))
    return [f for f in out if os.path.getsize(f) < MAX - 16]


def write(target, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    openai_sse = files("anthropic/stream_to_anthropic/*.sse", "ollama/ndjson_*_from_openai/*.in.sse")
    anthropic_sse = files("anthropic/stream_from_anthropic/*.sse")
    ndjson = files("ollama/sse_from_ndjson/*.in.ndjson")
    openai_requests = files("openai_chat.json", "anthropic/request_to_anthropic/*.openai.json",
                            "ollama/request_to_ollama/*.in.json")
    anthropic_requests = files("anthropic/request_from_anthropic/*.anthropic.json")
    ollama_requests = files("ollama/chat_request_to_openai/*.in.json",
                            "ollama/generate_request_to_openai/*.in.json")
    openai_responses = files("anthropic/response_to_anthropic/*.openai.json",
                             "ollama/chat_response_from_openai/*.in.json",
                             "ollama/generate_response_from_openai/*.in.json")
    anthropic_responses = files("anthropic/response_from_anthropic/*.anthropic.json")
    ollama_responses = files("ollama/response_from_ollama/*.in.json")

    for f in openai_sse + anthropic_sse + ndjson[:2]:
        for plan in PLANS:
            write("sse_decoder", plan + read(f))
    for f in ndjson + openai_sse[:2]:
        for plan in PLANS:
            write("ndjson_decoder", plan + read(f))
    for f in openai_sse + anthropic_sse:
        for plan in PLANS[:2]:
            write("stream_anthropic", plan + read(f))
    for f in ndjson + openai_sse:
        for plan in PLANS[:2]:
            write("stream_ollama", plan + read(f))
    for f in openai_sse:
        for plan in [b"\x01\x03", b"\x02\x03\x05", b"\x01\x01"]:
            write("transform_stream", plan + read(f))
    for f in openai_requests + openai_responses:
        write("transform_stream", b"\x01\x07" + read(f))

    for f in openai_requests + openai_responses:
        for flags in b"\x00\x03\x07":
            write("wire_openai", bytes([flags]) + read(f))
    for f in anthropic_requests + anthropic_responses:
        write("wire_anthropic", read(f))
    for f in ollama_requests + ollama_responses:
        write("wire_ollama", read(f))

    for f in openai_requests + anthropic_requests:
        write("translate_anthropic", b"\x00" + read(f))
    for f in openai_responses + anthropic_responses:
        write("translate_anthropic", b"\x01" + read(f))
        write("translate_anthropic", b"\x02" + read(f))
    for f in ollama_requests + openai_requests:
        write("translate_ollama", b"\x00" + read(f))
    for f in ollama_responses + openai_responses:
        write("translate_ollama", b"\x01" + read(f))
        write("translate_ollama", b"\x02" + read(f))
    # Anthropic stream events one by one, for the wire type.
    for f in anthropic_sse:
        for line in read(f).splitlines():
            if line.startswith(b"data: "):
                write("wire_anthropic", line[6:])
    # Inputs that once failed a target (fuzz/regressions/TARGET/), so every run tries them.
    for path in sorted(glob.glob(os.path.join(ROOT, "fuzz", "regressions", "*", "*"))):
        write(os.path.basename(os.path.dirname(path)), read(path))


if __name__ == "__main__":
    main()
