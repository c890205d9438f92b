"""embedscape command line: index images into Qdrant, inspect, export, and serve the explorer.

    python app.py index PATH --collection NAME [--model MODEL] [--labels FILE] [--limit N] [--engine local|ray]
                        [--precision auto|fp32|bf16] [--reembed]
    python app.py index PATH --collection NAME --embeddings FILE [--paths CSV]   # vectors you already have
    python app.py index PATH --collection NAME --model M2 --add-vector [NAME2]  # a second model's named vector
    python app.py index PATH --collection NAME --embeddings FILE --add-vector NAME2
    python app.py info --collection NAME
    python app.py export --collection NAME [FILTERS] --format csv|jsonl|coco|yolo|imagefolder|paths --out PATH
    python app.py tag --collection NAME --add TAG | --remove TAG [FILTERS]
    python app.py delete --collection NAME FILTERS [--yes]
    python app.py subset --collection NAME save S [FILTERS] | list | rename OLD NEW | delete S
    python app.py compare --collection NAME A B
    python app.py compare-models --collection NAME [A B] [--json]   # two embedding models of its points
    python app.py push --collection NAME --url URL [--api-key K] [--target-collection NAME2]
    python app.py analyze --collection NAME [--clusters leiden|hdbscan-map|none] [--cluster-resolution R]
    python app.py predictions --collection NAME FILE [--name RUN] [--labels FILE]
    python app.py evaluate --collection NAME-objects [--name RUN] [FILTERS] [--iou 0.5] [--confidence C] [--json]
    python app.py missing-labels --collection NAME-objects [--name RUN] [--k 10] [--top N] [--out CSV] [--accept R..]
    python app.py badly-placed --collection NAME-objects [--name RUN] [--top N] [--out CSV] [--accept ID ...]
    python app.py predictions --collection NAME FILE
    python app.py select-next --collection NAME --budget N [--strategy S] [--tag T] [--balance class|cluster]
                        [--out DIR] [FILTERS but --tag]
    python app.py labels --collection NAME FILE      # labels back from annotators (CSV, JSON Lines, Label Studio)
    python app.py rounds --collection NAME [--json]
    python app.py serve --collection NAME [--port 7860] [--map-points N] [--map-thumbnails N]
    python app.py demo [--full]
    python app.py                      # the explorer, configured by the environment (Spaces)

FILTERS: --tag T, --tag-all T, --tag-none T, --label L, --subset S, --range FIELD:LOW:HIGH,
--ids-file FILE, --include-excluded (points tagged `excluded` are left out by default).

Store: QDRANT_URL (+ QDRANT_API_KEY) for a Qdrant server, else the embedded engine under
QDRANT_PATH (default ./data/qdrant). This file only parses arguments and wires the parts.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, ContextManager

DEFAULT_COLLECTION = "fashion-mnist"
DEMO_DIR = Path(os.environ.get("EMBEDSCAPE_DEMO_DIR", "./data/demo/fashion-mnist"))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is None:
        args = build_parser().parse_args(["serve"])
    from export import ExportError
    from filters import SelectionError
    from indexer.models import ModelLoadError
    from indexer.sources import SourceError
    from store import StoreError
    from store.schema import InvalidTag

    try:
        return int(args.handler(args) or 0)
    except (SourceError, StoreError, ModelLoadError, ExportError, SelectionError, InvalidTag,
            FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    from detection.geometry import CONTEXT_MARGIN

    parser = argparse.ArgumentParser(prog="app.py", description="Map, explore and tag image embeddings in Qdrant.")
    parser.add_argument("--qdrant-path", help="embedded store folder (env QDRANT_PATH, default ./data/qdrant)")
    parser.add_argument("--qdrant-url", help="Qdrant server URL (env QDRANT_URL); overrides --qdrant-path")
    parser.add_argument("--qdrant-api-key", help="Qdrant API key (env QDRANT_API_KEY)")
    commands = parser.add_subparsers(dest="command")

    index = commands.add_parser("index", help="embed a folder of images into a collection and build its map")
    index.add_argument("path", help="dataset folder (ImageFolder layout, or with --labels; with --embeddings, the "
                                    "folder the file's paths are relative to)")
    index.add_argument("--collection", required=True)
    index.add_argument("--model", default=None, help="sentence-transformers name or folder, or mobilenet-v2 "
                                                      "(default clip-ViT-B-32; needs the network once)")
    index.add_argument("--labels", type=Path, help="CSV / JSON Lines (path,label[,split]); or boxes: COCO JSON, "
                                                   "YOLO data.yaml, or a folder of Pascal VOC XML")
    index.add_argument("--limit", type=positive_int, help="index only the first N images (sorted by path)")
    index.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    index.add_argument("--runtime", default="auto", choices=["auto", "openvino", "onnxruntime", "torch"],
                       help="how mobilenet-v2 runs on the CPU (auto: OpenVINO, else onnxruntime, else torch)")
    index.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                       help="arithmetic inside the model. bf16: mobilenet-v2 through OpenVINO on a CPU with native "
                            "bfloat16, about 2x faster, vectors within cosine 0.99 of fp32. auto: the collection's "
                            "recorded precision, or for a new one bf16 where native, else fp32")
    index.add_argument("--reembed", action="store_true",
                       help="embed every image again (after changing --model or --precision); tags, labels set in "
                            "the app, subsets and predictions are kept")
    index.add_argument("--batch-size", type=positive_int, default=32)
    index.add_argument("--workers", type=positive_int, default=2, help="decode threads")
    index.add_argument("--neighbours", type=positive_int, default=15, help="k of the saved neighbour graph")
    index.add_argument("--seed", type=int, default=0, help="UMAP seed (same seed, same map)")
    index.add_argument("--no-image-metrics", action="store_true",
                       help="skip brightness / contrast / sharpness / colourfulness / size metrics")
    index.add_argument("--crop-margin", type=crop_margin, default=CONTEXT_MARGIN,
                       help="context around each box's crop, a share of the box's width / height per side "
                            f"(default {CONTEXT_MARGIN})")
    index.add_argument("--crop", choices=["box", "mask"], default="box", dest="crop_mode",
                       help="what a box is embedded from: its crop (default), or its crop with the background "
                            "outside its mask blanked (boxes without a mask: their crop)")
    index.add_argument("--no-objects", action="store_true",
                       help="with boxes in --labels: skip the object collection NAME-objects (one point per box)")
    _add_scale_arguments(index)
    index.set_defaults(handler=cmd_index)

    info = commands.add_parser("info", help="what a collection holds")
    info.add_argument("--collection", required=True)
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(handler=cmd_info)

    _add_action_commands(commands)

    analyze = commands.add_parser("analyze", help="score mislabels, outliers, duplicates and image metrics")
    analyze.add_argument("--collection", required=True)
    analyze.add_argument("-k", "--neighbours", type=int, default=10, help="neighbours per point (default 10)")
    analyze.add_argument("--clusters", choices=["leiden", "hdbscan-map", "none"], default="leiden",
                         help="how to find clusters: leiden on the kNN graph (default), hdbscan-map on the map")
    analyze.add_argument("--cluster-resolution", type=float, default=1.0,
                         help="leiden: higher gives more, smaller clusters (default 1.0)")
    analyze.add_argument("--vector", default="default", metavar="NAME",
                         help="score with this vector's neighbours and probe (a model added with --add-vector; "
                              "default: the collection's own)")
    analyze.set_defaults(handler=cmd_analyze)

    _add_compare_models_command(commands)

    predictions = commands.add_parser("predictions", help="import a model's predictions: a classifier's (CSV or "
                                                          "JSON Lines), or a detector's boxes on NAME-objects")
    predictions.add_argument("--collection", required=True)
    predictions.add_argument("file", type=Path, help="CSV / JSON Lines; boxes: COCO results JSON, a folder of YOLO "
                                                     "prediction .txt files, or CSV / JSON Lines with bbox and score")
    predictions.add_argument("--name", help="detector runs: the run's name (default: the file's name); "
                                            "importing a run again replaces it")
    predictions.add_argument("--labels", type=Path, help="COCO results: the instances JSON whose image ids they use "
                                                         "(default: the labels file the collection was indexed from)")
    predictions.set_defaults(handler=cmd_predictions)
    _add_evaluate_command(commands)

    _add_loop_commands(commands)
    _add_serve_command(commands)

    demo = commands.add_parser("demo", help="build the Fashion-MNIST demo collection (then `serve`)")
    demo.add_argument("--full", action="store_true", default=os.environ.get("EMBEDSCAPE_DEMO_FULL") == "1",
                      help="all 70,000 images instead of the 10,000 test images (env EMBEDSCAPE_DEMO_FULL=1)")
    demo.add_argument("--collection", default=DEFAULT_COLLECTION)
    demo.add_argument("--serve", action="store_true", help="start the explorer when done")
    demo.add_argument("--port", type=int, default=7860)
    demo.set_defaults(handler=cmd_demo)
    return parser


def _add_compare_models_command(commands: Any) -> None:
    """compare-models: two vectors (embedding models) of one collection (scoring/model_compare.py)."""
    models = commands.add_parser("compare-models", help="compare two vectors (embedding models) of the collection: "
                                                         "neighbour overlap per point, fit to the labels, verdict")
    models.add_argument("--collection", required=True)
    models.add_argument("vectors", nargs="*", metavar="A B",
                        help="the two vectors ('default' is the unnamed one); left out: the collection's only two")
    models.add_argument("-k", "--neighbours", type=positive_int, default=10, help="neighbours per point (default 10)")
    models.add_argument("--worst", type=int, default=10, help="list this many most different points (default 10)")
    models.add_argument("--json", action="store_true", help="machine-readable output")
    models.set_defaults(handler=cmd_compare_models)


def _add_evaluate_command(commands: Any) -> None:
    from filters.cli import add_filter_arguments

    evaluate = commands.add_parser("evaluate", help="COCO metrics of a detector run on NAME-objects, on the images "
                                                    "of the matching boxes")
    evaluate.add_argument("--collection", required=True)
    evaluate.add_argument("--name", help="the run (default: the last one imported)")
    evaluate.add_argument("--iou", type=float, default=0.5, help="IoU threshold of the counts, the confusion matrix "
                                                                 "and the outcomes (default 0.5)")
    evaluate.add_argument("--confidence", type=float, default=0.0, help="count predictions scoring at least this")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output (torchmetrics' key names)")
    evaluate.add_argument("--by-metric", action="store_true",
                          help="also recall and false-positive rate in bins of each box metric, the metric that "
                               "best separates found from missed boxes first")
    add_filter_arguments(evaluate)
    evaluate.set_defaults(handler=cmd_evaluate)

    missing = commands.add_parser("missing-labels", help="rank a detector run's unexplained predictions by how much "
                                                         "they look like labelled objects of their class")
    missing.add_argument("--collection", required=True)
    missing.add_argument("--name", help="the run (default: the last one imported)")
    missing.add_argument("--k", type=positive_int, default=10, help="labelled neighbours per crop (default 10)")
    missing.add_argument("--top", type=int, default=20, help="print this many (default 20)")
    missing.add_argument("--out", type=Path, help="write every candidate, best first, to this CSV")
    missing.add_argument("--accept", type=positive_int, nargs="+", metavar="RANK",
                         help="add these places of the saved ranking (1 = first) as labelled boxes")
    missing.set_defaults(handler=cmd_missing_labels)

    placed = commands.add_parser("badly-placed", help="labelled boxes a detector run saw off their place (a same-class "
                                                      "prediction at IoU 0.1-0.5), most confident first")
    placed.add_argument("--collection", required=True)
    placed.add_argument("--name", help="the run (default: the last one imported)")
    placed.add_argument("--top", type=int, default=20, help="print this many (default 20)")
    placed.add_argument("--out", type=Path, help="write them all to this CSV")
    placed.add_argument("--accept", nargs="+", metavar="ID", help="move these boxes (point ids) onto the prediction")
    placed.add_argument("--spurious", action="store_true",
                        help="instead: boxes no prediction overlaps although the detector finds most of their "
                             "look-alikes (possibly spurious), by mislabel score")
    placed.set_defaults(handler=cmd_badly_placed)
def _add_loop_commands(commands: Any) -> None:
    """select-next, labels, rounds: the labelling loop (labelling/, analysis/selection/)."""
    from analysis.selection import DEFAULT_STRATEGY, STRATEGIES
    from filters.cli import add_filter_arguments

    select = commands.add_parser("select-next", help="choose the next images to label, tag them, write the "
                                                     "annotators' files")
    select.add_argument("--collection", required=True)
    select.add_argument("--budget", required=True, type=positive_int, help="how many to choose")
    select.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=list(STRATEGIES),
                        help=f"how to choose (default {DEFAULT_STRATEGY}, the benchmark's best)")
    select.add_argument("--tag", dest="batch_tag", metavar="T",
                        help="tag for the batch (default batch-<round>); filter by tag with --tag-all / --tag-none")
    select.add_argument("--balance", choices=["class", "cluster"], help="share the batch evenly over predicted "
                                                                        "classes or clusters")
    select.add_argument("--seed", type=int, default=0)
    select.add_argument("--run", metavar="RUN", help="uncertain-boxes: the detector run (default: the current one)")
    select.add_argument("--threshold", type=float, default=0.5,
                        help="uncertain-boxes: the confidence threshold box uncertainty peaks at (default 0.5)")
    select.add_argument("--out", type=Path, metavar="DIR", help="write the batch's files for annotators here: "
                                                               "CSV, Label Studio tasks, COCO, YOLO image list")
    add_filter_arguments(select, tag_flag=False)
    select.set_defaults(handler=cmd_select_next)

    labels = commands.add_parser("labels", help="write labels from annotators onto the points they name "
                                                "(CSV / JSON Lines: path or id, label; or a Label Studio export)")
    labels.add_argument("--collection", required=True)
    labels.add_argument("file", type=Path)
    labels.set_defaults(handler=cmd_labels)

    rounds = commands.add_parser("rounds", help="the labelling rounds and the probe's accuracy per round")
    rounds.add_argument("--collection", required=True)
    rounds.add_argument("--json", action="store_true")
    rounds.set_defaults(handler=cmd_rounds)


def _add_serve_command(commands: Any) -> None:
    serve = commands.add_parser("serve", help="start the explorer web app")
    serve.add_argument("--collection", default=os.environ.get("EMBEDSCAPE_COLLECTION", DEFAULT_COLLECTION))
    serve.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    serve.add_argument("--map-points", type=int, default=None,
                       help="most points the map draws as points; a view with more is a density image "
                            "(env EMBEDSCAPE_MAP_POINTS, default 200000)")
    serve.add_argument("--map-thumbnails", type=int, default=None,
                       help="up to this many points in view are drawn as their thumbnails; 0: never "
                            "(env EMBEDSCAPE_MAP_THUMBNAILS, default 300)")
    serve.set_defaults(handler=cmd_serve)


def _add_scale_arguments(index: argparse.ArgumentParser) -> None:
    """index: --no-analyze, the Ray engine, and vectors from a file instead of a model."""
    index.add_argument("--no-analyze", action="store_true",
                       help="skip the mislabel / outlier / duplicate scores (run `analyze` later)")
    index.add_argument("--engine", default="local", choices=["local", "ray"],
                       help="where images are decoded and embedded: this process, or a Ray cluster "
                            "(env RAY_ADDRESS; a local Ray instance when unset; needs `pip install 'ray[data]'`)")
    index.add_argument("--ray-actors", type=positive_int, help="Ray: embedding actors (default: one per GPU, "
                                                               "or one per --workers CPUs of the cluster)")
    group = index.add_argument_group("vectors you already have (no model is loaded, no image opened)")
    group.add_argument("--embeddings", type=Path, metavar="FILE",
                       help="Parquet file or folder (path, embedding, optional label, split, extra columns), or "
                            ".npy matrix with --paths; --model then names the vectors' model (recorded)")
    group.add_argument("--paths", type=Path, metavar="CSV", help=".npy: CSV of the rows' paths (path[,label,split,"
                                                                 "...]) in the same order (default: FILE.csv)")
    group.add_argument("--embedding-column", metavar="NAME", help="Parquet: the vector column (default: embedding "
                                                                  "or vector, else the only list column)")
    group.add_argument("--allow-missing-files", action="store_true",
                       help="keep rows whose path names no file in PATH (the app then shows no image for them)")
    group.add_argument("--rejects", type=Path, metavar="CSV", help="write every unusable row (row,path,reason) here")
    index.add_argument("--add-vector", nargs="?", const="", metavar="NAME2",
                       help="add a named vector (default: the model's name) to every point of the existing "
                            "collection, from --model or --embeddings; ids, labels, tags and reviews stay")


def _add_action_commands(commands: Any) -> None:
    """export, tag, delete, subset, compare, push: the actions on filtered points (export/, actions/,
    subsets/, store/), all taking the filter flags of filters/cli.py."""
    from export.formats import FORMATS
    from filters.cli import add_filter_arguments

    export = commands.add_parser("export", help="write the matching points to a file or an image folder")
    export.add_argument("--collection", required=True)
    export.add_argument("--format", default="csv", choices=FORMATS)
    export.add_argument("--out", required=True, type=Path, help="file (a folder for imagefolder and yolo)")
    export.add_argument("--link", default="copy", choices=["copy", "symlink"],
                        help="imagefolder, yolo: copy or symlink the images")
    add_filter_arguments(export)
    export.set_defaults(handler=cmd_export)

    tag = commands.add_parser("tag", help="add or remove a tag on the matching points")
    tag.add_argument("--collection", required=True)
    change = tag.add_mutually_exclusive_group(required=True)
    change.add_argument("--add", metavar="TAG")
    change.add_argument("--remove", metavar="TAG")
    add_filter_arguments(tag)
    tag.set_defaults(handler=cmd_tag)

    delete = commands.add_parser("delete", help="delete the matching points from the collection (asks first)")
    delete.add_argument("--collection", required=True)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_filter_arguments(delete)
    delete.set_defaults(handler=cmd_delete)

    subset = commands.add_parser("subset", help="save, list, rename or delete named subsets")
    subset.add_argument("--collection", required=True)
    actions = subset.add_subparsers(dest="subset_action", required=True)
    save = actions.add_parser("save", help="save the matching points as subset NAME")
    save.add_argument("name")
    save.add_argument("--replace", action="store_true", help="replace an existing subset of that name")
    add_filter_arguments(save)
    actions.add_parser("list", help="subsets and their sizes").add_argument("--json", action="store_true")
    rename = actions.add_parser("rename", help="rename subset OLD to NEW")
    rename.add_argument("old")
    rename.add_argument("new")
    actions.add_parser("delete", help="forget subset NAME (its points stay)").add_argument("name")
    subset.set_defaults(handler=cmd_subset)

    compare = commands.add_parser("compare", help="compare two saved subsets (classes, KS test per score)")
    compare.add_argument("--collection", required=True)
    compare.add_argument("a")
    compare.add_argument("b")
    compare.add_argument("--include-excluded", action="store_true")
    compare.add_argument("--split", action="store_true", help="A and B are splits (e.g. train test), not subsets")
    compare.set_defaults(handler=cmd_compare)

    push = commands.add_parser("push", help="copy a collection (vectors, payloads, metadata, artifacts) to a "
                                            "Qdrant server")
    push.add_argument("--collection", required=True)
    push.add_argument("--url", help="the server, e.g. http://localhost:6333")
    push.add_argument("--api-key")
    push.add_argument("--target-collection", help="name on the server (default: the same)")
    push.add_argument("--overwrite", action="store_true", help="replace the target collection if it exists")
    push.add_argument("--batch-size", type=int, default=256)
    push.add_argument("--local-path", help=argparse.SUPPRESS)  # qdrant-client local mode (tests)
    push.set_defaults(handler=cmd_push)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (0 workers or a 0 batch would fail mid-run)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def crop_margin(text: str) -> float:
    """argparse type: a share between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (a share of the box's size), not {value}")
    return value


def open_configured_store(args: argparse.Namespace) -> Any:
    from store import open_store

    return open_store(path=args.qdrant_path, url=args.qdrant_url, api_key=args.qdrant_api_key)


def configured_store(args: argparse.Namespace) -> ContextManager[Any]:
    """The store the flags (or QDRANT_URL / QDRANT_PATH) name, closed when the command ends."""
    from store import opened_store

    return opened_store(path=args.qdrant_path, url=args.qdrant_url, api_key=args.qdrant_api_key)


def cmd_index(args: argparse.Namespace) -> int:
    from indexer.models import DEFAULT_MODEL
    from indexer.pipeline import IndexOptions
    from indexer.projection import ProjectionConfig
    from scoring.indexing import index_and_analyze

    if args.add_vector is not None:
        return _add_vector(args)
    with configured_store(args) as store:
        if args.embeddings is not None:
            model = args.model or _file_vectors_model(store, args.collection) or f"embeddings:{args.embeddings.name}"
        else:
            model = args.model or _collection_model(store, args.collection) or DEFAULT_MODEL
        options = IndexOptions(collection=args.collection, model=model, labels_file=args.labels, limit=args.limit,
                               device=args.device, runtime=args.runtime, precision=args.precision,
                               reembed=args.reembed, batch_size=args.batch_size, workers=args.workers,
                               neighbours=args.neighbours, projection=ProjectionConfig(seed=args.seed), image_metrics=not args.no_image_metrics,
                               analyze=not args.no_analyze, engine=args.engine, ray_actors=args.ray_actors,
                               objects=not args.no_objects, crop_margin=args.crop_margin,
                               crop_mode=args.crop_mode)
        report = _index_embeddings(args, store, options) if args.embeddings else index_and_analyze(args.path, store,
                                                                                                    options)
    if report is None:
        return 2
    for skipped in report.skipped[:20]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    if len(report.skipped) > 20:
        print(f"... and {len(report.skipped) - 20} more skipped files", file=sys.stderr)
    for problem in report.problems[:20]:
        print(f"note: {problem}", file=sys.stderr)
    if len(report.problems) > 20:
        print(f"... and {len(report.problems) - 20} more notes", file=sys.stderr)
    if report.objects:
        _print_object_notes(report.objects)
    print(report.summary())
    if report.quality:
        print(report.quality)
    if report.objects and report.objects.quality:
        print(f"{report.objects.collection}: {report.objects.quality}")
    print(f"report: {report.report_file}")
    return 0 if report.total_points else 1


def _print_object_notes(objects: Any) -> None:
    """Skipped and clipped boxes (the index report holds them all)."""
    lines = [f"box skipped: {s['path']} #{s['annotation_id']}: {s['reason']}" for s in objects.skipped]
    lines += [f"box clipped: {note}" for note in objects.clipped]
    for line in lines[:20]:
        print(line, file=sys.stderr)
    if len(lines) > 20:
        print(f"... and {len(lines) - 20} more skipped or clipped boxes", file=sys.stderr)


def _index_embeddings(args: argparse.Namespace, store: Any, options: Any) -> Any:
    """`index --embeddings`: None (after printing the unusable rows) when the file is refused."""
    from indexer.embeddings_file import EmbeddingsInput, EmbeddingsRejected
    from indexer.sources import SourceError
    from scoring.indexing import embeddings_and_analyze

    if args.labels is not None or args.engine != "local":
        raise SourceError("--embeddings reads labels from the file and embeds nothing: leave out --labels and "
                          "--engine")
    source = EmbeddingsInput(args.embeddings, args.paths, args.embedding_column, args.allow_missing_files,
                             args.rejects)
    try:
        return embeddings_and_analyze(args.path, store, options, source)
    except EmbeddingsRejected as rejected:
        for problem in rejected.problems[:20]:
            print(f"row {problem.row} ({problem.path}): {problem.reason}", file=sys.stderr)
        more = sum(rejected.counts.values()) - min(20, len(rejected.problems))
        if more > 0:
            print(f"... and {more} more rows" + ("" if args.rejects else " (--rejects FILE lists them all)"),
                  file=sys.stderr)
        print(f"error: {rejected}", file=sys.stderr)
        return None


def _add_vector(args: argparse.Namespace) -> int:
    """`index --add-vector`: a named vector of the existing points, from a model or a file."""
    from indexer.embeddings_file import EmbeddingsInput, EmbeddingsRejected
    from indexer.named_vectors import add_file_vector, add_model_vector, default_vector_name
    from indexer.pipeline import IndexOptions
    from indexer.projection import ProjectionConfig
    from indexer.sources import SourceError

    if args.embeddings is None and not args.model:
        raise SourceError("--add-vector needs the second model (--model M2) or its vectors (--embeddings FILE)")
    if args.labels is not None or args.reembed or args.engine != "local" or args.limit:
        raise SourceError("--add-vector adds a vector to the points the collection has, with their labels: leave "
                          "out --labels, --reembed, --limit and --engine")
    name = args.add_vector or default_vector_name(args.model or args.embeddings.stem)
    options = IndexOptions(collection=args.collection, model=args.model or "", device=args.device,
                           runtime=args.runtime, precision=args.precision, batch_size=args.batch_size,
                           workers=args.workers, neighbours=args.neighbours, projection=ProjectionConfig(seed=args.seed))
    try:
        with configured_store(args) as store:
            if args.embeddings is None:
                report = add_model_vector(args.path, store, options, name)
            else:
                source = EmbeddingsInput(args.embeddings, args.paths, args.embedding_column, args.allow_missing_files)
                report = add_file_vector(args.path, store, options, name, source)
    except EmbeddingsRejected as rejected:
        for problem in rejected.problems[:20]:
            print(f"row {problem.row} ({problem.path}): {problem.reason}", file=sys.stderr)
        print(f"error: {rejected}", file=sys.stderr)
        return 2
    for skipped in report.skipped[:20]:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    print(report.summary())
    return 0 if report.written or report.already else 1


def _collection_model(store: Any, name: str) -> str | None:
    from store.schema import MODEL

    return store.open(name).read_metadata().get(MODEL) if store.exists(name) else None


def _file_vectors_model(store: Any, name: str) -> str | None:
    """The model name of a collection whose vectors came from a file (`index --embeddings`);
    a collection of embedded images needs --model to say the file's vectors are that model's."""
    from store.schema import MODEL

    metadata = store.open(name).read_metadata() if store.exists(name) else {}
    return metadata.get(MODEL) if "vectors_from" in metadata else None


def cmd_info(args: argparse.Namespace) -> int:
    from store.schema import (COLLECTION_KIND, DEVICE, IMAGE_COLLECTION, IMAGES_KIND, MODEL, OBJECT_COLLECTION,
                              PRECISION, RUNTIME)
    from scoring.clusters import cluster_summaries

    with configured_store(args) as store:
        collection = store.open(args.collection)
        metadata = collection.read_metadata()
        info = {"collection": args.collection, "store": store.description, "points": collection.count(),
                **{key: metadata.get(key) for key in (MODEL, PRECISION, RUNTIME, DEVICE)},
                "dimension": metadata.get("dimension"),
                "source_root": metadata.get("source_root"), "indexed_at": metadata.get("indexed_at"),
                "labels": collection.label_counts(), "tags": collection.tag_counts(),
                "projection": metadata.get("projection"), "kind": metadata.get(COLLECTION_KIND, IMAGES_KIND),
                "linked": metadata.get(OBJECT_COLLECTION) or metadata.get(IMAGE_COLLECTION),
                "vectors": _vectors_info(collection, metadata), "clusters": cluster_summaries(collection),
                "split_leaks": _split_leaks(collection, metadata), "rounds": len(metadata.get("rounds") or [])}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key in ("collection", "kind", "store", "points", "model", "precision", "runtime", "device", "dimension",
                "source_root", "indexed_at"):
        print(f"{key:12} {'not recorded' if info[key] is None else info[key]}")
    if info["linked"]:
        print(f"{'boxes in' if info['kind'] == IMAGES_KIND else 'images in':12} {info['linked']}")
    for name, about in info["vectors"].items():
        precision = about.get("precision") or "precision not recorded"
        print(f"{'vector':12} {name or '(default)'}: {about.get('model')}, {precision}, {about.get('dimension')}-d, "
              f"{about.get('points')} points")
    print(f"{'labels':12} {len(info['labels'])}: " + ", ".join(f"{k} ({v})" for k, v in info["labels"].items()))
    print(f"{'tags':12} {len(info['tags'])}: " + ", ".join(f"{k} ({v})" for k, v in info["tags"].items()))
    clusters = ", ".join(f"{c['name']} ({c['size']})" for c in info["clusters"])
    print(f"{'clusters':12} {len(info['clusters'])}: {clusters}")
    labelled = sum(v for k, v in info["labels"].items() if k)
    print(f"{'labelled':12} {labelled} of {info['points']} ({info['points'] - labelled} unlabelled); "
          f"labelling rounds: {info['rounds']}")
    if info["split_leaks"] is not None:
        groups, points = info["split_leaks"]["groups"], info["split_leaks"]["points"]
        print(f"{'split leaks':12} {groups} near-duplicate groups across splits, {points} points "
              "(--range split_leak_group:0: selects them)")
    return 0


def _vectors_info(collection: Any, metadata: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every vector of the collection: "" (the default one) first, then the named ones."""
    from store.schema import MODEL, PRECISION, RUNTIME, DEVICE, VECTORS

    named = metadata.get(VECTORS, {})
    out = {"": {**{key: metadata.get(key) for key in (MODEL, PRECISION, RUNTIME, DEVICE)},
                "dimension": metadata.get("dimension"), "points": metadata.get("points")}}
    for name, dimension in collection.vector_names().items():
        out[name] = {"dimension": dimension, **named.get(name, {})}
    return out


def _split_leaks(collection: Any, metadata: dict[str, Any]) -> dict[str, int] | None:
    """Near-duplicate groups across splits and their points (None before `analyze`)."""
    from store import PointFilter
    from store.schema import SPLIT_LEAK_GROUP

    groups = (metadata.get("analysis") or {}).get("split_leak_groups")
    if groups is None:
        return None
    return {"groups": int(groups), "points": collection.count(PointFilter(ranges={SPLIT_LEAK_GROUP: (0, None)}))}


def cmd_analyze(args: argparse.Namespace) -> int:
    from analysis.clusters import ClusterConfig
    from detection.boxes import partner_name
    from scoring.analyze import analyze_collection
    from scoring.model_compare import checked_vector

    clusters = None if args.clusters == "none" else ClusterConfig(args.clusters, args.cluster_resolution)
    with configured_store(args) as store:
        collection = store.open(args.collection)
        other = partner_name(collection)   # a detection dataset: the images' object counts need both
        partner = store.open(other) if other and store.exists(other) else None
        summary = analyze_collection(collection, k=args.neighbours, clusters=clusters,
                                     vector=checked_vector(collection, args.vector), partner=partner)
    if summary.metrics_added:
        print(f"image metrics added to {summary.metrics_added} points")
    print(summary.summary())
    return 0


def cmd_compare_models(args: argparse.Namespace) -> int:
    from scoring.model_compare import compare_models, format_comparison

    if len(args.vectors) not in (0, 2):
        print("error: name two vectors (A B), or none when the collection has exactly two", file=sys.stderr)
        return 2
    with configured_store(args) as store:
        result = compare_models(store.open(args.collection), *(args.vectors or (None, None)), k=args.neighbours)
    table = result.as_dict()
    print(json.dumps(table, indent=2) if args.json else format_comparison(table, args.worst))
    return 0


def cmd_predictions(args: argparse.Namespace) -> int:
    from evaluation.readers import looks_like_detections
    from indexer.predictions import import_predictions

    if args.file.exists() and looks_like_detections(args.file):
        return _import_detections(args)
    with configured_store(args) as store:
        result = import_predictions(store.open(args.collection), args.file)
    return _report_import(result)


def _report_import(result: Any) -> int:
    """A per-point import's report (`predictions`, `labels`): the first unusable rows on stderr,
    the summary; non-zero when nothing was written."""
    for line in result.bad_rows[:20] + [f"unknown point: {p}" for p in result.unknown_points[:20]]:
        print(line, file=sys.stderr)
    print(result.summary())
    return 0 if result.written else 1


def _import_detections(args: argparse.Namespace) -> int:
    """`predictions` with a detector's boxes: save the run, then match it and write the outcomes."""
    from detection.boxes import is_object_collection
    from evaluation.evaluate import evaluate_run, write_outcomes
    from evaluation.prediction_points import delete_prediction_points
    from evaluation.readers import DetectionsRejected, import_detections

    with configured_store(args) as store:
        objects = store.open(args.collection)
        if not is_object_collection(objects):
            print(f"error: '{args.collection}' holds images, not boxes: import a detector's boxes into its object "
                  f"collection ({args.collection}-objects)", file=sys.stderr)
            return 2
        images = _partner(store, objects)
        try:
            result = import_detections(objects, images, args.file, args.name, args.labels)
        except DetectionsRejected as rejected:
            for where, reason in rejected.problems[:20]:
                print(f"{where}: {reason}", file=sys.stderr)
            raise
        delete_prediction_points(objects)  # the false positives on the map were an earlier run's
        result.boxes_scored = write_outcomes(objects, evaluate_run(objects, images, result.run))
    print(result.summary())
    return 0


def _partner(store: Any, objects: Any) -> Any:
    from detection.boxes import partner_name

    name = partner_name(objects)
    return store.open(name) if name and store.exists(name) else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from detection.boxes import is_object_collection
    from evaluation.evaluate import evaluate_run
    from evaluation.report import format_report
    from filters import matching_ids
    from filters.cli import spec_from_args

    if not 0 < args.iou < 1 or not 0 <= args.confidence <= 1:
        print("error: --iou must be in (0, 1) and --confidence in [0, 1]", file=sys.stderr)
        return 2
    with configured_store(args) as store:
        objects = store.open(args.collection)
        if not is_object_collection(objects):
            print(f"error: '{args.collection}' holds images; evaluate its boxes: --collection "
                  f"{args.collection}-objects", file=sys.stderr)
            return 2
        evaluation = evaluate_run(objects, _partner(store, objects), args.name, args.iou)
        spec = spec_from_args(args)
        images = None if spec.is_empty() else evaluation.images_of(matching_ids(objects, spec))
        report = evaluation.report(images, args.confidence)
        table = None
        if args.by_metric:
            from evaluation.failures import box_metric_columns, failures

            table = failures(evaluation, box_metric_columns(objects, evaluation), images, args.confidence)
    if args.json:
        from evaluation.failures import failures_json

        print(json.dumps({**report, **({"by_metric": failures_json(table)} if table is not None else {})}, indent=2))
        return 0
    print(format_report(report))
    if table is not None:
        from evaluation.report import format_failures

        print(format_failures(table))
    return 0


def cmd_missing_labels(args: argparse.Namespace) -> int:
    from evaluation.evaluate import evaluate_run
    from evaluation.missing_labels import save_missing_labels, score_missing_labels, write_candidates
    from evaluation.prediction_points import write_prediction_points

    with configured_store(args) as store:
        objects = store.open(args.collection)
        images = _partner(store, objects)
        evaluation = evaluate_run(objects, images, args.name)
        embedder = _collection_embedder(objects)
        if args.accept:
            return _accept_missing_labels(args, objects, images, evaluation, embedder)
        result = score_missing_labels(objects, images, evaluation, embedder, k=args.k)
        save_missing_labels(objects, evaluation.run.name, result)
        rows = write_candidates(objects, images, evaluation, result, args.out)
        points, _ = write_prediction_points(objects, images, evaluation, embedder, result)
    for line in result.skipped[:20]:
        print(f"skipped {line}", file=sys.stderr)
    print(f"run {evaluation.run.name}: {len(rows)} likely missing labels ranked"
          + (f", written to {args.out}" if args.out else "")
          + f"; {points} false positives drawn on the map (source: prediction)")
    for row in rows[:args.top]:
        print(f"{row['missing_label_score']:.3f}  {row['label']:16} score {row['score']:.3f}  {row['path']}  "
              f"{row['bbox']}")
    return 0


def _accept_missing_labels(args: argparse.Namespace, objects: Any, images: Any, evaluation: Any, embedder: Any) -> int:
    from evaluation.accept import accept_missing_labels, without_ranks
    from evaluation.evaluate import evaluate_run, write_outcomes
    from evaluation.missing_labels import load_missing_labels, save_missing_labels
    from evaluation.prediction_points import drop_prediction_points

    ranking = load_missing_labels(objects, evaluation.run.name)
    if ranking is None:
        print(f"error: no missing-label ranking of run '{evaluation.run.name}' yet: run `missing-labels` without "
              "--accept first", file=sys.stderr)
        return 2
    added = accept_missing_labels(objects, images, evaluation, ranking, args.accept, embedder)
    drop_prediction_points(objects, evaluation.run.name, [int(ranking.predictions[r - 1]) for r in args.accept])
    save_missing_labels(objects, evaluation.run.name, without_ranks(ranking, args.accept))
    write_outcomes(objects, evaluate_run(objects, images, evaluation.run.name))
    print(f"added {len(added)} labelled boxes to {objects.name} (source: added; review.missing_label: accepted); "
          "the ranking's later places moved up")
    return 0


def cmd_badly_placed(args: argparse.Namespace) -> int:
    import csv

    from evaluation.accept import badly_placed, move_badly_placed, spurious_boxes
    from evaluation.evaluate import evaluate_run, write_outcomes

    with configured_store(args) as store:
        objects = store.open(args.collection)
        images = _partner(store, objects)
        evaluation = evaluate_run(objects, images, args.name)
        if args.accept:
            moved = move_badly_placed(objects, images, evaluation, args.accept, _collection_embedder(objects))
            write_outcomes(objects, evaluate_run(objects, images, evaluation.run.name))
            print(f"moved {moved} boxes onto the predictions of run {evaluation.run.name} (old boxes in original_bbox)")
            return 0
        if args.spurious:
            return _print_spurious(spurious_boxes(objects, evaluation), args)
        rows = badly_placed(evaluation)
    if args.out:
        with args.out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "label", "bbox", "predicted_bbox", "score", "iou",
                                                        "prediction"])
            writer.writeheader()
            writer.writerows({**r, "bbox": json.dumps(r["bbox"]), "predicted_bbox": json.dumps(r["predicted_bbox"])}
                             for r in rows)
    print(f"run {evaluation.run.name}: {len(rows)} badly placed boxes" + (f", written to {args.out}" if args.out else ""))
    for r in rows[:args.top]:
        print(f"{r['id']}  {r['label']:16} score {r['score']:.3f}  IoU {r['iou']:.2f}  {r['bbox']} -> "
              f"{r['predicted_bbox']}")
    return 0


