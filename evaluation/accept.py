"""Accept a detector's evidence about the labels: add a missing label, or move a badly placed box.

    added = accept_missing_labels(objects, images, evaluation, ranks=[1, 2, 5], embedder)

`ranks` are 1-based places in the run's saved missing-label ranking (`missing-labels` prints
and writes them). Each accepted box becomes a point of NAME-objects like an indexed box: its
crop embedded with the collection's model and crop margin, placed on the map at the
similarity-weighted mean of its 10 nearest boxes, `label` the predicted class, a new
`annotation_id` (past every existing one, so COCO exports keep ids unique), `source: added`
(re-indexing keeps it although the labels file does not have it) and the decision in
`review.missing_label` (run, prediction, scores, time). Exports then carry it as a label.

    moved = move_badly_placed(objects, images, evaluation, point_ids, embedder)

moves each labelled box whose `detection_reason` is badly_placed onto its nearest same-class
prediction: `bbox` becomes the prediction's, the old one is kept in `original_bbox`, the crop
is embedded again (the vector follows the box), and `review.badly_placed` records the run,
the prediction, its score and IoU.

    spurious_boxes(objects, evaluation)

lists the labelled boxes the detector saw nothing at (`unseen`) while it finds most of their
look-alikes: candidates for a box drawn on nothing.
"""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from analysis.detection_metrics import BADLY_PLACED
from detection.boxes import crop_margin
from detection.geometry import area_and_aspect
from evaluation.evaluate import RunEvaluation, lookalikes_found
from evaluation.missing_labels import MissingLabels, crop_input, image_paths, labelled_boxes
from indexer.models import Embedder
from indexer.objects import object_point_id
from review.detection import SPURIOUS_MIN_FOUND
from store import Collection, StoreError
from store.schema import (
    ADDED_SOURCE, ANNOTATION_ID, AREA, ASPECT_RATIO, BBOX, HEIGHT, IMAGE_HEIGHT, IMAGE_ID, IMAGE_WIDTH, LABEL, LABELS,
    MISLABEL_SCORE, ORIGINAL_BBOX, PATH, REVIEW, SOURCE, TAGS, WIDTH, X, Y,
)

ISSUE = "missing_label"
PLACEMENT_NEIGHBOURS = 10


def accept_missing_labels(objects: Collection, images: Collection | None, evaluation: RunEvaluation,
                          ranking: MissingLabels, ranks: Sequence[int], embedder: Embedder) -> list[str]:
    """Add the ranked predictions at `ranks` as labelled boxes; returns their new point ids."""
    bad = [r for r in ranks if not 1 <= r <= len(ranking.predictions)]
    if bad:
        raise StoreError(f"ranks {bad} are not in the ranking (1..{len(ranking.predictions)})")
    root = Path(str((images or objects).read_metadata().get("source_root") or "."))
    paths, sizes = image_paths(objects, images), _image_sizes(objects, images)
    next_id = _next_annotation_id(objects)
    ids, vectors, payloads = [], [], []
    for rank in dict.fromkeys(ranks):
        row = int(ranking.predictions[rank - 1])
        image = str(evaluation.run.image_id[row])
        item = crop_input(root, paths.get(image), evaluation.run.bbox[row], crop_margin(objects), embedder)
        if isinstance(item, str):
            raise StoreError(f"rank {rank}: {item}")
        vector = embedder.embed_batch([item])[0]
        ids.append(object_point_id(paths[image], next_id))
        vectors.append(vector)
        payloads.append(_payload(objects, evaluation, row, image, paths[image], sizes.get(image), next_id, vector,
                                 float(ranking.scores[rank - 1])))
        next_id += 1
    objects.upsert(ids, np.asarray(vectors, np.float32), payloads)
    objects.flush()
    return ids


def without_ranks(ranking: MissingLabels, ranks: Sequence[int]) -> MissingLabels:
    """The ranking less the accepted places (the later ones move up)."""
    keep = np.ones(len(ranking.predictions), bool)
    keep[[r - 1 for r in ranks]] = False
    return MissingLabels(ranking.predictions[keep], ranking.scores[keep], [])


def _payload(objects: Collection, evaluation: RunEvaluation, row: int, image: str, path: str,
             size: tuple[int, int] | None, annotation_id: int, vector: np.ndarray, score: float) -> dict[str, Any]:
    bbox = [float(v) for v in evaluation.run.bbox[row]]
    label = str(evaluation.run.label[row])
    area, aspect = area_and_aspect(tuple(bbox))
    x, y = place_on_map(objects, vector)
    width, height = size or (0, 0)
    decision = {"decision": "accepted", "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "run": evaluation.run.name, "prediction": row, "score": float(evaluation.run.score[row]),
                "missing_label_score": score, "label": label}
    return {PATH: path, IMAGE_ID: image, ANNOTATION_ID: annotation_id, BBOX: bbox, LABEL: label, LABELS: [label],
            TAGS: [], IMAGE_WIDTH: width, IMAGE_HEIGHT: height, AREA: float(area), ASPECT_RATIO: float(aspect),
            X: x, Y: y, SOURCE: ADDED_SOURCE, REVIEW: {ISSUE: decision}}


