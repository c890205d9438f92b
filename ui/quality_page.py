"""The Label quality tab: a review queue of likely mislabels, outliers and duplicate groups,
and on an Objects explorer with a detector run its three queues (ui/detector_review.py).

One card at a time (ui/review_cards.py): the image, given -> suggested label, the score and
its evidence (the nearest neighbours with their labels and similarities: the votes that made
the score). Actions, by button or key (never while typing in a text box):

    mislabel   A accept the suggestion (relabel, original kept)  K keep the label  T tag
    outlier    K keep (not an outlier)  E exclude (tag `excluded`)  T tag
    duplicate  K keep the chosen one, tag the rest `duplicate`  N not duplicates
    detector   A add a missing label / move a badly placed box  E exclude a spurious box
    all        S skip (to the end of the queue, this session)  U undo the last decision

Every decision is written into the point's `review` payload field (review/), so it survives
restarts, shows in exports and filters, and is never suggested again unless the data change.
The queue is filtered by issue, class pair (which also selects the pair on the map), class,
score range and status; "N of M reviewed" counts the filtered queue. Labels and tags change
through the shared `PointTable`, so the map and the other tabs see an accepted label at once.
On a collection with several embedding models analysed (`analyze --vector NAME2`), "Scores and
neighbours of" chooses whose scores, flags and neighbours the queue shows (review/book.py's
ReviewBook per vector); the card names the model.
Nothing here is specific to images: the queue works on any collection's points (objects too).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import gradio as gr
import numpy as np

from actions.edits import DUPLICATE_TAG, PointEditor
from detection.boxes import is_object_collection
from review import ACCEPTED, EXCLUDED, KEPT, PENDING, REVIEWED, QueueFilter, QueueItem, ReviewBook
from review.queue import WIDEST_MIN_SCORE, pair_counts
from store.schema import (
    DUPLICATE_FLAG, EXCLUDED_TAG, MISLABEL_FLAG, MISLABEL_SCORE, OUTLIER_FLAG, InvalidTag,
)
from evaluation.runs import active_run
from evaluation.review_queues import DETECTOR_ISSUES, MISSING_LABEL, DetectorQueues
from ui.context import AppContext
from ui.detector_review import DETECTOR_CHOICES, DetectorReviewer, QueueBooks, detector_card
from ui.review_keys import review_keys_js
from ui.review_cards import (
    CSS, STRIP_PAGE, Neighbour, card_html, empty_card, keys_line, progress_html, strip_html,
)
from ui.state import MapState
from ui.table import PointTable
from ui.text import markdown_text

MISLABEL_TAG, OUTLIER_TAG = "mislabeled", "outlier"
DEFAULT_TAG = {MISLABEL_FLAG: MISLABEL_TAG, OUTLIER_FLAG: OUTLIER_TAG, DUPLICATE_FLAG: DUPLICATE_TAG}
ISSUE_CHOICES = [("Likely mislabels", MISLABEL_FLAG), ("Outliers", OUTLIER_FLAG), ("Duplicate groups", DUPLICATE_FLAG)]
SHOW_CHOICES = [("To review", PENDING), ("Reviewed", REVIEWED), ("All", "all")]
ANY = ""
NEIGHBOURS = 10
# Key presses and clicks on the card become one command (ui/assets/review-keys.js).
COMMAND_JS = review_keys_js(".es-rq", ".es-rq-card", {"a": "accept", "k": "keep", "t": "tag", "e": "exclude",
                                                      "s": "skip", "u": "undo", "n": "separate"})


# --- session state and filters ------------------------------------------------------------
@dataclass
class ReviewSession:
    """One browser session's place in the queue: the card shown, what it skipped, the keys it
    decided (newest last, for undo), the strip's page and each duplicate group's chosen keeper."""

    issue: str = MISLABEL_FLAG
    current: str | None = None
    skipped: dict[str, list[str]] = field(default_factory=dict)
    decided: list[tuple[str, str]] = field(default_factory=list)
    page: int = 0
    keep_choice: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """The filter controls' values, as the handlers receive them."""

    issue: str
    pair: str
    label: str
    low: float | None
    high: float | None
    show: str
    widen: bool
    vector: str = ""  # whose scores: "" the default model's, else a named vector's (analyze --vector)

    def queue_filter(self) -> QueueFilter:
        pair = tuple(self.pair.split("|", 1)) if self.pair and "|" in self.pair else None
        widest = WIDEST_MIN_SCORE.get(self.issue)
        min_score = (self.low if self.low is not None else widest) if self.widen and widest is not None else None
        statuses = None if self.show == "all" else (self.show,)
        return QueueFilter(pair=pair, label=self.label or None, score_range=(self.low, self.high),  # type: ignore[arg-type]
                           min_score=min_score, statuses=statuses)


