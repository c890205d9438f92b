"""The map's category colours: one list for the map, the density image and the first page."""
from __future__ import annotations

import numpy as np

# Distinct colours for the largest classes (Tableau 10 and its light partners, then darker
# tones); every smaller class shares OTHER_COLOUR so 100+ classes stay readable.
PALETTE = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#393b79", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#dbdb8d", "#9edae5", "#637939",
]
OTHER_COLOUR = "#b5b5b5"
UNTAGGED_COLOUR = "#d9d9d9"
DATA_COLOUR = "#3b6ea8"


def largest_first(counts: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Category code -> colour index for categories counted `counts`: the len(PALETTE) largest
    get the palette in order of size (ties by code), all others OTHER_COLOUR, as the map
    colours labels. Returns (remap, colours) with colours[remap[code]] the code's colour."""
    order = np.argsort(-np.asarray(counts), kind="stable")
    coloured = order[:len(PALETTE)]
    remap = np.full(len(counts), len(coloured), dtype=np.uint16)
    remap[coloured] = np.arange(len(coloured), dtype=np.uint16)
    return remap, PALETTE[:len(coloured)] + ([OTHER_COLOUR] if len(counts) > len(coloured) else [])
