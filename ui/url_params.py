"""What the page URL's query parameters do to an explorer's view when the page loads.

    ?selection=<token>    select the points another explorer handed over (ui/handoff.py)

`UrlParams.apply(table, state, query)` runs in the page's load event (ui/explorer.py
`wire_live_updates`); a new parameter is one more method here and one more line in `apply`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import gradio as gr

from ui.handoff import HandoffStore
from ui.state import MapState
from ui.table import PointTable

SELECTION = "selection"


@dataclass
class UrlParams:
    handoff: HandoffStore | None = None

    def apply(self, table: PointTable, state: MapState, query: Mapping[str, str]) -> MapState:
        """`state` with the view the query asks for (unknown parameters are ignored)."""
        if query.get(SELECTION):
            state = self.select_handed_over(table, state, str(query[SELECTION]))
        return state

    def select_handed_over(self, table: PointTable, state: MapState, token: str) -> MapState:
        handed = self.handoff.get(token) if self.handoff is not None else None
        if handed is None:
            gr.Warning("That selection link has expired (the server keeps one for a day, or was restarted): "
                       "select the points again in the other explorer.")
            return state
        return state.select(table.rows_for_ids(handed.ids), handed.source)
