"""A detector's runs on an object collection: the run store (`runs.py`), matching the labels and
the metrics of any set of images (`evaluate.py`), and the report as text (`report.py`)."""