def _number(value: Any) -> float | None:
    """A score bound from a text box: a finite number, or None (empty or not a number)."""
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if np.isfinite(number) else None


def filters_of(issue: str, pair: str | None, label: str | None, low: Any, high: Any, show: str | None,
               widen: bool | None, vector: str | None = "") -> Filters:
    return Filters(issue or MISLABEL_FLAG, pair or ANY, label or ANY, _number(low), _number(high), show or PENDING,
                   bool(widen), vector or "")


# --- evidence: neighbours as the analysis saw them ---------------------------------------
class NeighbourIndex:
    """Each point's nearest neighbours from the kNN graph the analysis used (loaded on first
    use); a point the graph does not know falls back to a search in the store."""

    def __init__(self, ctx: AppContext, vector: str | None = None) -> None:
        self.ctx = ctx
        self.objects = is_object_collection(ctx.collection)  # neighbours are boxes; cards show their image
        self._graph: Any = None
        self._row: dict[str, int] | None = None
        # The vector (embedding model) whose scores the queue shows (None: the one the default
        # fields were scored with), and how the card names it where the collection has several.
        self.vector, self.source = analysis_vector(ctx.collection, vector)

    def __call__(self, point: str) -> list[Neighbour]:
        if self._row is None:
            from scoring.analyze import load_graph  # reads knn.npz; no model, no Qdrant client

            self._graph = load_graph(self.ctx.collection, self.vector)
            self._row = {} if self._graph is None else {str(p): i for i, p in enumerate(self._graph.ids)}
        row = self._row.get(point)
        if row is not None:
            ids, sims = self._graph.ids, self._graph.similarities[row, :NEIGHBOURS]
            return [Neighbour(str(ids[j]), float(s)) for j, s in zip(self._graph.indices[row, :NEIGHBOURS], sims)]
        return self._search(point)

    def _search(self, point: str) -> list[Neighbour]:
        records = self.ctx.collection.retrieve([point], [], with_vectors=True, using=self.vector)
        if not records or records[0].vector is None:
            return []
        hits = self.ctx.collection.search(records[0].vector, limit=NEIGHBOURS + 1, fields=[], using=self.vector)
        return [Neighbour(h.id, float(h.score or 0.0)) for h in hits if h.id != point][:NEIGHBOURS]


def analysis_vector(collection: Any, vector: str | None = None) -> tuple[str, str]:
    """(the vector the scores come from, its description for the card; "" with one vector).
    `vector` None: the one the plain score fields come from."""
    from store.schema import MODEL, VECTORS

    metadata = collection.read_metadata()
    if vector is None:
        vector = str((metadata.get("analysis") or {}).get("vector") or "")
    if not metadata.get(VECTORS):
        return vector, ""
    model = metadata.get(MODEL) if not vector else metadata[VECTORS].get(vector, {}).get(MODEL)
    return vector, f"{model or 'model not recorded'} (vector {vector or 'default'})"


def scored_models(collection: Any) -> list[tuple[str, str]]:
    """(shown name, vector) of each model whose scores the queue can show: the plain fields'
    one, then each named vector analysed with `analyze --vector`."""
    from scoring.analyze import ANALYSIS_BY_VECTOR

    metadata = collection.read_metadata()
    first = analysis_vector(collection)
    choices = [(first[1] or "default", first[0])]
    for name in sorted(metadata.get(ANALYSIS_BY_VECTOR) or {}):
        if name != first[0]:
            choices.append((analysis_vector(collection, name)[1], name))
    return choices


# --- rendering ------------------------------------------------------------------------------
@dataclass
class QueueView:
    """What the queue panel shows for a session: card, progress, strip, keys line."""

    card: str
    progress: str
    strip: str
    keys: str


def current_item(items: Sequence[QueueItem], session: ReviewSession) -> QueueItem | None:
    keys = [item.key for item in items]
    if session.current in keys:
        return items[keys.index(session.current)]
    return items[0] if items else None


