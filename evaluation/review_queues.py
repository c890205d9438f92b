"""A detector run's three review queues beside the label-quality ones, and the edits their
decisions make, each with an exact undo.

    missing_label   a prediction no labelled box explains, ranked by its crop's neighbours among
                    the labelled boxes (`missing-labels`' saved ranking); accept: the predicted
                    box becomes a labelled box of NAME-objects (evaluation/accept.py, `source:
                    added`, the decision in `review.missing_label` of the new point)
    badly_placed    a labelled box the run missed while a same-class prediction overlaps it at
                    IoU 0.1-0.5, most confident first; accept: the box moves onto the prediction
                    (`original_bbox` keeps the old one, `review.badly_placed` the decision)
    spurious        a labelled box no prediction of any class overlaps while the detector finds
                    at least half of its look-alikes, by mislabel score; accept: the box is
                    excluded (tag `excluded`, as the outlier queue's E: exports leave it out)
                    and `review.spurious` records it

    queues = DetectorQueues(objects)                 # the active run, matched now
    queues.items("badly_placed")                     # QueueItems (review/queue.py), best first
    added = accept_missing_label(objects, queues.evaluation, row, embedder)
    undo_missing_label(objects, added, embedder)     # the box deleted, the prediction ranked again

After every edit the run is matched again and its outcomes written (`detection_outcome`, ...),
as the command line's `--accept` does. The spurious queue's tag goes through the caller (the
app's PointTable, so the map sees it); `record_decision` / `forget_decision` write the record.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from evaluation.accept import accept_missing_labels, badly_placed, move_badly_placed, spurious_boxes
from evaluation.evaluate import RunEvaluation, evaluate_run, write_outcomes
from evaluation.missing_labels import (
    MissingLabels, candidates, crop_input, labelled_boxes, load_missing_labels, save_missing_labels,
)
from evaluation.prediction_points import MIN_SCORE, drop_prediction_points, prediction_point, write_rows
from detection.boxes import crop_margin
from detection.geometry import area_and_aspect
from indexer.models import Embedder
from review.decisions import ACCEPTED, EXCLUDED, PENDING, entry_of, merged_review
from review.detection import BADLY_PLACED, DETECTOR_ISSUES, MISSING_LABEL, SPURIOUS
from review.queue import QueueItem, QueueReads, order
from store import Collection, StoreError
from store.schema import AREA, ASPECT_RATIO, BBOX, EXCLUDED_TAG, IMAGE_ID, LABEL, ORIGINAL_BBOX, PATH, REVIEW, SOURCE, TAGS

NEIGHBOURS = 10


@dataclass(frozen=True)
class Evidence:
    """What a card shows beside the item: the picture (/boxes/ of this point id: an image's,
    with its labelled boxes solid and the run's predictions dashed; a box's, that box red), the
    labelled box and the prediction (x, y, w, h; None where there is none), the detector's
    score, their IoU, the share of look-alikes found (spurious) and the point whose vector
    finds the neighbours (None: none to show)."""

    picture: str
    bbox: list[float] | None
    predicted: list[float] | None
    detector_score: float | None
    iou: float | None
    found_share: float | None
    vector_point: str | None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class DetectorQueues(QueueReads):
    """The three queues of the collection's active run, read once (a new one after every edit).
    Items are built per issue on first use: the spurious one searches each unseen box's
    neighbours."""

    def __init__(self, objects: Collection, run: str | None = None) -> None:
        self.objects = objects
        self.evaluation = evaluate_run(objects, None, run)
        self.run = self.evaluation.run.name
        self._items: dict[str, list[QueueItem]] = {}
        self._evidence: dict[tuple[str, str], Evidence] = {}
        self._decided = self._decisions()

    def _decisions(self) -> dict[str, dict[str, dict[str, Any]]]:
        """issue -> point id -> payload of the points holding this run's decision on it."""
        found: dict[str, dict[str, dict[str, Any]]] = {issue: {} for issue in DETECTOR_ISSUES}
        for batch in self.objects.scroll([REVIEW, BBOX, PATH, LABEL, IMAGE_ID, ORIGINAL_BBOX]):
            for record in batch:
                for issue in DETECTOR_ISSUES:
                    entry = entry_of(record.payload, issue)
                    if entry is not None and entry.get("run") == self.run:
                        found[issue][record.id] = dict(record.payload)
        return found

    # --- reading ------------------------------------------------------------------------
    def items(self, issue: str) -> list[QueueItem]:
        if issue not in self._items:
            build = {MISSING_LABEL: self._missing, BADLY_PLACED: self._placed, SPURIOUS: self._spurious}[issue]
            self._items[issue] = build()
        return self._items[issue]

    def entry(self, issue: str, point: str) -> dict[str, Any] | None:
        payload = self._decided[issue].get(point)
        return entry_of(payload, issue) if payload else None

    def evidence(self, issue: str, key: str) -> Evidence | None:
        self.items(issue)
        return self._evidence.get((issue, key))

    def _missing(self) -> list[QueueItem]:
        run, ranking = self.evaluation.run, load_missing_labels(self.objects, self.run)
        unexplained = set(candidates(self.evaluation).tolist())  # a box moved onto one explains it now
        items = []
        for row, score in zip(*(([], []) if ranking is None else (ranking.predictions.tolist(),
                                                                   ranking.scores.tolist()))):
            if row not in unexplained:
                continue
            point = prediction_point(self.run, row)
            items.append(QueueItem(str(row), MISSING_LABEL, (point,), str(run.label[row]), "", float(score),
                                   float(run.score[row]), True, PENDING))
            self._evidence[(MISSING_LABEL, str(row))] = Evidence(
                str(run.image_id[row]), None, [float(v) for v in run.bbox[row]], float(run.score[row]), None, None, point)
        for point, payload in self._decided[MISSING_LABEL].items():
            entry = entry_of(payload, MISSING_LABEL) or {}
            key = str(entry.get("prediction"))
            items.append(QueueItem(key, MISSING_LABEL, (point,), str(payload.get(LABEL) or ""), "",
                                   float(entry.get("missing_label_score") or 0.0), float(entry.get("score") or 0.0),
                                   True, str(entry["decision"])))
            self._evidence[(MISSING_LABEL, key)] = Evidence(str(payload.get(IMAGE_ID) or point), payload.get(BBOX),
                                                            payload.get(BBOX),
                                                            entry.get("score"), None, None, point)
        return order(items)

    def _placed(self) -> list[QueueItem]:
        items = []
        for row in badly_placed(self.evaluation):
            items.append(QueueItem(row["id"], BADLY_PLACED, (row["id"],), row["label"], "", row["score"], row["iou"],
                                   True, PENDING))
            self._evidence[(BADLY_PLACED, row["id"])] = Evidence(row["id"], row["bbox"], row["predicted_bbox"],
                                                                 row["score"], row["iou"], None, None)
        for point, payload in self._decided[BADLY_PLACED].items():
            entry = entry_of(payload, BADLY_PLACED) or {}
            items.append(QueueItem(point, BADLY_PLACED, (point,), str(payload.get(LABEL) or ""), "",
                                   float(entry.get("score") or 0.0), float(entry.get("iou") or 0.0), True,
                                   str(entry["decision"])))
            self._evidence[(BADLY_PLACED, point)] = Evidence(point, entry.get("previous"), payload.get(BBOX),
                                                             entry.get("score"), entry.get("iou"), None, None)
        return order(items)

    def _spurious(self) -> list[QueueItem]:
        items = []
        decided = self._decided[SPURIOUS]
        for row in spurious_boxes(self.objects, self.evaluation, NEIGHBOURS):
            entry = entry_of(decided.get(row["id"], {}), SPURIOUS)
            score = row["mislabel_score"] if isinstance(row["mislabel_score"], (int, float)) else 0.0
            items.append(QueueItem(row["id"], SPURIOUS, (row["id"],), row["label"], "", float(score),
                                   row["neighbours_found"], True, str(entry["decision"]) if entry else PENDING))
            self._evidence[(SPURIOUS, row["id"])] = Evidence(row["id"], row["bbox"], None, None, None,
                                                             row["neighbours_found"], row["id"])
        return order(items)

    def neighbours(self, issue: str, key: str) -> list[tuple[str, float, bool]]:
        """(point id, cosine similarity, found by the run) of the nearest labelled boxes to the
        card's crop: the evidence behind a missing-label score or a spurious box's look-alikes."""
        evidence = self.evidence(issue, key)
        if evidence is None or evidence.vector_point is None:
            return []
        records = self.objects.retrieve([evidence.vector_point], [], with_vectors=True)
        if not records or records[0].vector is None:
            return []
        found = dict(zip(self.evaluation.gt_ids.tolist(), (self.evaluation.outcomes().gt_outcome == "tp").tolist()))
        hits = self.objects.search(records[0].vector, limit=NEIGHBOURS + 1, flt=labelled_boxes(self.objects), fields=[])
        return [(h.id, float(h.score or 0.0), bool(found.get(h.id, False)))
                for h in hits if h.id != evidence.vector_point][:NEIGHBOURS]


