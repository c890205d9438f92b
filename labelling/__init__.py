"""The labelling loop over a collection: choose the next batch, record the rounds, follow the curve.

    result = select_next(collection, SelectRequest(budget=200))   # chosen, tagged, recorded as a round
    rounds_report(collection)                                     # the rounds and the learning curve

The strategies themselves are pure functions in analysis/selection; this package reads the
collection (vectors, labels, clusters, imported probabilities, the kNN graph), writes the tag
and the round into it, and writes the files annotators work from (labelling/batch_files.py).
"""
from labelling.rounds import RoundsReport, rounds_report
from labelling.select import SelectRequest, SelectResult, select_next

__all__ = ["RoundsReport", "SelectRequest", "SelectResult", "rounds_report", "select_next"]
