"""A detector's runs on an object collection: reading its files (`readers.py`), the run store
(`runs.py`), matching the labels and the metrics of any set of images (`evaluate.py`), where it
fails (`failures.py`), likely missing labels (`missing_labels.py`), false positives as map
points (`prediction_points.py`), the report as text (`report.py`)."""
