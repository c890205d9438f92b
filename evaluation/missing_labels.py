"""Likely missing labels: predictions that no labelled box explains, ranked by how much their crop
looks like the labelled objects of their class.

In real detection datasets the most common label error is a box nobody drew. A detector finds
such objects, but its confidence alone hardly tells them from its background false positives.
Here each candidate (a false positive on nothing labelled: reason background or badly placed)
is cut from its image with the collection's crop margin, embedded with the collection's own
model, and compared with its k nearest labelled boxes in Qdrant:

    missing_label_score = similarity-weighted share of those neighbours labelled with the
                          predicted class (0..1; the neighbours' vote, as analysis/mislabels.py
                          votes for a label)

A real object of class c sits among labelled c's; a patch of background sits among whatever
background-heavy crops are nearest, of any class. The scores are saved beside the run
(`detections/RUN.missing.npz`): prediction index -> score.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from analysis.detection_metrics import BACKGROUND, BADLY_PLACED
from detection.boxes import crop_margin
from detection.crops import cut_crop
from evaluation.evaluate import RunEvaluation
from evaluation.runs import RUNS_DIR, validate_run_name
from imaging.images import ImageSkipped, decode_image
from indexer.models import Embedder
from indexer.objects import model_input
from store import Collection, PointFilter
from store.schema import IMAGE_ID, LABEL, PATH

K = 10
BATCH = 32
CANDIDATE_REASONS = (BACKGROUND, BADLY_PLACED)


@dataclass(frozen=True)
class MissingLabels:
    """Candidates (prediction indices into the run) and their scores, best first; just after
    scoring, also their crops' vectors (row for row; not saved), which the map's prediction
    points reuse instead of embedding the crops again."""

    predictions: np.ndarray
    scores: np.ndarray
    skipped: list[str]
    vectors: np.ndarray | None = None


def candidates(evaluation: RunEvaluation) -> np.ndarray:
    """The predictions that no labelled box explains."""
    outcome = evaluation.outcomes()
    return np.flatnonzero(np.isin(outcome.dt_reason, CANDIDATE_REASONS))


def image_paths(objects: Collection, images: Collection | None) -> dict[str, str]:
    """Image point id -> dataset-relative path."""
    columns = objects.columns([IMAGE_ID, PATH])
    paths = {str(i): str(p) for i, p in zip(columns.values[IMAGE_ID], columns.values[PATH]) if i and p}
    if images is not None:
        more = images.columns([PATH])
        paths.update({str(i): str(p) for i, p in zip(more.ids, more.values[PATH]) if p})
    return paths


def score_missing_labels(objects: Collection, images: Collection | None, evaluation: RunEvaluation,
                         embedder: Embedder, k: int = K,
                         progress: Callable[[int, int], None] | None = None) -> MissingLabels:
    """Embed each candidate's crop and score it against its k nearest labelled boxes."""
    kept, vectors, skipped = embed_predictions(objects, images, evaluation, candidates(evaluation), embedder, progress)
    labelled = labelled_boxes(objects)
    scores = np.array([neighbour_vote(objects, v, str(evaluation.run.label[row]), k, labelled)
                       for row, v in zip(kept.tolist(), vectors)], np.float64)
    order = np.argsort(-scores, kind="stable")
    return MissingLabels(kept[order], scores[order], skipped, vectors[order])


