#!/usr/bin/env python3
"""Re-trims model_prices.json from LiteLLM's full table, keeping the same model set.

    python3 src/pricing/trim_prices.py PATH/TO/model_prices_and_context_window_backup.json

The full table is `litellm/model_prices_and_context_window_backup.json` in the litellm wheel
(`pip download litellm==1.109.1 --no-deps`). Keeps, per model, the fields the pricing rules read
(see SOURCE.md); the model set is the one already in model_prices.json, so an upgrade of the
table does not silently add or drop providers. Then regenerate table.rs:
`SMARTPROXY_UPDATE_GENERATED=1 cargo test --test pricing_table`.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TRIMMED = HERE / "model_prices.json"

PLAIN = {
    "mode",
    "max_input_tokens",
    "max_output_tokens",
    "supports_function_calling",
    "supports_tool_choice",
    "supports_vision",
    "supports_reasoning",
    "supports_prompt_caching",
    "search_context_cost_per_query",
    # Prices by prompt-size range (DashScope's Qwen models) and at off-peak hours (DeepSeek).
    "tiered_pricing",
    "off_peak_pricing",
}
# Per-token rates, optionally above a prompt-size threshold and/or for a service tier or batches.
RATE = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr"
    r"|output_cost_per_reasoning_token)"
    r"(_above_\d+k?_tokens)?(_flex|_priority|_batches)?$"
)


def main() -> None:
    full = json.loads(Path(sys.argv[1]).read_text())
    current = json.loads(TRIMMED.read_text())
    models = {}
    for name in current["models"]:
        entry = full[name]
        kept = {k: v for k, v in entry.items() if v is not None and (k in PLAIN or RATE.match(k))}
        kept["provider"] = entry["litellm_provider"]
        models[name] = dict(sorted(kept.items()))
    out = {"_source": current["_source"], "models": models}
    TRIMMED.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(models)} models to {TRIMMED}")


if __name__ == "__main__":
    main()
