"""First start without a collection (a fresh Space or container): build a small demo.

`python app.py` (and `serve`) on the demo collection name, when that collection does not
exist yet, writes the first EMBEDSCAPE_DEMO_LIMIT (default 2,000) Fashion-MNIST test images
as PNGs, indexes them with mobilenet-v2 and serves the result. When that cannot be done
(offline without the data, no weights), the app serves a page that says how to index instead
of failing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from store import Store

DEMO_LIMIT_ENV = "EMBEDSCAPE_DEMO_LIMIT"
DEFAULT_DEMO_LIMIT = 2_000
DEMO_MODEL = "mobilenet-v2"


def demo_limit(env: Any = None) -> int:
    env = os.environ if env is None else env
    text = (env.get(DEMO_LIMIT_ENV) or "").strip()
    try:
        return max(1, int(text)) if text else DEFAULT_DEMO_LIMIT
    except ValueError:
        return DEFAULT_DEMO_LIMIT


def build_demo(store: Store, name: str, demo_root: Path, limit: int) -> Any:
    """Write `limit` Fashion-MNIST test images under `demo_root`-`limit` and index them as `name`."""
    from deploy.weights import ensure_package
    from indexer.demo import materialise
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze

    folder = materialise(Path(f"{demo_root}-{limit}"), full=False, limit=limit)
    ensure_package()
    return index_and_analyze(folder, store, IndexOptions(collection=name, model=DEMO_MODEL))


def how_to_index(name: str, store: Store, reason: str) -> str:
    return (f"## No collection '{name}' yet\n\n"
            f"The demo could not be built here:\n\n{fenced(reason)}\n\n"
            f"Index a folder of images into {store.description}:\n\n"
            f"```bash\npython app.py index PATH/TO/IMAGES --collection {name} --model mobilenet-v2\n"
            f"python app.py serve --collection {name}\n```\n\n"
            "or build the Fashion-MNIST demo where its data can be read or downloaded: `python app.py demo`.")


def fenced(text: str) -> str:
    """`text` (an error's message: paths, file contents) as a Markdown code block, which shows it
    as it is: no markup from it. The fence is longer than any run of backquotes in it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def ensure_demo_collection(store: Store, name: str, demo_root: Path, limit: int | None = None) -> str | None:
    """None when collection `name` exists (built now if needed); else what to tell the user."""
    if store.exists(name):
        return None
    limit = limit or demo_limit()
    print(f"no collection '{name}' yet: building the demo ({limit} Fashion-MNIST images) first", flush=True)
    try:
        report = build_demo(store, name, demo_root, limit)
    except Exception as error:  # any failure becomes instructions on the page, not a crash
        return how_to_index(name, store, f"{type(error).__name__}: {error}")
    print(report.summary(), flush=True)
    return None if store.exists(name) else how_to_index(name, store, "indexing wrote no points")


def instructions_app(message: str) -> Any:
    """A one-page Gradio app showing `message` (Markdown)."""
    import gradio as gr

    with gr.Blocks(title="embedscape") as page:
        gr.Markdown(message)
    return page


def serve_instructions(message: str, host: str, port: int, auth: Any = None) -> None:
    print(message, flush=True)
    instructions_app(message).launch(server_name=host, server_port=port, auth=auth)
