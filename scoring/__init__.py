"""Scores computed over a whole collection and written back into its payloads (`python app.py
analyze`, also run at the end of indexing): mislabel, outlier and duplicate scores over the saved
kNN graph (the pure functions are in analysis/), and image metrics missing from older collections."""
