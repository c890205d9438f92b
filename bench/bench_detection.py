"""Detection benchmark: boxes indexed as points, their mislabels found, against cleanlab Datalab.

    .venv/bin/pip install -r bench/requirements.txt
    .venv/bin/python bench/bench_detection.py [--canvases 800] [--seeds 5] [--margins 0,0.1,0.25]

Fixture (built once under bench/results/detection/, deterministic): Fashion-MNIST test items
(Debian's /usr/share/datasets/fashion-mnist, read as indexer/demo.py does) pasted, 3 to 6 per
canvas and scaled 1.5x to 3.5x, on 320x240 JPEG canvases with a smooth colour background;
their tight boxes written as COCO instances. About 3 % of canvases get a duplicate box (one
object boxed twice, IoU > 0.8, half with another class). Each seed flips 10 % of the boxes'
classes: half to a look-alike class (t-shirt <-> shirt, pullover <-> coat, sandal <-> sneaker,
...), half to a random other class.

Runs, all in this process, with mobilenet-v2 on the CPU:
- quality: `python app.py index`'s pipeline (index_dataset) over the canvases; for each seed
  the noisy classes are written into the object collection and `scoring.analyze` runs over it
  (the same code path as indexing); precision / recall / F1 of the boxes flagged `mislabel`
  and average precision of `mislabel_score`, against cleanlab's Datalab label issues
  (`find_issues(features=<the same crop vectors>, issue_types={"label": {"k": 10}})`,
  F1 of `is_label_issue`, AP of 1 - `label_score`). Medians over the seeds. Also per crop
  margin (0, 10 %, 25 %) and the duplicate-box flags against the injected duplicates.
- speed: on the first --timing-canvases canvases, three passes, --repeats times each:
  images only (--no-objects), images + boxes in one pass (decode once), and the baseline a
  user would script: every box read and decoded from its file, cropped and embedded. Images/s
  and the marginal cost of a box (combined minus images-only time, per box) vs the baseline's.

Prints Markdown and writes bench/results/detection.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detection.geometry import CONTEXT_MARGIN  # noqa: E402
from indexer.demo import CLASS_NAMES, load_split  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = RESULTS / "detection"
CANVAS = (320, 240)
K = 10
NOISE = 0.10
LOOKALIKE = {"t-shirt": "shirt", "shirt": "t-shirt", "pullover": "coat", "coat": "pullover", "dress": "coat",
             "trouser": "dress", "sandal": "sneaker", "sneaker": "sandal", "ankle-boot": "sneaker", "bag": "pullover"}


# ---------------------------------------------------------------- fixture


def background(rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) float: a smooth random colour field with a little grain."""
    coarse = Image.fromarray(rng.integers(20, 130, (4, 5, 3), dtype=np.uint8), "RGB")
    smooth = np.asarray(coarse.resize(CANVAS, Image.BICUBIC), np.float32)
    return smooth + rng.normal(0, 4, smooth.shape).astype(np.float32)


def place(rng: np.random.Generator, size: int, taken: list[tuple[int, int, int, int]]) -> tuple[int, int] | None:
    for _ in range(40):
        x, y = int(rng.integers(0, CANVAS[0] - size)), int(rng.integers(0, CANVAS[1] - size))
        if all(x + size + 4 <= a or a + c + 4 <= x or y + size + 4 <= b or b + d + 4 <= y for a, b, c, d in taken):
            return x, y
    return None