# --- the edits, each with its undo ------------------------------------------------------------
def _rematch(objects: Collection, run: str) -> RunEvaluation:
    evaluation = evaluate_run(objects, None, run)
    write_outcomes(objects, evaluation)
    return evaluation


def accept_missing_label(objects: Collection, evaluation: RunEvaluation, row: int, embedder: Embedder) -> str:
    """Add the run's prediction `row` (a place of the saved ranking) as a labelled box; returns
    its new point id. The ranking loses it, its prediction point goes (a labelled box now)."""
    ranking = load_missing_labels(objects, evaluation.run.name)
    places = [] if ranking is None else np.flatnonzero(ranking.predictions == row).tolist()
    if ranking is None or not places:
        raise StoreError(f"prediction {row} is not in the missing-label ranking of run '{evaluation.run.name}'")
    rank = int(places[0]) + 1
    added = accept_missing_labels(objects, None, evaluation, ranking, [rank], embedder)[0]
    remaining = np.ones(len(ranking.predictions), bool)
    remaining[rank - 1] = False
    save_missing_labels(objects, evaluation.run.name,
                        MissingLabels(ranking.predictions[remaining], ranking.scores[remaining], []))
    drop_prediction_points(objects, evaluation.run.name, [row])
    _rematch(objects, evaluation.run.name)
    return added


