"""embedscape command line: index images into Qdrant, inspect, export, and serve the explorer.

    python app.py index PATH --collection NAME [--model MODEL] [--labels FILE] [--limit N]
    python app.py info --collection NAME
    python app.py export --collection NAME --format csv --out FILE
    python app.py analyze --collection NAME
    python app.py predictions --collection NAME FILE
    python app.py serve --collection NAME [--port 7860]
    python app.py demo [--full]
    python app.py                      # the explorer, configured by the environment (Spaces)

Store: QDRANT_URL (+ QDRANT_API_KEY) for a Qdrant server, else the embedded engine under
QDRANT_PATH (default ./data/qdrant). This file only parses arguments and wires the parts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_COLLECTION = "fashion-mnist"
DEMO_DIR = Path(os.environ.get("EMBEDSCAPE_DEMO_DIR", "./data/demo/fashion-mnist"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["serve"])
    from indexer.models import ModelLoadError
    from indexer.sources import SourceError
    from export import ExportError
    from store import StoreError

    try:
        return int(args.handler(args) or 0)
    except (SourceError, StoreError, ModelLoadError, ExportError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="app.py", description="Map, explore and tag image embeddings in Qdrant.")
    parser.add_argument("--qdrant-path", help="embedded store folder (env QDRANT_PATH, default ./data/qdrant)")
    parser.add_argument("--qdrant-url", help="Qdrant server URL (env QDRANT_URL); overrides --qdrant-path")
    parser.add_argument("--qdrant-api-key", help="Qdrant API key (env QDRANT_API_KEY)")
    commands = parser.add_subparsers(dest="command")

    index = commands.add_parser("index", help="embed a folder of images into a collection and build its map")
    index.add_argument("path", help="dataset folder (ImageFolder layout, or with --labels)")
    index.add_argument("--collection", required=True)
    index.add_argument("--model", default=None, help="sentence-transformers name or folder, or mobilenet-v2 "
                                                      "(default clip-ViT-B-32; needs the network once)")
    index.add_argument("--labels", type=Path, help="CSV / JSON Lines (path,label[,split]) or COCO JSON")
    index.add_argument("--limit", type=int, help="index only the first N images (sorted by path)")
    index.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    index.add_argument("--batch-size", type=int, default=32)
    index.add_argument("--workers", type=int, default=2, help="decode threads")
    index.add_argument("--neighbours", type=int, default=15, help="k of the saved neighbour graph")
    index.add_argument("--seed", type=int, default=0, help="UMAP seed (same seed, same map)")
    index.add_argument("--no-image-metrics", action="store_true",
                       help="skip brightness / contrast / sharpness / colourfulness / size metrics")
    index.set_defaults(handler=cmd_index)

    info = commands.add_parser("info", help="what a collection holds")
    info.add_argument("--collection", required=True)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=cmd_info)

    export = commands.add_parser("export", help="write the points of a collection to a file")
    export.add_argument("--collection", required=True)
    export.add_argument("--format", default="csv", choices=["csv"])
    export.add_argument("--out", required=True, type=Path)
    export.set_defaults(handler=cmd_export)

    analyze = commands.add_parser("analyze", help="score mislabels, outliers, duplicates and image metrics")
    analyze.add_argument("--collection", required=True)
    analyze.add_argument("-k", "--neighbours", type=int, default=10, help="neighbours per point (default 10)")
    analyze.set_defaults(handler=cmd_analyze)

    predictions = commands.add_parser("predictions", help="import a model's predictions (CSV or JSON Lines)")
    predictions.add_argument("--collection", required=True)
    predictions.add_argument("file", type=Path)
    predictions.set_defaults(handler=cmd_predictions)

    serve = commands.add_parser("serve", help="start the explorer web app")
    serve.add_argument("--collection", default=os.environ.get("EMBEDSCAPE_COLLECTION", DEFAULT_COLLECTION))
    serve.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="build the Fashion-MNIST demo collection (then `serve`)")
    demo.add_argument("--full", action="store_true", default=os.environ.get("EMBEDSCAPE_DEMO_FULL") == "1",
                      help="all 70,000 images instead of the 10,000 test images (env EMBEDSCAPE_DEMO_FULL=1)")
    demo.add_argument("--collection", default=DEFAULT_COLLECTION)
    demo.add_argument("--serve", action="store_true", help="start the explorer when done")
    demo.add_argument("--port", type=int, default=7860)
    demo.set_defaults(handler=cmd_demo)
    return parser


def open_configured_store(args: argparse.Namespace) -> Any:
    from store import open_store

    return open_store(path=args.qdrant_path, url=args.qdrant_url, api_key=args.qdrant_api_key)


def cmd_index(args: argparse.Namespace) -> int:
    from indexer.models import DEFAULT_MODEL
    from indexer.pipeline import IndexOptions, index_dataset
    from indexer.projection import ProjectionConfig

    store = open_configured_store(args)
    model = args.model or _collection_model(store, args.collection) or DEFAULT_MODEL
    options = IndexOptions(collection=args.collection, model=model, labels_file=args.labels, limit=args.limit,
                           device=args.device, batch_size=args.batch_size, workers=args.workers,
                           neighbours=args.neighbours, projection=ProjectionConfig(seed=args.seed),
                           image_metrics=not args.no_image_metrics)
    try:
        report = index_dataset(args.path, store, options)
    finally:
        store.close()
    for skipped in report.skipped[:20]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    if len(report.skipped) > 20:
        print(f"... and {len(report.skipped) - 20} more skipped files", file=sys.stderr)
    for problem in report.problems[:20]:
        print(f"note: {problem}", file=sys.stderr)
    print(report.summary())
    if report.quality:
        print(report.quality)
    print(f"report: {report.report_file}")
    return 0 if report.total_points else 1


def _collection_model(store: Any, name: str) -> str | None:
    return store.open(name).read_metadata().get("model") if store.exists(name) else None


def cmd_info(args: argparse.Namespace) -> int:
    store = open_configured_store(args)
    try:
        collection = store.open(args.collection)
        metadata = collection.read_metadata()
        info = {"collection": args.collection, "store": store.description, "points": collection.count(),
                "model": metadata.get("model"), "dimension": metadata.get("dimension"),
                "source_root": metadata.get("source_root"), "indexed_at": metadata.get("indexed_at"),
                "labels": collection.label_counts(), "tags": collection.tag_counts(),
                "projection": metadata.get("projection")}
    finally:
        store.close()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("collection", "store", "points", "model", "dimension", "source_root", "indexed_at"):
        print(f"{key:12} {info[key]}")
    print(f"{'labels':12} {len(info['labels'])}: " + ", ".join(f"{k} ({v})" for k, v in info["labels"].items()))
    print(f"{'tags':12} {len(info['tags'])}: " + ", ".join(f"{k} ({v})" for k, v in info["tags"].items()))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from indexer.quality import analyze_collection

    store = open_configured_store(args)
    try:
        summary = analyze_collection(store.open(args.collection), k=args.neighbours)
    finally:
        store.close()
    if summary.metrics_added:
        print(f"image metrics added to {summary.metrics_added} points")
    print(summary.summary())
    return 0


def cmd_predictions(args: argparse.Namespace) -> int:
    from indexer.predictions import import_predictions

    store = open_configured_store(args)
    try:
        result = import_predictions(store.open(args.collection), args.file)
    finally:
        store.close()
    for line in result.bad_rows[:20] + [f"unknown point: {p}" for p in result.unknown_points[:20]]:
        print(line, file=sys.stderr)
    print(result.summary())
    return 0 if result.written else 1


def cmd_export(args: argparse.Namespace) -> int:
    from export import export_points

    store = open_configured_store(args)
    try:
        count = export_points(store.open(args.collection), args.format, args.out)
    finally:
        store.close()
    print(f"wrote {count} points to {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve

    store = open_configured_store(args)
    collection = store.open(args.collection)
    metadata = collection.read_metadata()
    text_encoder = _text_encoder(metadata) if metadata.get("has_text_encoder") else None
    serve(collection, host=args.host, port=args.port, text_encoder=text_encoder)
    return 0


def _text_encoder(metadata: dict[str, Any]) -> Any:
    """Loads the collection's model on the first text query, not at start-up."""
    loaded: dict[str, Any] = {}

    def encode(text: str) -> Any:
        from indexer.models import load_embedder

        if "model" not in loaded:
            loaded["model"] = load_embedder(metadata["model"])
        return loaded["model"].embed_text([text])[0]

    return encode


def cmd_demo(args: argparse.Namespace) -> int:
    from indexer.demo import materialise

    folder = materialise(DEMO_DIR.with_name(DEMO_DIR.name + ("-full" if args.full else "")), full=args.full)
    code = main(_store_flags(args) + ["index", str(folder), "--collection", args.collection,
                                      "--model", "mobilenet-v2"])
    if code == 0 and args.serve:
        return main(_store_flags(args) + ["serve", "--collection", args.collection, "--port", str(args.port)])
    return code


def _store_flags(args: argparse.Namespace) -> list[str]:
    flags = []
    for flag, value in (("--qdrant-path", args.qdrant_path), ("--qdrant-url", args.qdrant_url),
                        ("--qdrant-api-key", args.qdrant_api_key)):
        if value:
            flags += [flag, value]
    return flags


if __name__ == "__main__":
    sys.exit(main())