def build_fixture(folder: Path, canvases: int, seed: int = 0) -> dict:
    """Canvases of pasted items; returns {"boxes": [...], "duplicates": [...]}, each box
    {"id", "image", "bbox", "true"} (the true class; "given" too on a duplicate) and
    duplicates [(id, of_id), ...]."""
    marker = folder / "fixture.json"
    if marker.exists() and json.loads(marker.read_text())["canvases"] == canvases:
        return json.loads(marker.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    items, classes = load_split("test", folder / ".download")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    boxes: list[dict] = []
    duplicates: list[list[int]] = []
    used = 0
    for index in range(canvases):
        pixels = background(rng)
        taken: list[tuple[int, int, int, int]] = []
        name = f"canvas-{index:05d}.jpg"
        for _ in range(int(rng.integers(3, 7))):
            size = int(round(28 * rng.uniform(1.5, 3.5)))
            spot = place(rng, size, taken)
            if spot is None:
                continue
            item = order[used % len(order)]
            used += 1
            grey = np.asarray(Image.fromarray(items[item]).resize((size, size), Image.BILINEAR), np.float32)
            alpha = np.clip(grey / 255 * 1.6, 0, 1)[..., None]
            x, y = spot
            region = pixels[y:y + size, x:x + size]
            pixels[y:y + size, x:x + size] = region * (1 - alpha) + grey[..., None] * alpha
            rows, cols = np.nonzero(grey > 12)
            bbox = [x + int(cols.min()), y + int(rows.min()), int(cols.max() - cols.min() + 1),
                    int(rows.max() - rows.min() + 1)]
            taken.append((x, y, size, size))
            boxes.append({"id": len(boxes) + 1, "image": name, "bbox": bbox, "true": CLASS_NAMES[classes[item]]})
        if boxes and boxes[-1]["image"] == name and rng.random() < 0.03:
            original = boxes[-1]
            jitter = [v + float(rng.uniform(-0.04, 0.04)) * original["bbox"][2 + i % 2] for i, v in
                      enumerate(original["bbox"])]
            given = original["true"] if rng.random() < 0.5 else str(rng.choice(
                [c for c in CLASS_NAMES if c != original["true"]]))
            # The same object: its true class is the original's; a duplicate given another class
            # is also a label error, for both tools alike.
            boxes.append({"id": len(boxes) + 1, "image": name, "bbox": [round(v, 1) for v in jitter],
                          "true": original["true"], "given": given, "duplicate_of": original["id"]})
            duplicates.append([boxes[-1]["id"], original["id"]])
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(folder / "images" / name, quality=90)
    fixture = {"canvases": canvases, "boxes": boxes, "duplicates": duplicates}
    marker.write_text(json.dumps(fixture))
    return fixture


def noisy_labels(fixture: dict, seed: int, rate: float = NOISE) -> dict[int, str]:
    """annotation id -> class as annotated: `rate` of the boxes flipped, half to a look-alike,
    half to a random other class."""
    rng = np.random.default_rng(1000 + seed)
    boxes = fixture["boxes"]
    labels = {b["id"]: b.get("given", b["true"]) for b in boxes}
    flipped = rng.choice(len(boxes), int(round(rate * len(boxes))), replace=False)
    for position, index in enumerate(flipped):
        box = boxes[index]
        if position % 2 == 0:
            labels[box["id"]] = LOOKALIKE[box["true"]]
        else:
            labels[box["id"]] = str(rng.choice([c for c in CLASS_NAMES if c != box["true"]]))
    return labels


def write_coco(folder: Path, fixture: dict, labels: dict[int, str]) -> Path:
    names = sorted({b["image"] for b in fixture["boxes"]})
    image_id = {name: i for i, name in enumerate(names, start=1)}
    category = {name: i for i, name in enumerate(CLASS_NAMES, start=1)}
    document = {"images": [{"id": image_id[n], "file_name": n, "width": CANVAS[0], "height": CANVAS[1]} for n in names],
                "categories": [{"id": i, "name": n} for n, i in category.items()],
                "annotations": [{"id": b["id"], "image_id": image_id[b["image"]],
                                 "category_id": category[labels[b["id"]]], "bbox": b["bbox"],
                                 "area": b["bbox"][2] * b["bbox"][3], "iscrowd": 0} for b in fixture["boxes"]]}
    path = folder / "instances.json"
    path.write_text(json.dumps(document))
    return path


# ---------------------------------------------------------------- quality


def scores(truth: np.ndarray, flagged: np.ndarray, score: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import average_precision_score

    hits = int((flagged & truth).sum())
    precision = hits / max(int(flagged.sum()), 1)
    recall = hits / max(int(truth.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "ap": float(average_precision_score(truth, score)),
            "flagged": int(flagged.sum())}


def cleanlab_scores(labels: list[str], vectors: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    from cleanlab import Datalab

    lab = Datalab(data={"label": labels}, label_name="label", verbosity=0)
    lab.find_issues(features=vectors, issue_types={"label": {"k": K}})
    issues = lab.get_issues("label")
    return scores(truth, issues["is_label_issue"].to_numpy(bool), 1.0 - issues["label_score"].to_numpy())


def evaluate_seed(objects, fixture: dict, seed: int, with_cleanlab: bool) -> dict:
    """Write seed's noisy classes into the object collection, analyze it as indexing does, score."""
    from scoring.analyze import analyze_collection
    from store.schema import LABEL, MISLABEL_FLAG, MISLABEL_SCORE, ORIGINAL_LABEL, QUALITY_FLAGS

    labels = noisy_labels(fixture, seed)
    true = {b["id"]: b["true"] for b in fixture["boxes"]}
    columns = objects.columns(["annotation_id"])
    ids, annotation_ids = list(columns.ids), [int(a) for a in columns.values["annotation_id"]]
    objects.delete_payload_keys(ids, [ORIGINAL_LABEL])
    objects.set_payloads(ids, [{LABEL: labels[a]} for a in annotation_ids])
    started = time.perf_counter()
    analyze_collection(objects, k=K, add_metrics=False)
    analyze_s = time.perf_counter() - started
    point_ids, vectors = objects.vectors()
    payload = {r.id: r.payload for batch in objects.scroll(["annotation_id", QUALITY_FLAGS, MISLABEL_SCORE])
               for r in batch}
    order = [int(payload[p]["annotation_id"]) for p in point_ids]
    truth = np.array([labels[a] != true[a] for a in order])
    flagged = np.array([MISLABEL_FLAG in (payload[p][QUALITY_FLAGS] or []) for p in point_ids])
    ours = scores(truth, flagged, np.array([payload[p][MISLABEL_SCORE] for p in point_ids], float))
    result = {"seed": seed, "boxes": len(point_ids), "flips": int(truth.sum()), "ours": ours, "analyze_s": analyze_s}
    if with_cleanlab:
        started = time.perf_counter()
        result["cleanlab"] = cleanlab_scores([labels[a] for a in order], vectors, truth)
        result["cleanlab_s"] = time.perf_counter() - started
    return result


def duplicate_check(objects, fixture: dict) -> dict[str, float]:
    from store.schema import DUPLICATE_BOX_FLAG, QUALITY_FLAGS

    truth_ids = {i for pair in fixture["duplicates"] for i in pair}
    flagged = {int(r.payload["annotation_id"]) for batch in objects.scroll(["annotation_id", QUALITY_FLAGS])
               for r in batch if DUPLICATE_BOX_FLAG in (r.payload[QUALITY_FLAGS] or [])}
    hits = len(flagged & truth_ids)
    return {"injected_pairs": len(fixture["duplicates"]), "boxes_in_pairs": len(truth_ids), "flagged": len(flagged),
            "precision": hits / max(len(flagged), 1), "recall": hits / max(len(truth_ids), 1)}


def index_run(folder: Path, coco: Path, qdrant: Path, collection: str, embedder, **options):
    from indexer.pipeline import IndexOptions
    from scoring.indexing import index_and_analyze
    from store import open_store

    store = open_store(path=str(qdrant))
    try:
        return index_and_analyze(folder / "images", store, IndexOptions(collection, "mobilenet-v2", labels_file=coco,
                                                                     progress=False, **options), embedder)
    finally:
        store.close()


def quality(folder: Path, fixture: dict, embedder, seeds: int, margins: list[float]) -> dict:
    from store import open_store

    coco = write_coco(folder, fixture, noisy_labels(fixture, 0))
    qdrant = folder / "qdrant"
    shutil.rmtree(qdrant, ignore_errors=True)
    out: dict = {"margins": {}}
    for margin in margins:
        name = f"m{int(round(margin * 100))}"
        report = index_run(folder, coco, qdrant, name, embedder, crop_margin=margin)
        store = open_store(path=str(qdrant))
        try:
            objects = store.open(f"{name}-objects")
            main = margin == CONTEXT_MARGIN
            runs = [evaluate_seed(objects, fixture, seed, with_cleanlab=True) for seed in range(seeds if main else 1)]
            out["margins"][str(margin)] = {"runs": runs, "median": medians(runs), "boxes": report.objects.found}
            if main:
                out["duplicates"] = duplicate_check(objects, fixture)
                out["index"] = {"images": report.embedded, "boxes": report.objects.embedded,
                                "embed_s": report.embed_seconds, "images_per_s": report.images_per_second,
                                "objects_per_s": report.objects_per_second}
        finally:
            store.close()
        print(f"margin {margin}: {json.dumps(out['margins'][str(margin)]['median'])}", file=sys.stderr, flush=True)
    return out


def medians(runs: list[dict]) -> dict:
    result = {}
    for tool in ("ours", "cleanlab"):
        if all(tool in r for r in runs):
            result[tool] = {m: statistics.median(r[tool][m] for r in runs) for m in runs[0][tool]}
    return result


# ---------------------------------------------------------------- speed


def baseline_per_box(folder: Path, fixture: dict, canvases: set[str], embedder, batch: int = 32,
                     workers: int = 2) -> tuple[float, int]:
    """What a user would script: for every box, read and decode its image, crop, embed."""
    from detection.crops import cut_crop
    from imaging.images import decode_image
    from indexer.objects import model_input

    boxes = [b for b in fixture["boxes"] if b["image"] in canvases]

    def prepare(box: dict):
        decoded = decode_image(folder / "images" / box["image"])
        return model_input(cut_crop(decoded.image, tuple(box["bbox"]), (decoded.width, decoded.height)), embedder)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        pending: list = []
        for item in pool.map(prepare, boxes):
            pending.append(item)
            if len(pending) == batch:
                embedder.embed_batch(pending)
                pending = []
        if pending:
            embedder.embed_batch(pending)
    return time.perf_counter() - started, len(boxes)


def speed(folder: Path, fixture: dict, embedder, canvases: int, repeats: int) -> dict:
    names = sorted({b["image"] for b in fixture["boxes"]})[:canvases]
    subset = folder / "timing"
    if not subset.exists():
        (subset / "images").mkdir(parents=True)
        for name in names:
            os.link(folder / "images" / name, subset / "images" / name)
    coco = write_coco(subset, {"boxes": [b for b in fixture["boxes"] if b["image"] in names]},
                      noisy_labels(fixture, 0))
    runs = []
    for repeat in range(repeats):
        qdrant = subset / "qdrant"
        shutil.rmtree(qdrant, ignore_errors=True)
        images_only = index_run(subset, coco, qdrant, "images", embedder, objects=False, analyze=False)
        both = index_run(subset, coco, qdrant, "both", embedder, analyze=False)
        naive_s, naive_boxes = baseline_per_box(folder, fixture, set(names), embedder)
        run = {"images": images_only.embedded, "boxes": both.objects.embedded,
               "images_only_s": images_only.embed_seconds, "combined_s": both.embed_seconds,
               "baseline_boxes_s": naive_s}
        run["image_ms"] = 1000 * run["images_only_s"] / run["images"]
        run["box_ms_decode_once"] = 1000 * (run["combined_s"] - run["images_only_s"]) / run["boxes"]
        run["box_ms_baseline"] = 1000 * naive_s / naive_boxes
        runs.append(run)
        print(f"speed run {repeat + 1}: {json.dumps(run)}", file=sys.stderr, flush=True)
    keys = [k for k in runs[0] if k.endswith("_s") or k.endswith("_ms") or "_ms_" in k]
    median = {k: statistics.median(r[k] for r in runs) for k in keys}
    median["images_per_s"] = runs[0]["images"] / median["images_only_s"]
    median["objects_per_s_combined_pass"] = runs[0]["boxes"] / median["combined_s"]
    median["objects_per_s_marginal"] = 1000 / median["box_ms_decode_once"]
    median["objects_per_s_baseline"] = 1000 / median["box_ms_baseline"]
    return {"canvases": len(names), "images": runs[0]["images"], "boxes": runs[0]["boxes"], "runs": runs,
            "median": median}


# ---------------------------------------------------------------- report


def markdown(results: dict) -> str:
    q, s = results["quality"], results["speed"]
    main = q["margins"][str(CONTEXT_MARGIN)]
    lines = [f"{results['canvases']} canvases, {main['boxes']} boxes, {NOISE:.0%} flipped classes "
             f"(half look-alike, half random), k = {K}, medians of {len(main['runs'])} seeds", "",
             "| boxes' mislabels | precision | recall | F1 | AP |", "|---|---|---|---|---|"]
    for tool in ("ours", "cleanlab"):
        m = main["median"][tool]
        lines.append(f"| {tool} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['ap']:.3f} |")
    lines += ["", "| crop margin (seed 0) | ours F1 | ours AP | cleanlab F1 | cleanlab AP |", "|---|---|---|---|---|"]
    for margin, run in q["margins"].items():
        m = run["runs"][0]
        lines.append(f"| {float(margin):.0%} | {m['ours']['f1']:.3f} | {m['ours']['ap']:.3f} | "
                     f"{m['cleanlab']['f1']:.3f} | {m['cleanlab']['ap']:.3f} |")
    d = q["duplicates"]
    lines += ["", f"Duplicate boxes: {d['injected_pairs']} injected pairs; {d['flagged']} boxes flagged, precision "
              f"{d['precision']:.3f}, recall {d['recall']:.3f}", ""]
    m = s["median"]
    lines += [f"Speed, {s['canvases']} canvases ({s['images']} images, {s['boxes']} boxes), median of "
              f"{len(s['runs'])} runs:", "", "| pass | seconds | per item |", "|---|---|---|",
              f"| images only | {m['images_only_s']:.1f} | {m['image_ms']:.1f} ms/image "
              f"({m['images_per_s']:.1f} img/s) |",
              f"| images + boxes, decode once | {m['combined_s']:.1f} | {m['box_ms_decode_once']:.1f} ms/box marginal "
              f"({m['objects_per_s_marginal']:.1f} obj/s) |",
              f"| baseline: decode per box | {m['baseline_boxes_s']:.1f} | {m['box_ms_baseline']:.1f} ms/box "
              f"({m['objects_per_s_baseline']:.1f} obj/s) |",
              "", f"load average: {results['load_before']} before, {results['load_after']} after"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--canvases", type=int, default=800)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--margins", default="0,0.1,0.25")
    parser.add_argument("--timing-canvases", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "detection.json")
    args = parser.parse_args()
    from indexer.models import load_embedder

    load_before = [round(v, 2) for v in os.getloadavg()]
    fixture = build_fixture(WORK, args.canvases)
    embedder = load_embedder("mobilenet-v2", "cpu")
    embedder.embed_batch([np.zeros((224, 224, 3), np.uint8)])  # compile once, outside every timing
    margins = [float(m) for m in args.margins.split(",")]
    results = {"canvases": args.canvases, "noise": NOISE, "k": K, "runtime": getattr(embedder, "runtime", ""),
               "load_before": load_before,
               "quality": quality(WORK, fixture, embedder, args.seeds, margins)}
    results["speed"] = None if args.skip_speed else speed(WORK, fixture, embedder, args.timing_canvases, args.repeats)
    results["load_after"] = [round(v, 2) for v in os.getloadavg()]
    if results["speed"] is not None:
        print(markdown(results))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
