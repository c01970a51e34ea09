#!/usr/bin/env python3
"""The accounting corpus: builds every case and its expected tokens and cost.

    python3 testdata/accounting/expected.py            # rewrites cases.jsonl
    python3 testdata/accounting/expected.py --check    # fails when cases.jsonl is stale
    PY=/path/to/venv/with/litellm/bin/python
    $PY testdata/accounting/expected.py --litellm      # cross-checks every cost with LiteLLM

The expected cost is plain arithmetic on the per-token prices of src/pricing/model_prices.json
(never on smartproxy's code); the rules are written out in README.md. Standard library only,
except --litellm, which imports litellm (see README.md).
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TABLE = json.loads((HERE.parent.parent / "src/pricing/model_prices.json").read_text())["models"]
OUT = HERE / "cases.jsonl"

# smartproxy providers of the test config: name -> kind. The test writes one per entry,
# each against its own mock upstream.
PROVIDERS = {
    "openai": "openai",
    "deepseek": "openai",
    "google": "openai",
    "my-gateway": "openai",
    "xai": "openai",
    "fireworks": "openai",
    "perplexity": "openai",
    "anthropic": "anthropic",
    "ollama": "ollama",
}

# Config overrides of the test config, USD per million tokens (the case's `override` names one).
OVERRIDES = {
    "gpt-4.1": {"input_per_mtok": 1.0, "output_per_mtok": 4.0, "cached_input_per_mtok": 0.25},
    "gpt-4.1-2025-04-14": {"input_per_mtok": 1.5, "output_per_mtok": 6.0},
    "claude-sonnet-4-5": {
        "input_per_mtok": 2.0,
        "output_per_mtok": 10.0,
        "cached_input_per_mtok": 0.2,
        "cache_write_per_mtok": 2.5,
        "cache_write_1h_per_mtok": 4.0,
    },
}


def rate(entry, key):
    v = entry.get(key)
    return None if v is None else float(v)


def rates(entry, service_tier, prompt, inclusive):
    """Per-token prices for one request (README.md, "Rules")."""
    sfx = {"flex": "_flex", "priority": "_priority"}.get(service_tier or "", "")

    def tiered(key):  # the service tier's price, else the standard one
        return rate(entry, key + sfx) if sfx and rate(entry, key + sfx) is not None else rate(entry, key)

    r = {
        "input": tiered("input_cost_per_token"),
        "output": tiered("output_cost_per_token"),
        "cache_read": tiered("cache_read_input_token_cost"),
        "cache_write": tiered("cache_creation_input_token_cost"),
        "cache_write_1h": tiered("cache_creation_input_token_cost_above_1hr"),
    }
    thresholds = set()
    for key in entry:
        if "_above_" in key and "_tokens" in key and not key.endswith("_batches"):
            if key.startswith("cache_creation_input_token_cost_above_1hr"):
                continue
            if key.endswith(("_flex", "_priority")) and not (sfx and key.endswith(sfx)):
                continue
            thresholds.add(key.split("_above_")[1].split("_tokens")[0])
    for t in thresholds:
        n = int(t.rstrip("k")) * (1000 if t.endswith("k") else 1)
        if prompt > n or (inclusive and prompt == n):
            for name, base in [
                ("input", "input_cost_per_token"),
                ("output", "output_cost_per_token"),
                ("cache_read", "cache_read_input_token_cost"),
                ("cache_write", "cache_creation_input_token_cost"),
            ]:
                above = f"{base}_above_{t}_tokens"
                v = rate(entry, above + sfx) if sfx else None
                v = v if v is not None else rate(entry, above)
                if v is not None:
                    r[name] = v
            long_1h = rate(entry, f"cache_creation_input_token_cost_above_1hr_above_{t}_tokens{sfx}")
            if long_1h is not None:
                r["cache_write_1h"] = long_1h
    if r["cache_read"] is None:
        r["cache_read"] = r["input"]
    if r["cache_write"] is None:
        r["cache_write"] = r["input"]
    if r["cache_write_1h"] is None:
        r["cache_write_1h"] = r["cache_write"]
    if sfx and rate(entry, "output_cost_per_reasoning_token" + sfx) is not None:
        r["reasoning"] = rate(entry, "output_cost_per_reasoning_token" + sfx)
    elif sfx and rate(entry, "output_cost_per_token" + sfx) is not None:
        r["reasoning"] = r["output"]
    else:
        reasoning = rate(entry, "output_cost_per_reasoning_token")
        r["reasoning"] = r["output"] if reasoning is None else reasoning
    return r


def override_entry(o):
    """An override as a table entry (per token)."""
    e = {"input_cost_per_token": o["input_per_mtok"] / 1e6, "output_cost_per_token": o["output_per_mtok"] / 1e6}
    for key, field in [
        ("cached_input_per_mtok", "cache_read_input_token_cost"),
        ("cache_write_per_mtok", "cache_creation_input_token_cost"),
        ("cache_write_1h_per_mtok", "cache_creation_input_token_cost_above_1hr"),
    ]:
        if key in o:
            e[field] = o[key] / 1e6
    return e


def expected_cost(case, t):
    if case.get("override"):
        entry = override_entry(OVERRIDES[case["override"]])
    else:
        entry = dict(TABLE[case["price_key"]])
        # Fireworks bills cached input at half the input price where the table has none.
        if entry["provider"] == "fireworks_ai" and "cache_read_input_token_cost" not in entry:
            entry["cache_read_input_token_cost"] = entry["input_cost_per_token"] * 0.5
    inclusive = entry.get("provider") == "xai"
    r = rates(entry, case.get("service_tier"), t["prompt"], inclusive)
    uncached = max(t["prompt"] - t["cached"] - t["cache_write"], 0)
    w1h = t["cache_write_1h"]
    w5m = max(t["cache_write"] - w1h, 0)
    text = max(t["completion"] - t["reasoning"], 0)
    search = 0.0
    if t["web_searches"]:
        per_query = (entry.get("search_context_cost_per_query") or {}).get("search_context_size_medium", 0.0)
        search = t["web_searches"] * per_query
    return (
        uncached * r["input"]
        + t["cached"] * r["cache_read"]
        + w5m * r["cache_write"]
        + w1h * r["cache_write_1h"]
        + text * r["output"]
        + t["reasoning"] * r["reasoning"]
        + search
    )


def tokens_of(case):
    """Expected token counts from the upstream's usage, by wire format."""
    u = case["usage"]
    fmt = case["upstream_format"]
    if fmt == "anthropic":
        read = u.get("cache_read_input_tokens", 0)
        written = u.get("cache_creation_input_tokens", 0)
        return {
            "prompt": u["input_tokens"] + read + written,
            "completion": u["output_tokens"],
            "cached": read,
            "cache_write": written,
            "cache_write_1h": (u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0),
            "reasoning": 0,
            "web_searches": (u.get("server_tool_use") or {}).get("web_search_requests", 0),
        }
    if fmt == "ollama":
        return {
            "prompt": u["prompt_eval_count"],
            "completion": u["eval_count"],
            "cached": 0,
            "cache_write": 0,
            "cache_write_1h": 0,
            "reasoning": 0,
            "web_searches": 0,
        }
    details = u.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens", u.get("prompt_cache_hit_tokens", 0))
    return {
        "prompt": u["prompt_tokens"],
        "completion": u["completion_tokens"],
        "cached": cached,
        "cache_write": u.get("cache_creation_input_tokens", 0),
        "cache_write_1h": 0,
        "reasoning": (u.get("completion_tokens_details") or {}).get("reasoning_tokens", 0),
        "web_searches": 0,
    }


