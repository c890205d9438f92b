"""The likely-missing-label queue on the Model performance tab of an object explorer: one card
per prediction of the saved ranking (`python app.py missing-labels`), best first, with its
image (every labelled box solid, the run's predictions dashed, ui/run_overlay.py) and its
class, scores and reason; **A** accepts it (the box becomes a labelled box: evaluation/accept.py,
the same as `missing-labels --accept`), **S** skips it for this session, **U** undoes this
session's last accept (the added box is deleted and its place in the ranking comes back).
Keys never fire while typing in a text box; a card's key travels with each command, so a late
key press never acts on the next card.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from ui.text import html_text as escape
from typing import Any

import gradio as gr
import numpy as np

from evaluation.accept import accept_missing_labels, without_ranks
from evaluation.prediction_points import drop_prediction_points, prediction_point, write_rows
from evaluation.evaluate import RunEvaluation
from evaluation.missing_labels import MissingLabels, collection_embedder, load_missing_labels, save_missing_labels
from ui.context import AppContext
from ui.state import MapState

COMMAND_JS = r"""
const scope = () => element.closest('.es-ml') || document;
const send = (detail) => { props.value = JSON.stringify({...detail, nonce: Date.now() + Math.random()}); };
const cardKey = () => { const c = scope().querySelector('.es-ml-card'); return c ? c.dataset.key : ''; };
const KEYS = {a: 'accept', s: 'skip', u: 'undo'};
document.addEventListener('keydown', (e) => {
  const t = e.target;
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  const card = scope().querySelector('.es-ml-card');
  if (!card || card.offsetParent === null) return;  // this tab is not shown
  const action = KEYS[e.key.toLowerCase()];
  if (!action) return;
  e.preventDefault();
  send({action: action, key: cardKey()});
});
document.addEventListener('click', (e) => {
  if (!scope().contains(e.target)) return;
  const button = e.target.closest('[data-action]');
  if (button) send({action: button.dataset.action, key: cardKey()});
});
"""


@dataclass
class QueueSession:
    """One browser session's place in the queue: skipped predictions, accepts to undo."""

    skipped: set[int] = field(default_factory=set)
    accepted: list[tuple[str, int, float, bool]] = field(default_factory=list)  # (point id, prediction, score, drawn)


def card_html(ranking: MissingLabels | None, evaluation: RunEvaluation, session: QueueSession,
              collection: str) -> str:
    if ranking is None:
        return (f'<p class="es-ml-empty">No ranking of run {escape(evaluation.run.name)} yet: run <code>python app.py '
                f'missing-labels --collection {escape(collection)}</code>, then reopen this tab.</p>')
    left = [i for i, p in enumerate(ranking.predictions.tolist()) if p not in session.skipped]
    if not left:
        return '<p class="es-ml-empty">Nothing left to review in this ranking.</p>'
    place = left[0]
    row = int(ranking.predictions[place])
    run = evaluation.run
    reason = evaluation.outcomes().dt_reason[row]
    image = escape(str(run.image_id[row]))
    return (f'<div class="es-ml-card" data-key="{row}"><p><b>{place + 1}</b> of {len(ranking.predictions)} · '
            f'<b>{escape(str(run.label[row]))}</b> · detector score {run.score[row]:.2f} · missing-label score '
            f'<b data-score="{ranking.scores[place]:.6f}">{ranking.scores[place]:.3f}</b> · {escape(str(reason))} · box '
            f'{[round(float(v), 1) for v in run.bbox[row]]}</p>'
            f'<img class="es-ml-image" src="/boxes/{image}" alt="" style="max-width:100%">'
            '<p><button data-action="accept">Accept (A)</button> <button data-action="skip">Skip (S)</button> '
            '<button data-action="undo">Undo (U)</button></p></div>')


def build(ctx: AppContext, evaluation_of: Any) -> None:
    """The queue panel; `evaluation_of(None)` gives the current run's RunEvaluation."""
    with gr.Column(elem_classes=["es-ml"]):
        gr.Markdown("#### Likely missing labels")
        command = gr.HTML("", html_template='<div class="es-ml-command"></div>', js_on_load=COMMAND_JS,
                          elem_id="es-ml-command")
        card = gr.HTML(elem_id="es-ml-card")
        status = gr.Markdown(elem_id="es-ml-status")
    session = gr.State(QueueSession())
    models: dict[str, Any] = {}

    def embedder() -> Any:
        if "model" not in models:
            models["model"] = collection_embedder(ctx.collection)  # loaded on the first accept
        return models["model"]

    def show(state: MapState, sess: QueueSession) -> str:
        evaluation = evaluation_of(None)
        return card_html(load_missing_labels(ctx.collection, evaluation.run.name), evaluation, sess,
                         ctx.collection.name)

    def on_command(state: MapState, text: str, sess: QueueSession) -> tuple[Any, ...]:
        try:
            parsed = json.loads(text or "{}")
        except ValueError:
            parsed = {}
        evaluation = evaluation_of(None)
        ranking = load_missing_labels(ctx.collection, evaluation.run.name)
        message = _apply(ctx, evaluation, ranking, parsed, sess, embedder)
        ctx.live.check(force=True)
        state.catch_up(ctx.table)
        return state, sess, show(state, sess), message

    ctx.on_selection_change(show, [session], [card])
    ctx.map_event(command.change, on_command, [command, session], [session, card, status],
                  name="missing_label_command")


def _apply(ctx: AppContext, evaluation: RunEvaluation, ranking: MissingLabels | None, command: dict[str, Any],
           sess: QueueSession, embedder: Any) -> str:
    """Carry out one command on the card it was made on; the status line."""
    action, key = command.get("action"), str(command.get("key", ""))
    if action == "undo":
        return _undo(ctx, evaluation, ranking, sess, embedder)
    if ranking is None or not key.isdigit():
        return ""
    places = np.flatnonzero(ranking.predictions == int(key))
    if not len(places):
        return "That card is no longer in the ranking."
    if action == "skip":
        sess.skipped.add(int(key))
        return f"Skipped prediction {key}."
    if action == "accept":
        place = int(places[0])
        added = accept_missing_labels(ctx.collection, None, evaluation, ranking, [place + 1], embedder())
        save_missing_labels(ctx.collection, evaluation.run.name, without_ranks(ranking, [place + 1]))
        drawn = bool(ctx.collection.retrieve([prediction_point(evaluation.run.name, int(key))], []))
        drop_prediction_points(ctx.collection, evaluation.run.name, [int(key)])  # a labelled box now
        sess.accepted.append((added[0], int(key), float(ranking.scores[place]), drawn))
        return f"Added a {escape(str(evaluation.run.label[int(key)]))} box (U undoes it)."
    return ""


def _undo(ctx: AppContext, evaluation: RunEvaluation, ranking: MissingLabels | None, sess: QueueSession,
          embedder: Any) -> str:
    if not sess.accepted or ranking is None:
        return "Nothing to undo."
    point, prediction, score, was_drawn = sess.accepted.pop()
    ctx.collection.delete([point])
    ctx.collection.flush()
    if was_drawn:   # the prediction is a false positive again: its point comes back
        write_rows(ctx.collection, None, evaluation, np.array([prediction]), embedder(), {prediction: score})
    predictions = np.append(ranking.predictions, prediction)
    scores = np.append(ranking.scores, score)
    order = np.argsort(-scores, kind="stable")
    save_missing_labels(ctx.collection, evaluation.run.name, MissingLabels(predictions[order], scores[order], []))
    return "Undone: the added box is deleted."