def render(table: PointTable, book: QueueBooks, neighbours: NeighbourIndex, session: ReviewSession,
           filters: Filters, objects: bool = False) -> QueueView:
    """The queue panel for a session; `objects`: the points are boxes (cards show their image too)."""
    flt = filters.queue_filter()
    items = book.queue(filters.issue, flt, session.skipped.get(filters.issue, ()))
    item = current_item(items, session)
    session.current = item.key if item else None
    reviewed, total = book.progress(filters.issue, flt)
    counts = _status_counts(book.queue(filters.issue, replace(flt, statuses=None)))
    if item is None and not total and filters.issue == MISSING_LABEL:
        card = empty_card("No likely missing labels of this run ranked yet: run `python app.py missing-labels "
                          f"--collection {book.detector().objects.name}`, then reload this page.")
    elif item is None:
        card = empty_card("Nothing left to review here." if total else "No points in this queue. "
                          "Widen it (include unflagged points) or choose another issue or filter.")
    elif item.issue in DETECTOR_ISSUES:
        card = detector_card(table, book, item)
    else:
        payload = book.payload(item.ids[0])
        card = card_html(table, item, payload, book.entry(item.issue, item.ids[0]),
                         neighbours(item.ids[0]) if item.issue != DUPLICATE_FLAG else [],
                         session.keep_choice.get(item.key), objects, neighbours.source)
    if item is not None and session.page * STRIP_PAGE > items.index(item):
        session.page = items.index(item) // STRIP_PAGE
    return QueueView(card, progress_html(reviewed, total, counts), strip_html(items, session.current, session.page),
                     CSS + keys_line(filters.issue))