def _print_spurious(rows: list[dict[str, Any]], args: argparse.Namespace) -> int:
    import csv

    if args.out:
        with args.out.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "label", "bbox", "neighbours_found", "mislabel_score"])
            writer.writeheader()
            writer.writerows({**r, "bbox": json.dumps(r["bbox"])} for r in rows)
    print(f"{len(rows)} possibly spurious boxes" + (f", written to {args.out}" if args.out else ""))
    for r in rows[:args.top]:
        score = "-" if r["mislabel_score"] is None else f"{r['mislabel_score']:.3f}"
        print(f"{r['id']}  {r['label']:16} mislabel {score}  look-alikes found {r['neighbours_found']:.0%}  {r['bbox']}")
    return 0


def _collection_embedder(objects: Any) -> Any:
    from evaluation.missing_labels import collection_embedder

    return collection_embedder(objects)


def cmd_select_next(args: argparse.Namespace) -> int:
    from filters.cli import spec_from_args
    from labelling import SelectRequest, select_next
    from labelling.batch_files import write_batch_files
    from labelling.detector import DetectorSource

    request = SelectRequest(budget=args.budget, strategy=args.strategy, tag=args.batch_tag,
                            spec=spec_from_args(args), balance=args.balance, seed=args.seed, run=args.run,
                            threshold=args.threshold)
    with configured_store(args) as store:
        collection, objects = _images_and_objects(store, args.collection, args.strategy)
        result = select_next(collection, request, objects=objects)
        boxes_from = DetectorSource(objects, result.run, args.threshold) if objects is not None and result.run \
            else None
        files = write_batch_files(collection, result.ids, result.tag, args.out, boxes_from) if args.out else []
    print(result.summary())
    for path in files:
        print(f"wrote {path}")
    return 0


