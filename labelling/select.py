"""`select-next`: choose the next batch to label in a collection, tag it, record it as a round.

    result = select_next(collection, SelectRequest(budget=200, strategy="margin-coreset"))
    result.ids, result.tag, result.round

The batch is tagged in Qdrant (`batch-<round>` unless a tag is given), so the map, filters,
exports and any Qdrant client see it, and the round (tag, strategy, budget, size, labelled
count and the probe's cross-validated accuracy at that moment) is appended to the collection
metadata under `rounds` (labelling/rounds.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from actions.edits import CollectionWriter, PointEditor, PointWriter
from analysis.selection import DEFAULT_STRATEGY, DEFAULT_THRESHOLD, STRATEGIES, SelectionInputError, select
from filters import FilterSpec, SelectionError
from labelling.detector import DetectorSource
from labelling.pool import collection_pool
from labelling.rounds import next_round, probe_accuracy, record_round
from store import Collection
from store.schema import validate_tag

BALANCES = ("class", "cluster")


@dataclass
class SelectRequest:
    """budget: points to choose; strategy: a name of analysis.selection.STRATEGIES; tag: the
    batch's tag (None: batch-<round>); spec: which points may be chosen (unlabelled ones inside
    it; None: all but `excluded`); balance: None, "class" (predicted classes) or "cluster";
    run / threshold: the detector run (None: the current one) and confidence threshold of
    `uncertain-boxes`."""

    budget: int
    strategy: str = DEFAULT_STRATEGY
    tag: str | None = None
    spec: FilterSpec = field(default_factory=FilterSpec)
    balance: str | None = None
    seed: int = 0
    run: str | None = None
    threshold: float = DEFAULT_THRESHOLD


@dataclass
class SelectResult:
    ids: list[str]
    scores: list[float]
    tag: str
    round: int
    strategy: str  # as it ran (a hybrid without probabilities says it fell back to k-center)
    candidates: int
    labelled: int
    probabilities_from: str | None
    probe_accuracy: float | None
    run: str | None = None  # the detector run uncertain-boxes read (its boxes go into the batch's files)

    def summary(self) -> str:
        source = f"; class probabilities from the {self.probabilities_from}" if self.probabilities_from else ""
        accuracy = "" if self.probe_accuracy is None else f"; probe accuracy {self.probe_accuracy:.1%} (cross-validated)"
        return (f"round {self.round}: chose {len(self.ids)} of {self.candidates} unlabelled points by {self.strategy}"
                f"{source}; tagged '{self.tag}'; {self.labelled} labelled so far{accuracy}")


def check_request(request: SelectRequest) -> str | None:
    """The validated tag (None: the default one); SelectionError for a bad request."""
    if request.strategy not in STRATEGIES:
        raise SelectionError(f"unknown strategy {request.strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if request.budget < 1:
        raise SelectionError(f"--budget must be at least 1, not {request.budget}")
    if request.balance not in (None, *BALANCES):
        raise SelectionError(f"unknown balance {request.balance!r}; choose class or cluster")
    return validate_tag(request.tag) if request.tag is not None else None


def select_next(collection: Collection, request: SelectRequest,
                writer: PointWriter | None = None, objects: Collection | None = None) -> SelectResult:
    """Choose, tag and record the next batch; SelectionError (nothing written) when it cannot.
    The tag is written through actions/edits.py, to `writer` (default the collection; the app
    passes its PointTable, which keeps its in-memory tags in step). `objects`: the object
    collection of a detection dataset's image collection `collection`, whose run
    `uncertain-boxes` reads."""
    tag = check_request(request)
    number = next_round(collection)
    tag = tag or f"batch-{number}"
    detector = DetectorSource(objects, request.run, request.threshold) if objects is not None else None
    data = collection_pool(collection, request.spec, request.strategy, request.balance, detector)
    if request.balance == "class" and data.pool.groups is None:
        raise SelectionError("class balance needs class probabilities: label points of at least two classes "
                             "(or import a model's predictions with probabilities)")
    try:
        batch = select(request.strategy, data.pool, request.budget, request.seed,
                       balanced_groups=request.balance is not None)
    except SelectionInputError as error:
        raise SelectionError(str(error)) from None
    ids = data.ids[batch.rows].tolist()
    strategy = f"{batch.strategy} (run {data.run})" if data.run else batch.strategy
    editor = PointEditor(writer or CollectionWriter(collection))
    editor.add_tag(editor.writer.points_of(ids), tag)
    accuracy = probe_accuracy(data.pool.vectors, data.codes)
    result = SelectResult(ids=ids, scores=[float(s) for s in batch.scores], tag=tag, round=number,
                          strategy=strategy, candidates=int(data.pool.candidates.sum()),
                          labelled=int(data.pool.labelled.sum()), probabilities_from=data.probabilities_from,
                          probe_accuracy=accuracy, run=data.run)
    record_round(collection, result, request.budget, request.spec.describe())
    return result
