"""Per-browser-session state of the map: what is selected, how the map is coloured and filtered.

One `MapState` lives in a `gr.State` per session (Gradio keeps it on the server; it never
travels to the browser). Rows are indices into the shared `PointTable`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ui.table import PointTable

COLOUR_MODES = ("data", "label", "tag", "cluster")


@dataclass
class SelectionState:
    """The current selection: row indices in display order, or None for "nothing selected".

    `source` says where it came from ("box", "lasso", "tag: x", "text: ...", "similar: ...");
    `scores` holds similarity scores aligned with `rows` for search results.
    """

    rows: np.ndarray | None = None
    source: str = ""
    scores: np.ndarray | None = None

    @property
    def active(self) -> bool:
        return self.rows is not None

    def __len__(self) -> int:
        return 0 if self.rows is None else len(self.rows)


@dataclass
class MapState:
    """Everything a session's map shows, plus what must be pushed to the browser next.

    Read `selection` / `selected_rows()` / `shown_rows()`; change it with `select()` and
    `clear()`. `dirty` names the parts of the browser's map that are out of date
    ("base", "colour", "selection", "names"); the app's wiring sends them and empties it.

    `table_version` is the version of the shared table (ui/table.py) the derived parts (the
    visible mask, the browser's map) were made for; `catch_up` brings them to a newer table.
    Rows keep their meaning across versions, so the selection and the grid's page carry over.
    """

    colour_by: str = "label"
    filter_labels: list[str] = field(default_factory=list)
    filter_tags: list[str] = field(default_factory=list)
    visible: np.ndarray | None = None  # bool mask of rows shown (filters, live points; None: all)
    selection: SelectionState = field(default_factory=SelectionState)
    page: int = 0
    show_names: bool = False  # cluster names on the map (turned on by colouring by cluster)
    sort_field: str | None = None  # grid order: a numeric payload field, or None (selection order)
    sort_descending: bool = False
    compare_rows: tuple[np.ndarray, np.ndarray] | None = None  # two subsets shown in two colours
    map_vector: str = ""  # whose 2D map the map shows: "" the default model's, else a named vector's (ui/model_maps.py)
    detail_id: str | None = None
    open_page: str | None = None  # the open tab, if its followers wait for it (AppContext.page)
    seq: int = 0
    dirty: set[str] = field(default_factory=lambda: {"base", "colour", "selection"})
    table_version: int = 0
    # Read by the map's view routes (ui/map/routes.py), which answer outside Gradio's events:
    token: str = ""  # names this session to those routes (set with the first map message)
    colours: Any = None  # the `Colouring` (ui/figure.py) of the last colour message
    colours_for: int = -1  # the table version those colours were made for
    selection_mask: tuple[SelectionState, np.ndarray] | None = None  # the selection as a row mask
    view: tuple[float, float, float, float] | None = None  # x0, x1, y0, y1 the browser last showed

    # --- reading --------------------------------------------------------------------
    def visible_rows(self, table: PointTable) -> np.ndarray:
        self.catch_up(table)
        return np.arange(len(table)) if self.visible is None else np.flatnonzero(self.visible)

    def selected_rows(self) -> np.ndarray | None:
        """Rows of the current selection, or None when nothing is selected."""
        return self.selection.rows

    def shown_rows(self, table: PointTable) -> np.ndarray:
        """What the linked views show: the selection, or every visible point without one."""
        return self.selection.rows if self.selection.active else self.visible_rows(table)

    def selected_ids(self, table: PointTable) -> list[str]:
        return [] if self.selection.rows is None else table.ids_for_rows(self.selection.rows)

    # --- changing -------------------------------------------------------------------
    def select(self, rows: np.ndarray | list[int] | None, source: str, *, from_map: bool = False,
               scores: np.ndarray | None = None) -> MapState:
        """Make `rows` the selection (None clears it). Points hidden by filters are dropped.

        `from_map=True` means the browser drew this selection itself, so the map needs
        no update; otherwise the map is told to show it.
        """
        if rows is None:
            self.selection = SelectionState()
        else:
            rows = np.asarray(rows, dtype=np.int64)
            if self.visible is not None:
                keep = self.visible[rows]
                rows, scores = rows[keep], None if scores is None else np.asarray(scores)[keep]
            self.selection = SelectionState(rows, source, scores)
        self.page = 0
        if not from_map:
            self.dirty.add("selection")
        return self

    def clear(self, *, from_map: bool = False) -> MapState:
        return self.select(None, "", from_map=from_map)

    def set_view(self, table: PointTable, colour_by: str | None = None, labels: list[str] | None = None,
                 tags: list[str] | None = None) -> MapState:
        """Change colouring and filters; the selection keeps only points still visible."""
        self.catch_up(table)
        if colour_by is not None:
            known = (colour_by in COLOUR_MODES or colour_by.startswith(("field:", "model-cluster:"))
                     or colour_by == "compare")
            self.colour_by = colour_by if known else "label"
        if labels is not None:
            self.filter_labels = list(labels)
        if tags is not None:
            self.filter_tags = list(tags)
        self._compute_visible(table)
        self.dirty.add("colour")
        rows = self.selection.rows
        if rows is not None and self.visible is not None and not self.visible[rows].all():
            # Hidden points leave the selection; the browser needs the trimmed selection.
            self.select(rows, self.selection.source, scores=self.selection.scores)
        return self

    def set_names(self, show: bool) -> MapState:
        """Show or hide the clusters' names on the map."""
        self.show_names = bool(show)
        self.dirty.add("names")
        return self

    def catch_up(self, table: PointTable) -> bool:
        """Bring the session to `table` if it is newer than the one its view was made for:
        the filters are applied to it again (dead rows hidden, their points leave the
        selection) and the browser's map is sent whole. Returns whether anything changed."""
        if table.version == self.table_version:
            return False
        self.table_version = table.version
        self._compute_visible(table)
        rows = self.selection.rows
        if rows is not None and self.visible is not None and not self.visible[rows].all():
            keep = self.visible[rows]
            scores = None if self.selection.scores is None else self.selection.scores[keep]
            self.selection = SelectionState(rows[keep], self.selection.source, scores)
        self.dirty.update({"base", "colour", "selection"})
        return True

    def _compute_visible(self, table: PointTable) -> None:
        filtered = bool(self.filter_labels or self.filter_tags)
        self.visible = table.mask(self.filter_labels, self.filter_tags) if filtered or not table.all_alive else None
        self.table_version = table.version