def embed_predictions(objects: Collection, images: Collection | None, evaluation: RunEvaluation, rows: np.ndarray,
                      embedder: Embedder, progress: Callable[[int, int], None] | None = None,
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(the rows embedded, their crops' vectors, why the others were skipped), in `rows`' order."""
    root = Path(str((images or objects).read_metadata().get("source_root") or "."))
    paths = image_paths(objects, images)
    margin = crop_margin(objects)
    kept: list[int] = []
    vectors: list[np.ndarray] = []
    skipped: list[str] = []
    for start in range(0, len(rows), BATCH):
        batch, items = [], []
        for row in rows[start:start + BATCH].tolist():
            item = crop_input(root, paths.get(str(evaluation.run.image_id[row])), evaluation.run.bbox[row], margin,
                              embedder)
            if isinstance(item, str):
                skipped.append(f"prediction {row}: {item}")
                continue
            batch.append(row)
            items.append(item)
        if items:
            kept.extend(batch)
            vectors.extend(embedder.embed_batch(items))
        if progress:
            progress(min(start + BATCH, len(rows)), len(rows))
    dimension = objects.dimension
    return (np.asarray(kept, np.int64), np.asarray(vectors, np.float32).reshape(len(kept), -1 if kept else dimension),
            skipped)


def labelled_boxes(objects: Collection) -> PointFilter:
    """The labelled boxes (a detector's prediction points have no label): what a crop is compared with."""
    return PointFilter(labels=sorted(objects.label_counts()))


def crop_input(root: Path, path: str | None, bbox: np.ndarray, margin: float, embedder: Embedder) -> object:
    """The model's input for the box's crop, or why there is none."""
    if path is None:
        return "its image is not in the collection"
    try:
        decoded = decode_image(root / path)
    except ImageSkipped as error:
        return f"{path}: {error}"
    crop = cut_crop(decoded.image, tuple(float(v) for v in bbox), (decoded.width, decoded.height), margin)
    return model_input(crop, embedder)


def neighbour_vote(objects: Collection, vector: np.ndarray, label: str, k: int, labelled: PointFilter) -> float:
    """Similarity-weighted share of the k nearest labelled boxes labelled `label`."""
    hits = objects.search(vector, limit=k, flt=labelled, fields=[LABEL])
    weights = np.array([max(h.score or 0.0, 0.0) for h in hits])
    same = np.array([h.payload.get(LABEL) == label for h in hits], bool)
    return float(weights[same].sum() / weights.sum()) if weights.sum() > 0 else 0.0


def collection_embedder(objects: Collection) -> Embedder:
    """The model that made the collection's vectors, at the same precision and runtime."""
    from indexer.models import load_embedder
    from store.schema import MODEL, PRECISION, RUNTIME

    metadata = objects.read_metadata()
    return load_embedder(metadata.get(MODEL) or "mobilenet-v2", runtime=metadata.get(RUNTIME) or "auto",
                         precision=metadata.get(PRECISION) or "auto")


def _file(objects: Collection, run: str) -> Path:
    return Path(objects.artifact_dir) / RUNS_DIR / f"{validate_run_name(run)}.missing.npz"


def save_missing_labels(objects: Collection, run: str, result: MissingLabels) -> None:
    path = _file(objects, run)
    temporary = path.with_name(f".{path.stem}.{os.getpid()}.npz")
    np.savez(temporary, predictions=result.predictions, scores=result.scores)
    os.replace(temporary, path)


def load_missing_labels(objects: Collection, run: str) -> MissingLabels | None:
    path = _file(objects, run)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return MissingLabels(stored["predictions"], stored["scores"], [])


def write_candidates(objects: Collection, images: Collection | None, evaluation: RunEvaluation,
                     result: MissingLabels, out: Path | None = None) -> list[dict[str, object]]:
    """The ranked candidates as rows (path, label, bbox, score, reason, missing_label_score), and
    as a CSV at `out` when given."""
    paths = image_paths(objects, images)
    reasons = evaluation.outcomes().dt_reason
    run = evaluation.run
    rows = [{"path": paths.get(str(run.image_id[i]), ""), "label": str(run.label[i]),
             "bbox": json.dumps([round(float(v), 2) for v in run.bbox[i]]), "score": float(run.score[i]),
             "reason": str(reasons[i]), "missing_label_score": round(float(s), 6)}
            for i, s in zip(result.predictions.tolist(), result.scores.tolist())]
    if out is not None:
        with Path(out).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["path"])
            writer.writeheader()
            writer.writerows(rows)
    return rows