def place_on_map(objects: Collection, vector: np.ndarray) -> tuple[float, float]:
    """The similarity-weighted mean map position of the nearest boxes."""
    hits = objects.search(vector, limit=PLACEMENT_NEIGHBOURS, flt=labelled_boxes(objects),
                          fields=[X, Y])
    hits = [h for h in hits if isinstance(h.payload.get(X), (int, float)) and isinstance(h.payload.get(Y), (int, float))]
    if not hits:
        return 0.0, 0.0
    weights = np.array([max(h.score or 0.0, 1e-6) for h in hits])
    xs = np.array([h.payload[X] for h in hits], np.float64)
    ys = np.array([h.payload[Y] for h in hits], np.float64)
    return float(weights @ xs / weights.sum()), float(weights @ ys / weights.sum())


def _image_sizes(objects: Collection, images: Collection | None) -> dict[str, tuple[int, int]]:
    columns = objects.columns([IMAGE_ID, IMAGE_WIDTH, IMAGE_HEIGHT])
    sizes = {str(i): (int(w), int(h)) for i, w, h in zip(columns.values[IMAGE_ID], columns.values[IMAGE_WIDTH],
                                                         columns.values[IMAGE_HEIGHT]) if i and w and h}
    if images is not None:
        more = images.columns([WIDTH, HEIGHT])
        sizes.update({str(i): (int(w), int(h)) for i, w, h in zip(more.ids, more.values[WIDTH], more.values[HEIGHT])
                      if w and h})
    return sizes


def _next_annotation_id(objects: Collection) -> int:
    values = [v for v in objects.columns([ANNOTATION_ID]).values[ANNOTATION_ID] if isinstance(v, (int, float))]
    return int(max(values, default=0)) + 1


def badly_placed(evaluation: RunEvaluation) -> list[dict[str, Any]]:
    """The labelled boxes missed with a same-class prediction overlapping at IoU 0.1-threshold,
    most confident prediction first: (point id, label, bbox, the prediction's bbox, score, IoU)."""
    outcome = evaluation.outcomes()
    rows = np.flatnonzero(outcome.gt_reason == BADLY_PLACED)
    rows = rows[np.argsort(-outcome.gt_score[rows], kind="stable")]
    run = evaluation.run
    return [{"id": str(evaluation.gt_ids[j]), "label": str(run.label[outcome.gt_near[j]]),
             "bbox": [round(float(v), 2) for v in evaluation.data.gt_bbox[j]],
             "predicted_bbox": [round(float(v), 2) for v in run.bbox[outcome.gt_near[j]]],
             "score": float(outcome.gt_score[j]), "iou": float(outcome.gt_iou[j]),
             "prediction": int(outcome.gt_near[j])} for j in rows.tolist()]


def move_badly_placed(objects: Collection, images: Collection | None, evaluation: RunEvaluation,
                      point_ids: Sequence[str], embedder: Embedder) -> int:
    """Move the given badly placed boxes onto their nearest same-class prediction."""
    candidates = {row["id"]: row for row in badly_placed(evaluation)}
    unknown = [pid for pid in point_ids if pid not in candidates]
    if unknown:
        raise StoreError(f"not badly placed boxes of run '{evaluation.run.name}': {', '.join(unknown[:5])}")
    root = Path(str((images or objects).read_metadata().get("source_root") or "."))
    records = {r.id: r for r in objects.retrieve(list(point_ids), None, with_vectors=False)}
    ids, vectors, payloads = [], [], []
    for pid in dict.fromkeys(point_ids):
        row, payload = candidates[pid], dict(records[pid].payload)
        item = crop_input(root, payload.get(PATH), np.asarray(row["predicted_bbox"]), crop_margin(objects), embedder)
        if isinstance(item, str):
            raise StoreError(f"{pid}: {item}")
        area, aspect = area_and_aspect(tuple(row["predicted_bbox"]))
        decision = {"decision": "accepted", "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "run": evaluation.run.name, "prediction": row["prediction"], "score": row["score"],
                    "iou": row["iou"], "previous": payload.get(BBOX)}
        payload.update({ORIGINAL_BBOX: payload.get(ORIGINAL_BBOX) or payload.get(BBOX), BBOX: row["predicted_bbox"],
                        AREA: float(area), ASPECT_RATIO: float(aspect),
                        REVIEW: {**(payload.get(REVIEW) or {}), BADLY_PLACED: decision}})
        ids.append(pid)
        vectors.append(embedder.embed_batch([item])[0])
        payloads.append(payload)
    objects.upsert(ids, np.asarray(vectors, np.float32), payloads)
    objects.flush()
    return len(ids)


def spurious_boxes(objects: Collection, evaluation: RunEvaluation, k: int = 10) -> list[dict[str, Any]]:
    """Labelled boxes no prediction of any class overlaps (`unseen`) although the detector finds
    most of their look-alikes: the share of their k nearest labelled boxes (by their own
    vectors) that it found (evaluate.lookalikes_found). Ranked by the mislabel score where
    `analyze` left one, then that share."""
    shares = lookalikes_found(objects, evaluation, k)
    rows = []
    for record in objects.retrieve(list(shares), [LABEL, BBOX, MISLABEL_SCORE]):
        rows.append({"id": record.id, "label": str(record.payload.get(LABEL, "")), "bbox": record.payload.get(BBOX),
                     "neighbours_found": shares[record.id], "mislabel_score": record.payload.get(MISLABEL_SCORE)})
    rows = [r for r in rows if r["neighbours_found"] >= SPURIOUS_MIN_FOUND]
    return sorted(rows, key=lambda r: (-(r["mislabel_score"] or 0.0), -r["neighbours_found"], r["id"]))
