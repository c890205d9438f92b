"""The one key and click handler of the review queues (ui/assets/review-keys.js), configured
with the panel's and the card's class and the key map."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

SCRIPT = (Path(__file__).parent / "assets" / "review-keys.js").read_text(encoding="utf-8")


def review_keys_js(scope: str, card: str, keys: Mapping[str, str]) -> str:
    """The component's `js_on_load`: `keys` maps a key (lower case) to the command it sends."""
    config = json.dumps({"scope": scope, "card": card, "keys": dict(keys)})
    return SCRIPT.replace("__REVIEW_KEYS__", config)
