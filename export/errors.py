"""Errors of the export package (each message says what to do)."""
from __future__ import annotations


class ExportError(ValueError):
    """The export (or the action on a selection) cannot be done; the message says why."""