def _status_counts(items: Sequence[QueueItem]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def pair_choices(book: QueueBooks, filters: Filters) -> list[tuple[str, str]]:
    if filters.issue != MISLABEL_FLAG:
        return [("(any pair)", ANY)]
    pairs = pair_counts(book.items(MISLABEL_FLAG), filters.queue_filter())
    return [("(any pair)", ANY)] + [(f"{a} ↔ {b} ({n}, {p} to review)", f"{a}|{b}") for a, b, n, p in pairs]


# --- actions ----------------------------------------------------------------------------------
class Reviewer:
    """Carries out a card's decision and says what it did: a label-quality card through the one
    point editor (actions/edits.py: the edit through the PointTable, then the record in the
    ReviewBook), a detector queue's card through `detector` (ui/detector_review.py). `undo`
    reverses either, from the recorded decision."""

    def __init__(self, table: PointTable, book: QueueBooks | ReviewBook,
                 detector: DetectorReviewer | None = None) -> None:
        self.table, self.book, self.detector = table, book, detector
        self.editor = PointEditor(table, book)

    def decide(self, item: QueueItem, action: str, tag: str, keep: str | None, replace: bool = False) -> str:
        if item.issue in DETECTOR_ISSUES:
            return self.detector.decide(item, action) if self.detector is not None else ""
        done = self.editor.decide(item, action, tag, keep, replace)
        if done is None:
            return ""
        if done.decision == ACCEPTED:
            return (f"Relabelled {markdown_text(item.label)} → {markdown_text(item.suggested)} "
                    "(original kept; U undoes).")
        if done.separate:
            return "Marked as not duplicates: every image kept."
        if done.decision == KEPT and done.tag:
            return f"Kept one; tagged {done.tagged} '{DUPLICATE_TAG}'."
        if done.decision == KEPT:
            return "Kept as it is; it will not be suggested again unless the data change."
        if done.decision == EXCLUDED:
            return f"Excluded (tag '{EXCLUDED_TAG}')."
        return f"Tagged '{markdown_text(done.tag)}'."

    def undo(self, issue: str, ids: Sequence[str]) -> int:
        """Reverse the recorded decision on `ids`: restore the label, remove the tag it added."""
        if issue in DETECTOR_ISSUES:
            return self.detector.undo(issue, ids) if self.detector is not None else 0
        return self.editor.undo(issue, ids)


def run_command(reviewer: Reviewer, session: ReviewSession, filters: Filters, command: dict[str, Any],
                tag: str) -> str:
    """Apply one command (a decision, skip, undo, goto, choose, page) to the session's queue;
    returns the status message."""
    action, key = str(command.get("action") or ""), str(command.get("key") or "")
    book, issue = reviewer.book, filters.issue
    session.issue = issue
    if action in ("page-prev", "page-next"):
        session.page = max(0, session.page + (1 if action == "page-next" else -1))
        return ""
    if action == "goto":
        session.current = key
        return ""
    if action == "undo":
        return _undo(reviewer, session, issue, key)
    item = book.item(issue, key)
    if item is None:
        return "That card is no longer in the queue."
    if action == "choose":
        session.keep_choice[key] = str(command.get("id") or "")
        session.current = key
        return ""
    if action == "skip":
        skipped = session.skipped.setdefault(issue, [])
        skipped[:] = [k for k in skipped if k != key] + [key]
        session.current = _next_key(book, session, filters, key)
        return "Skipped (moved to the end of the queue for this session)."
    return _decide(reviewer, session, filters, item, action, tag)


def _decide(reviewer: Reviewer, session: ReviewSession, filters: Filters, item: QueueItem, action: str,
            tag: str) -> str:
    tag = (tag or DEFAULT_TAG[item.issue]) if action == "tag" else tag
    following = _next_key(reviewer.book, session, filters, item.key)
    try:  # a new decision replaces the old one (the tag is checked before that: a bad one loses nothing)
        message = reviewer.decide(item, action, tag, session.keep_choice.get(item.key), replace=item.status != PENDING)
    except InvalidTag as error:
        return markdown_text(error)
    if not message:
        return f"'{markdown_text(action)}' does not apply to this card."
    session.decided.append((item.issue, item.key))
    session.current = following
    return message


def _next_key(book: QueueBooks, session: ReviewSession, filters: Filters, key: str) -> str | None:
    """The key after `key` in the filtered queue (before any change), else the one before."""
    items = book.queue(filters.issue, filters.queue_filter(), session.skipped.get(filters.issue, ()))
    keys = [item.key for item in items]
    if key not in keys:
        return session.current
    index = keys.index(key)
    rest = keys[index + 1:] or keys[:index]
    return rest[0] if rest else None


def _undo(reviewer: Reviewer, session: ReviewSession, issue: str, key: str) -> str:
    """Undo this session's last decision, or else the decision on the card shown."""
    if session.decided:
        issue, key = session.decided.pop()
    item = reviewer.book.item(issue, key)
    if item is None or item.status == PENDING:
        return "Nothing to undo."
    reviewer.undo(issue, item.ids)
    session.issue, session.current = issue, key
    return "Undone: the card is back in the queue."


# --- the tab: one function per panel ----------------------------------------------------------
@dataclass
class FilterControls:
    issue: gr.Dropdown
    show: gr.Dropdown
    pair: gr.Dropdown
    label: gr.Dropdown
    low: gr.Textbox
    high: gr.Textbox
    widen: gr.Checkbox
    select: gr.Button
    model: gr.Dropdown

    def inputs(self) -> list[Any]:
        return [self.issue, self.pair, self.label, self.low, self.high, self.show, self.widen, self.model]


@dataclass
class QueueControls:
    command: gr.HTML
    progress: gr.HTML
    card: gr.HTML
    status: gr.Markdown
    strip: gr.HTML
    keys: gr.HTML
    tag: gr.Textbox

    def views(self) -> list[Any]:
        return [self.card, self.progress, self.strip, self.keys]


def _filter_panel(table: PointTable, models: list[tuple[str, str]], issues: list[tuple[str, str]]) -> FilterControls:
    model = gr.Dropdown(models, value=models[0][1], label="Scores and neighbours of", elem_id="es-rq-model",
                        visible=len(models) > 1)
    with gr.Row(equal_height=True):
        issue = gr.Dropdown(issues, value=issues[0][1], label="Review", elem_id="es-rq-issue", scale=2,
                            min_width=150)
        show = gr.Dropdown(SHOW_CHOICES, value=PENDING, label="Show", elem_id="es-rq-show", scale=1, min_width=120)
        widen = gr.Checkbox(False, label="Include unflagged points", elem_id="es-rq-widen", scale=1, min_width=120)
    with gr.Row(equal_height=True):
        pair = gr.Dropdown([("(any pair)", ANY)], value=ANY, label="Class pair (selects it on the map)",
                           elem_id="es-rq-pair", scale=3, min_width=180)
        label = gr.Dropdown([("(any class)", ANY)] + [(n, n) for n in table.label_names], value=ANY, label="Class",
                            elem_id="es-rq-class", scale=2, min_width=110)
    with gr.Row(equal_height=True):
        low = gr.Textbox("", label="Score ≥", placeholder="any", elem_id="es-rq-low", scale=1, min_width=70)
        high = gr.Textbox("", label="Score ≤", placeholder="any", elem_id="es-rq-high", scale=1, min_width=70)
        select = gr.Button("Select this queue on the map", elem_id="es-rq-select", scale=2, size="sm")
    return FilterControls(issue, show, pair, label, low, high, widen, select, model)


def _queue_panel(issue: str) -> QueueControls:
    with gr.Column(elem_classes=["es-rq"]):
        command = gr.HTML("", html_template='<div class="es-rq-command"></div>', js_on_load=COMMAND_JS,
                          elem_id="es-rq-command")
        progress = gr.HTML(elem_id="es-rq-progress")
        card = gr.HTML(empty_card("Loading the review queue…"), elem_id="es-rq-card")
        status = gr.Markdown(elem_id="es-rq-status")
        strip = gr.HTML(elem_id="es-rq-strip")
        keys = gr.HTML(CSS + keys_line(issue), elem_id="es-rq-keys")
    tag = gr.Textbox(MISLABEL_TAG, label="Tag for T", elem_id="es-rq-tag")
    return QueueControls(command, progress, card, status, strip, keys, tag)


@dataclass
class NeighbourIndexes:
    """The NeighbourIndex of each model the queue can show; `objects`: the points are boxes."""

    indexes: dict[str, NeighbourIndex]
    objects: bool

    def __call__(self, vector: str) -> NeighbourIndex:
        return self.indexes.get(vector) or next(iter(self.indexes.values()))


def build(ctx: AppContext) -> None:
    table = ctx.table
    # has_fields first: no scan of the payloads for a field the collection does not hold.
    analysed = table.has_fields([MISLABEL_SCORE]) and bool(np.isfinite(table.numeric(MISLABEL_SCORE)).any())
    run = is_object_collection(ctx.collection) and active_run(ctx.collection) is not None
    if not analysed and not run:
        gr.Markdown(f"No label-quality analysis for this collection yet. Run "
                    f"`python app.py analyze --collection {ctx.collection.name}` and restart the explorer.",
                    elem_id="es-q-missing")
        return
    issues = (ISSUE_CHOICES if analysed else []) + (DETECTOR_CHOICES if run else [])
    books: dict[str, tuple[PointTable, ReviewBook]] = {}  # per model, read on first use, shared by every session
    models = scored_models(ctx.collection)
    indexes = {vector: NeighbourIndex(ctx, vector) for _, vector in models}
    neighbours = NeighbourIndexes(indexes, indexes[models[0][1]].objects)
    detector = _detector_queues(ctx) if run else (lambda: None)

    def book(vector: str = "") -> QueueBooks:
        # A table read again (other writers' edits, ui/live_table.py) means the payloads may
        # have changed under the book: read it again too. Own edits keep the table object.
        if analysed and (vector not in books or books[vector][0] is not ctx.table):
            books[vector] = (ctx.table, ReviewBook(ctx.collection, vector))
        return QueueBooks(books[vector][1] if analysed else None, detector)

    session = gr.State(ReviewSession(issue=issues[0][1]))
    filters = _filter_panel(table, models, issues)
    queue = _queue_panel(issues[0][1])
    _wire(ctx, book, neighbours, session, filters, queue)


def _detector_queues(ctx: AppContext) -> Callable[[], DetectorQueues]:
    """The run's queues, matched again whenever the table is (after a detector edit the tab
    reads the collection again, so the next call sees the edit)."""
    held: dict[str, Any] = {}

    def queues() -> DetectorQueues:
        if held.get("table") is not ctx.table:
            held["queues"], held["table"] = DetectorQueues(ctx.collection), ctx.table
        return held["queues"]
    return queues


def _wire(ctx: AppContext, book: Any, neighbours: NeighbourIndexes, session: gr.State, filters: FilterControls,
          queue: QueueControls) -> None:
    """The tab's events: showing the queue when opened, filter changes, commands, selection."""

    def view(sess: ReviewSession, *values: Any) -> list[Any]:
        current = filters_of(*values)
        shown = render(ctx.table, book(current.vector), neighbours(current.vector), sess, current,
                       neighbours.objects)
        pairs = gr.Dropdown(choices=pair_choices(book(current.vector), current), value=current.pair)
        return [sess, shown.card, shown.progress, shown.strip, shown.keys, pairs]

    outputs = [session, *queue.views(), filters.pair]
    # Opening the tab (and any selection change while it is open) shows the queue as it now is.
    ctx.on_selection_change(lambda state, sess, *values: view(sess, *values), [session, *filters.inputs()], outputs)

    def refilter(sess: ReviewSession, *values: Any) -> list[Any]:
        sess.page, sess.current = 0, None
        if values[0] != MISLABEL_FLAG:
            values = (values[0], ANY, *values[2:])  # class pairs are for mislabels
        return [*view(sess, *values), ""]

    for control in (filters.issue, filters.label, filters.low, filters.high, filters.show, filters.widen,
                    filters.model):
        control.input(refilter, [session, *filters.inputs()], [*outputs, queue.status], show_progress="hidden")
    filters.issue.input(lambda issue: DEFAULT_TAG.get(issue, MISLABEL_TAG), [filters.issue], [queue.tag],
                        show_progress="hidden")
    _wire_pair(ctx, book, neighbours, session, filters, queue)
    _wire_commands(ctx, book, neighbours, session, filters, queue)


def _wire_pair(ctx: AppContext, book: Any, neighbours: NeighbourIndexes, session: gr.State, filters: FilterControls,
               queue: QueueControls) -> None:
    """Choosing a class pair filters the queue and selects the pair's points on the map."""

    def pick(state: MapState, sess: ReviewSession, *values: Any) -> tuple[Any, ...]:
        table = ctx.table
        current = filters_of(*values)
        sess.page, sess.current = 0, None
        shown = render(table, book(current.vector), neighbours(current.vector), sess, current,
                       neighbours.objects)
        if current.pair:
            items = book(current.vector).queue(current.issue, replace(current.queue_filter(), statuses=None))
            rows = table.rows_for_ids(i for item in items for i in item.ids)
            state = state.select(rows, "pair " + current.pair.replace("|", " ↔ "))
        return state, sess, shown.card, shown.progress, shown.strip, shown.keys

    ctx.map_event(filters.pair.input, pick, [session, *filters.inputs()], [session, *queue.views()],
                  name="review_pair")


def _wire_commands(ctx: AppContext, book: Any, neighbours: NeighbourIndexes, session: gr.State,
                   filters: FilterControls, queue: QueueControls) -> None:
    """Card buttons and keys (one command component), and "select this queue on the map"."""
    models: dict[str, Any] = {}

    def embedder() -> Any:
        if "model" not in models:  # the collection's model, loaded on the first detector edit
            from evaluation.missing_labels import collection_embedder

            models["model"] = collection_embedder(ctx.collection)
        return models["model"]

    def command(state: MapState, text: str, sess: ReviewSession, tag: str, *values: Any) -> tuple[Any, ...]:
        table = ctx.table
        current = filters_of(*values)
        try:
            parsed = json.loads(text or "{}")
        except ValueError:
            parsed = {}
        labels_before = table.label_codes
        books = book(current.vector)
        message = run_command(Reviewer(table, books, DetectorReviewer(table, books, embedder)), sess, current,
                              parsed, tag)
        if current.issue in DETECTOR_ISSUES and parsed.get("action") in ("accept", "exclude", "undo"):
            ctx.live.check(force=True)  # boxes added, moved or deleted: the map reads them
            state.catch_up(ctx.table)
            table = ctx.table
        if table.label_codes is not labels_before:
            state.dirty.add("colour")  # a relabel: the map's label colours change
        if state.colour_by == "tag" or state.filter_tags:
            state.set_view(table)
        shown = render(table, book(current.vector), neighbours(current.vector), sess, current,
                       neighbours.objects)
        return (state, sess, shown.card, shown.progress, shown.strip, shown.keys, message,
                gr.Dropdown(choices=pair_choices(book(current.vector), current), value=current.pair))

    ctx.map_event(queue.command.change, command, [queue.command, session, queue.tag, *filters.inputs()],
                  [session, *queue.views(), queue.status, filters.pair], name="review_command")

    def select(state: MapState, *values: Any) -> MapState:
        table = ctx.table
        current = filters_of(*values)
        items = book(current.vector).queue(current.issue, current.queue_filter())
        return state.select(table.rows_for_ids(i for item in items for i in item.ids), "review queue")

    ctx.map_event(filters.select.click, select, filters.inputs(), name="review_select")