def oa(prompt, completion, cached=None, reasoning=None):
    u = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    if reasoning is not None:
        u["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return u


def an(inp, out, read=0, w5m=0, w1h=0, searches=0):
    u = {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": read,
         "cache_creation_input_tokens": w5m + w1h}
    if w1h:
        u["cache_creation"] = {"ephemeral_5m_input_tokens": w5m, "ephemeral_1h_input_tokens": w1h}
    if searches:
        u["server_tool_use"] = {"web_search_requests": searches}
    return u


def ds(hit, miss, completion, reasoning=None):
    u = {"prompt_tokens": hit + miss, "completion_tokens": completion,
         "total_tokens": hit + miss + completion, "prompt_cache_hit_tokens": hit,
         "prompt_cache_miss_tokens": miss}
    if reasoning is not None:
        u["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return u


# (shape, provider, reply model, table key or None for an override, usage, service tier, override)
SCENARIOS = [
    ("plain dated", "openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06", oa(1234, 321, 0), None, None),
    ("cached", "openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini-2024-07-18", oa(5000, 200, 3840), None, None),
    ("priority", "openai", "gpt-4o-2024-08-06", "gpt-4o-2024-08-06", oa(2000, 100, 1024), "priority", None),
    ("reasoning", "openai", "o3-2025-04-16", "o3-2025-04-16", oa(800, 1500, 0, 1200), "default", None),
    ("flex reasoning", "openai", "o4-mini-2025-04-16", "o4-mini-2025-04-16", oa(900, 700, 512, 600), "flex", None),
    ("tier above 272k", "openai", "gpt-5.4", "gpt-5.4", oa(300000, 2000, 100000, 1000), None, None),
    ("tier at 272k", "openai", "gpt-5.4", "gpt-5.4", oa(272000, 2000, 0), None, None),
    ("flex", "openai", "gpt-5.4", "gpt-5.4", oa(10000, 500, 2000), "flex", None),
    ("flex above 272k", "openai", "gpt-5.4", "gpt-5.4", oa(400000, 500, 2000), "flex", None),
    ("priority tier", "openai", "gpt-5.4", "gpt-5.4", oa(10000, 500, 2000), "priority", None),
    ("override undated", "openai", "gpt-4.1-2025-05-01", None, oa(3000, 300, 1000), None, "gpt-4.1"),
    ("override exact dated", "openai", "gpt-4.1-2025-04-14", None, oa(3000, 300, 1000), None, "gpt-4.1-2025-04-14"),
    ("deepseek hit/miss", "deepseek", "deepseek-chat", "deepseek/deepseek-chat", ds(6400, 1600, 300), None, None),
    ("deepseek reasoner", "deepseek", "deepseek-reasoner", "deepseek/deepseek-reasoner", ds(1000, 24, 900, 700), None, None),
    ("gemini tier above 200k", "google", "gemini-2.5-pro", "gemini/gemini-2.5-pro", oa(250000, 3000, 50000, 2000), None, None),
    ("gemini reasoning", "google", "gemini-2.5-flash", "gemini/gemini-2.5-flash", oa(4000, 2500, 1000, 2000), None, None),
    ("gemini any provider name", "my-gateway", "gemini-2.5-pro", "gemini/gemini-2.5-pro", oa(12000, 800, 0), None, None),
    ("xai at threshold", "xai", "grok-4.3", "xai/grok-4.3", oa(200000, 100, 0), None, None),
    ("xai cached", "xai", "grok-4.3", "xai/grok-4.3", oa(5000, 100, 4000), None, None),
    ("fireworks cached", "fireworks", "accounts/fireworks/models/code-llama-13b-instruct",
     "fireworks_ai/accounts/fireworks/models/code-llama-13b-instruct", oa(6000, 400, 4000), None, None),
    ("reasoning rate", "perplexity", "sonar-deep-research", "perplexity/sonar-deep-research",
     oa(700, 5000, 0, 4000), None, None),
    ("anthropic plain", "anthropic", "claude-sonnet-4-5-20250929", None, an(1500, 400), None, "claude-sonnet-4-5"),
    ("anthropic cached", "anthropic", "claude-opus-4-6", "claude-opus-4-6", an(120, 300, read=9000), None, None),
    ("anthropic write 5m", "anthropic", "claude-opus-4-6", "claude-opus-4-6", an(50, 200, w5m=4000), None, None),
    ("anthropic write 1h", "anthropic", "claude-opus-4-6", "claude-opus-4-6",
     an(50, 200, read=1000, w5m=1000, w1h=3000), None, None),
    ("anthropic web search", "anthropic", "claude-opus-4-6", "claude-opus-4-6", an(3000, 600, searches=3), None, None),
    ("anthropic override 1h", "anthropic", "claude-sonnet-4-5-20250929", None,
     an(10, 50, read=500, w5m=200, w1h=300, searches=1), None, "claude-sonnet-4-5"),
    ("ollama", "ollama", "llama3.1", "ollama/llama3.1", {"prompt_eval_count": 321, "eval_count": 54}, None, None),
]


def build():
    cases = []
    for shape, provider, model, key, usage, tier, override in SCENARIOS:
        kind = PROVIDERS[provider]
        clients = ["openai", "anthropic"] if kind == "anthropic" else ["openai"]
        for client in clients:
            for stream in (False, True):
                for retry in (None, 500, 429):
                    case = {
                        "id": f"{len(cases):03d}",
                        "shape": shape,
                        "provider": provider,
                        "kind": kind,
                        "client": client,
                        "translated": client == "openai" and kind == "anthropic",
                        "stream": stream,
                        "retry": retry,
                        "model": model,
                        "price_key": key,
                        "override": override,
                        "service_tier": tier,
                        "upstream_format": kind if kind != "openai" else "openai",
                        "usage": usage,
                    }
                    t = tokens_of(case)
                    case["expected"] = {
                        "prompt_tokens": t["prompt"],
                        "completion_tokens": t["completion"],
                        "cached_tokens": t["cached"],
                        "cache_write_tokens": t["cache_write"],
                        "cost_usd": expected_cost(case, t),
                    }
                    cases.append(case)
    return cases


def litellm_cost(case):
    """The same request priced by LiteLLM's own calculator (needs litellm installed)."""
    import litellm
    from litellm.llms import get_cost_for_web_search_request
    from litellm.types.utils import (
        CacheCreationTokenDetails,
        CompletionTokensDetailsWrapper,
        PromptTokensDetailsWrapper,
        ServerToolUse,
        Usage,
    )

    t = tokens_of(case)
    details = PromptTokensDetailsWrapper(cached_tokens=t["cached"], cache_creation_tokens=t["cache_write"])
    if t["cache_write_1h"]:
        details.cache_creation_token_details = CacheCreationTokenDetails(
            ephemeral_5m_input_tokens=t["cache_write"] - t["cache_write_1h"],
            ephemeral_1h_input_tokens=t["cache_write_1h"],
        )
    usage = Usage(
        prompt_tokens=t["prompt"],
        completion_tokens=t["completion"],
        total_tokens=t["prompt"] + t["completion"],
        prompt_tokens_details=details,
        completion_tokens_details=CompletionTokensDetailsWrapper(reasoning_tokens=t["reasoning"])
        if t["reasoning"]
        else None,
        server_tool_use=ServerToolUse(web_search_requests=t["web_searches"]) if t["web_searches"] else None,
    )
    if case.get("override"):
        o = override_entry(OVERRIDES[case["override"]])
        name = "smartproxy-override-" + "abcdefgh"[list(OVERRIDES).index(case["override"])]
        litellm.register_model({name: {**o, "litellm_provider": "anthropic" if case["kind"] == "anthropic" else "openai", "mode": "chat"}})
        key, provider = name, ("anthropic" if case["kind"] == "anthropic" else "openai")
    else:
        key = case["price_key"]
        provider = TABLE[key]["provider"]
    prompt, completion = litellm.cost_per_token(
        model=key, custom_llm_provider=provider, usage_object=usage, service_tier=case.get("service_tier")
    )
    total = prompt + completion
    if t["web_searches"]:
        info = litellm.get_model_info(model=key, custom_llm_provider=provider)
        total += get_cost_for_web_search_request(custom_llm_provider=provider, usage=usage, model_info=info) or 0.0
    return total


def main():
    cases = build()
    text = "".join(json.dumps(c, sort_keys=True) + "\n" for c in cases)
    if "--litellm" in sys.argv:
        bad = 0
        for case in cases:
            theirs = litellm_cost(case)
            ours = case["expected"]["cost_usd"]
            ok = abs(theirs - ours) <= 1e-9
            bad += not ok
            print(f"{case['id']} {case['shape']:<28} {'ok ' if ok else 'BAD'} expected={ours:.12f} litellm={theirs:.12f}")
        print(f"{len(cases) - bad} of {len(cases)} agree with litellm within 1e-9 USD")
        sys.exit(1 if bad else 0)
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            sys.exit(f"{OUT} is stale: run python3 {Path(__file__).name}")
        print(f"{len(cases)} cases up to date")
        return
    OUT.write_text(text)
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
