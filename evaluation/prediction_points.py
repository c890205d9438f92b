"""A detector's false positives as points of the Objects map, beside the labelled boxes.

    written = write_prediction_points(objects, images, evaluation, embedder, ranking)

A false positive has no labelled box, so nothing on the map shows it. Here each false positive
of the run scoring at least `min_score` is cut from its image with the collection's crop margin,
embedded with the collection's own model (as a box is), and written as a point of NAME-objects:

    source: prediction, prediction_run, predicted_label, detection_score,
    detection_outcome: fp, detection_reason (duplicate / wrong_class / badly_placed / background),
    missing_label_score (a candidate the run's missing-label ranking scored), bbox, path, image_id,
    x / y: the similarity-weighted mean position of its 10 nearest labelled boxes

It has no `label`: label counts, `analyze`, the label review queue, the evaluation's ground
truth and the COCO / YOLO exports leave `source: prediction` points out. Writing a run's points
first deletes every prediction point of the collection (the map shows the current run), and a
re-import of any run deletes them (`delete_prediction_points`): they never describe a run that
is gone. Re-indexing drops them too (they are not in the labels file).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from detection.boxes import prediction_point_ids
from detection.geometry import area_and_aspect
from evaluation.accept import place_on_map
from evaluation.evaluate import RunEvaluation
from evaluation.missing_labels import MissingLabels, embed_predictions, image_paths
from indexer.models import Embedder
from store import Collection
from store.base import point_id
from store.schema import (
    AREA, ASPECT_RATIO, BBOX, DETECTION_OUTCOME, DETECTION_REASON, DETECTION_SCORE, IMAGE_ID, MISSING_LABEL_SCORE,
    PATH, PREDICTED_LABEL, PREDICTION_RUN, PREDICTION_SOURCE, SOURCE, TAGS, X, Y,
)

MIN_SCORE = 0.3  # the detail view draws predictions from this score on: the map shows the same ones
FIELDS = (SOURCE, PREDICTION_RUN, PREDICTED_LABEL, MISSING_LABEL_SCORE, DETECTION_OUTCOME, DETECTION_REASON,
          DETECTION_SCORE)  # indexed: the map colours and filters by them


def false_positives(evaluation: RunEvaluation, min_score: float = MIN_SCORE) -> np.ndarray:
    """The run's false positives scoring at least `min_score`, by descending score."""
    outcome = evaluation.outcomes()
    rows = np.flatnonzero((outcome.dt_outcome == "fp") & (evaluation.run.score >= min_score))
    return rows[np.argsort(-evaluation.run.score[rows], kind="stable")]


def prediction_point(run: str, row: int) -> str:
    """The stable id of a run's prediction point (a re-import writes the same ids)."""
    return point_id(f"prediction:{run}#{row}")


def delete_prediction_points(objects: Collection) -> int:
    """Remove every prediction point (before a run replaces them); returns how many."""
    ids = sorted(prediction_point_ids(objects))
    if ids:
        objects.delete(ids)
        objects.flush()
    return len(ids)


def drop_prediction_points(objects: Collection, run: str, rows: list[int]) -> None:
    """Remove the points of the run's predictions at `rows` (accepted as labelled boxes)."""
    objects.delete([prediction_point(run, row) for row in rows])
    objects.flush()


def write_prediction_points(objects: Collection, images: Collection | None, evaluation: RunEvaluation,
                            embedder: Embedder, ranking: MissingLabels | None = None, min_score: float = MIN_SCORE,
                            progress: Callable[[int, int], None] | None = None) -> tuple[int, list[str]]:
    """Replace the collection's prediction points by the run's false positives; returns (points
    written, why the others were skipped)."""
    delete_prediction_points(objects)
    scores = dict(zip(ranking.predictions.tolist(), ranking.scores.tolist())) if ranking is not None else {}
    known = ({} if ranking is None or ranking.vectors is None
             else dict(zip(ranking.predictions.tolist(), ranking.vectors)))
    return write_rows(objects, images, evaluation, false_positives(evaluation, min_score), embedder, scores, progress,
                      known)


def write_rows(objects: Collection, images: Collection | None, evaluation: RunEvaluation, rows: np.ndarray,
               embedder: Embedder, scores: dict[int, float], progress: Callable[[int, int], None] | None = None,
               known: dict[int, np.ndarray] | None = None) -> tuple[int, list[str]]:
    """Write (or write again: an undone accept) the points of the run's predictions at `rows`,
    with their missing-label scores where `scores` has them; `known`: vectors of crops already
    embedded (the ranking's), the other crops are embedded here."""
    known = known or {}
    rows = np.asarray(rows, np.int64)
    fresh = rows[[row not in known for row in rows.tolist()]] if len(rows) else rows
    embedded, new_vectors, skipped = embed_predictions(objects, images, evaluation, fresh, embedder, progress)
    vector_of = {**known, **dict(zip(embedded.tolist(), new_vectors))}
    kept = np.array([row for row in rows.tolist() if row in vector_of], np.int64)
    if not len(kept):
        return 0, skipped
    vectors = np.asarray([vector_of[row] for row in kept.tolist()], np.float32)
    paths = image_paths(objects, images)
    reasons = evaluation.outcomes().dt_reason
    payloads = [_payload(evaluation, row, paths, str(reasons[row]), scores.get(row), place_on_map(objects, vector))
                for row, vector in zip(kept.tolist(), vectors)]
    objects.upsert([prediction_point(evaluation.run.name, row) for row in kept.tolist()], vectors, payloads)
    objects.index_fields(FIELDS)
    objects.flush()
    return len(kept), skipped


def _payload(evaluation: RunEvaluation, row: int, paths: dict[str, str], reason: str, missing: float | None,
             xy: tuple[float, float]) -> dict[str, Any]:
    run = evaluation.run
    bbox = [float(v) for v in run.bbox[row]]
    area, aspect = area_and_aspect(tuple(bbox))
    image = str(run.image_id[row])
    return {PATH: paths.get(image, ""), IMAGE_ID: image, BBOX: bbox, AREA: float(area), ASPECT_RATIO: float(aspect),
            TAGS: [], X: xy[0], Y: xy[1], SOURCE: PREDICTION_SOURCE, PREDICTION_RUN: run.name,
            PREDICTED_LABEL: str(run.label[row]), DETECTION_SCORE: float(run.score[row]), DETECTION_OUTCOME: "fp",
            DETECTION_REASON: reason, MISSING_LABEL_SCORE: None if missing is None else float(missing)}
