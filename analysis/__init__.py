"""Scores computed from embedding vectors and labels: pure functions over numpy arrays.

Nothing here talks to Qdrant or loads a model; callers pass arrays in and store the results.
"""