def undo_missing_label(objects: Collection, point: str, embedder: Embedder) -> int:
    """Delete a box added by `accept_missing_label`; its prediction is ranked again (at its
    score) and, a false positive again, drawn on the map again. Returns the prediction row."""
    records = objects.retrieve([point], [REVIEW, SOURCE])
    entry = entry_of(records[0].payload, MISSING_LABEL) if records else None
    if entry is None:
        raise StoreError(f"{point} is not a box accepted as a missing label")
    run, row, score = str(entry["run"]), int(entry["prediction"]), float(entry.get("missing_label_score") or 0.0)
    objects.delete([point])
    objects.flush()
    evaluation = _rematch(objects, run)
    ranking = load_missing_labels(objects, run) or MissingLabels(np.zeros(0, np.int64), np.zeros(0), [])
    predictions, scores = np.append(ranking.predictions, row), np.append(ranking.scores, score)
    ranked = np.argsort(-scores, kind="stable")
    save_missing_labels(objects, run, MissingLabels(predictions[ranked], scores[ranked], []))
    if evaluation.run.score[row] >= MIN_SCORE:  # as `missing-labels` drew it
        write_rows(objects, None, evaluation, np.array([row]), embedder, {row: score})
    return row


def move_box(objects: Collection, evaluation: RunEvaluation, point: str, embedder: Embedder) -> None:
    """Move a badly placed box onto its prediction (`original_bbox` keeps the first box)."""
    move_badly_placed(objects, None, evaluation, [point], embedder)
    _rematch(objects, evaluation.run.name)


def undo_move_box(objects: Collection, point: str, embedder: Embedder) -> None:
    """Put a moved box back where it was (its crop's vector too) and forget the decision."""
    records = objects.retrieve([point], None, with_vectors=False)
    entry = entry_of(records[0].payload, BADLY_PLACED) if records else None
    if entry is None or not entry.get("previous"):
        raise StoreError(f"{point} is not a box moved onto a prediction")
    payload = dict(records[0].payload)
    previous = [float(v) for v in entry["previous"]]
    item = crop_input(_root(objects), payload.get(PATH), np.asarray(previous), crop_margin(objects), embedder)
    if isinstance(item, str):
        raise StoreError(f"{point}: {item}")
    area, aspect = area_and_aspect(tuple(previous))
    payload.update({BBOX: previous, AREA: float(area), ASPECT_RATIO: float(aspect)})
    if payload.get(ORIGINAL_BBOX) == entry["previous"]:  # this move set it (an earlier one keeps its own)
        payload.pop(ORIGINAL_BBOX, None)
    review = merged_review(payload, BADLY_PLACED, None)
    payload[REVIEW] = review
    if not review:
        payload.pop(REVIEW)
    objects.upsert([point], np.asarray(embedder.embed_batch([item]), np.float32), [payload])
    objects.flush()
    _rematch(objects, str(entry["run"]))


def _root(objects: Collection) -> Any:
    from pathlib import Path

    return Path(str(objects.read_metadata().get("source_root") or "."))


def spurious_entry(run: str, item: QueueItem, tag_added: bool) -> dict[str, Any]:
    """The `review.spurious` record of an excluded box; `tag` only when this decision added it
    (so undo takes away only what it put)."""
    entry: dict[str, Any] = {"decision": EXCLUDED, "at": _now(), "run": run, "mislabel_score": item.score,
                             "neighbours_found": item.tie}
    if tag_added:
        entry["tag"] = EXCLUDED_TAG
    return entry


def record_decision(objects: Collection, point: str, issue: str, entry: Mapping[str, Any] | None) -> None:
    """Write (None: remove) the point's `review.<issue>` record, keeping its other issues'."""
    records = objects.retrieve([point], [REVIEW])
    if not records:
        raise StoreError(f"no point {point}")
    review = merged_review(records[0].payload, issue, dict(entry) if entry is not None else None)
    if review:
        objects.set_payloads([point], [{REVIEW: review}])
    else:
        objects.delete_payload_keys([point], [REVIEW])
    objects.flush()


def forget_decision(objects: Collection, point: str, issue: str) -> dict[str, Any] | None:
    """Remove the point's `issue` record; returns it (None: there was none)."""
    records = objects.retrieve([point], [REVIEW, TAGS])
    entry = entry_of(records[0].payload, issue) if records else None
    if entry is not None:
        record_decision(objects, point, issue, None)
    return entry


def accepted_status(issue: str) -> str:
    """The decision an accept records: excluded for a spurious box, accepted otherwise."""
    return EXCLUDED if issue == SPURIOUS else ACCEPTED