def _images_and_objects(store: Any, name: str, strategy: str) -> tuple[Any, Any]:
    """The collection to choose in and, for a detection dataset, its object collection. A
    strategy that reads a detector run chooses images: NAME or NAME-objects given, NAME's images
    and NAME-objects' run; any other chooses among the points of the collection given."""
    from analysis.selection import USES_RUN
    from detection.boxes import is_object_collection, partner_name

    collection = store.open(name)
    partner = partner_name(collection)
    if partner is None or not store.exists(partner) or (strategy not in USES_RUN and is_object_collection(collection)):
        return collection, None
    other = store.open(partner)
    return (other, collection) if is_object_collection(collection) else (collection, other)


def cmd_labels(args: argparse.Namespace) -> int:
    from indexer.labels_import import import_labels

    with configured_store(args) as store:
        result = import_labels(store.open(args.collection), args.file)
    return _report_import(result)


def cmd_rounds(args: argparse.Namespace) -> int:
    from labelling import rounds_report

    with configured_store(args) as store:
        report = rounds_report(store.open(args.collection))
    if args.json:
        print(json.dumps({"rounds": report.rounds, "now": report.now}, indent=2))
    else:
        print("\n".join(report.lines()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from export import export_points
    from filters.cli import spec_from_args

    with configured_store(args) as store:
        collection = store.open(args.collection)
        flt = spec_from_args(args).resolve(collection)
        result = export_points(collection, args.format, args.out, flt, link=args.link)
    for path in result.missing[:20]:
        print(f"missing image: {path}", file=sys.stderr)
    print(result.summary())
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from actions.tagging import tag_matching
    from filters.cli import spec_from_args

    with configured_store(args) as store:
        matched, changed = tag_matching(store.open(args.collection), spec_from_args(args), args.add, args.remove)
    verb = f"added tag '{args.add}' to" if args.add else f"removed tag '{args.remove}' from"
    print(f"{verb} {changed} of {matched} matching points in {args.collection}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from actions.deletion import delete_points
    from filters import matching_ids
    from filters.cli import spec_from_args

    spec = spec_from_args(args)
    if spec.is_empty():
        print("error: give a filter (e.g. --tag excluded); delete never removes a whole collection",
              file=sys.stderr)
        return 2
    with configured_store(args) as store:
        collection = store.open(args.collection)
        ids = matching_ids(collection, spec)
        if not args.yes:
            if not sys.stdin or not sys.stdin.isatty():
                print(f"error: refusing to delete {len(ids)} points from {args.collection} without confirmation "
                      "(standard input is not a terminal); pass --yes", file=sys.stderr)
                return 2
            if input(f"Delete {len(ids)} points from {args.collection}? [y/N] ").strip().lower() not in ("y", "yes"):
                print("nothing deleted")
                return 1
        deleted = delete_points(collection, ids)
    print(f"deleted {deleted} points from {args.collection}")
    return 0


def cmd_subset(args: argparse.Namespace) -> int:
    from filters import matching_ids
    from filters.cli import spec_from_args
    from subsets.saved import delete_subset, list_subsets, rename_subset, save_subset, validate_subset_name

    for name in (getattr(args, "name", None), getattr(args, "old", None), getattr(args, "new", None)):
        if name is not None:
            validate_subset_name(name)
    with configured_store(args) as store:
        collection = store.open(args.collection)
        if args.subset_action == "save":
            spec = spec_from_args(args)
            size = save_subset(collection, args.name, matching_ids(collection, spec), description=spec.describe(),
                               replace=args.replace)
            print(f"saved subset '{args.name}': {size} points")
        elif args.subset_action == "rename":
            size = rename_subset(collection, args.old, args.new)
            print(f"renamed subset '{args.old}' to '{args.new}' ({size} points)")
        elif args.subset_action == "delete":
            print(f"deleted subset '{args.name}' ({delete_subset(collection, args.name)} points keep their data)")
        else:
            subsets = list_subsets(collection)
            if args.json:
                print(json.dumps({n: vars(info) for n, info in subsets.items()}, indent=2))
            elif not subsets:
                print(f"no subsets in {args.collection}", file=sys.stderr)
            for info in () if args.json else subsets.values():
                print(f"{info.name}\t{info.count}\t{info.created_at or ''}\t{info.description}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from subsets.compare import compare_saved_subsets, compare_splits, format_comparison

    with configured_store(args) as store:
        compare = compare_splits if args.split else compare_saved_subsets
        result = compare(store.open(args.collection), args.a, args.b, args.include_excluded)
    print(format_comparison(result, args.a, args.b))
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from imaging.progress import progress_bar
    from store.push import open_target_store, push_collection

    with configured_store(args) as store:
        source = store.open(args.collection)
        target = open_target_store(url=args.url, api_key=args.api_key, local_path=args.local_path)
        try:
            report = push_collection(source, target, args.target_collection, overwrite=args.overwrite,
                                     batch=args.batch_size, progress=progress_bar)
        finally:
            target.close()
    print(report.summary())
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from deploy.auth import AuthConfigError, parse_auth
    from ui.first_page import FirstPage

    try:
        auth = parse_auth()  # APP_AUTH=user:password or APP_AUTH_FILE: login required
    except AuthConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    store = open_configured_store(args)
    if args.collection == DEFAULT_COLLECTION and os.environ.get("EMBEDSCAPE_DEMO_ON_START", "1") != "0":
        from deploy.bootstrap import ensure_demo_collection, serve_instructions

        problem = ensure_demo_collection(store, args.collection, DEMO_DIR)  # first start: a small demo
        if problem:
            serve_instructions(problem, args.host, args.port, auth)
            return 0
    images, objects = _explorer_collections(store, store.open(args.collection))
    try:  # the address answers at once, the explorer follows (ui/first_page.py)
        first_page = FirstPage.start(args.host, args.port, images, show_map=auth is None)
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    from ui.app import serve  # Gradio's import: after the first page answers

    metadata = images.read_metadata()
    text_encoder = _text_encoder(metadata) if metadata.get("has_text_encoder") else None
    serve(images, host=args.host, port=args.port, text_encoder=text_encoder, auth=auth, objects=objects,
          map_points=getattr(args, "map_points", None), map_thumbnails=getattr(args, "map_thumbnails", None),
          first_page=first_page)
    return 0


def _explorer_collections(store: Any, collection: Any) -> tuple[Any, Any]:
    """(image collection, its object collection or None): a detection dataset is served as both
    explorers, whichever of the two was named."""
    from detection.boxes import is_object_collection, partner_name

    partner = partner_name(collection)
    other = store.open(partner) if partner and store.exists(partner) else None
    if is_object_collection(collection):
        return (other, collection) if other is not None else (collection, None)
    return collection, other


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
