"""Errors of the export package (each message says what to do)."""
from __future__ import annotations


class ExportError(ValueError):
    """The export cannot be written; the message says why."""
