"""The test run leaves the checkout as it found it: no tracked file rewritten (the browser tests
once saved README screenshots into docs/), no new file outside .gitignore.

Named to run last in a whole run, after every browser test; tests/conftest.py also checks
once more when the run ends."""
from __future__ import annotations

import subprocess

import pytest

from checkout_state import ROOT, changes, checkout_state
from conftest import CHECKOUT_BEFORE


def test_change_detection_sees_a_rewritten_tracked_file() -> None:
    """The check itself: rewriting a tracked file (and a new unignored one) is seen."""
    before = checkout_state()
    if before is None:
        pytest.skip("not a git checkout")
    tracked = ROOT / "docs" / "BENCHMARKS.md"
    original = tracked.read_bytes()
    new = ROOT / "tests" / "zz-written-by-a-test.txt"
    try:
        tracked.write_bytes(original + b"\n")
        new.write_text("x")
        assert {"docs/BENCHMARKS.md", "tests/zz-written-by-a-test.txt"} <= set(changes(before, checkout_state()))
    finally:
        tracked.write_bytes(original)
        new.unlink(missing_ok=True)
    assert changes(before, checkout_state()) == []


def test_the_test_run_changed_no_tracked_file(request: pytest.FixtureRequest) -> None:
    after = checkout_state()
    if CHECKOUT_BEFORE is None or after is None:
        pytest.skip("not a git checkout")
    browser_modules = {item.module.__name__ for item in request.session.items
                       if item.module.__name__.startswith("test_ui")}
    if not browser_modules:
        pytest.skip("no browser test ran in this session: run with the whole suite (make test)")
    assert changes(CHECKOUT_BEFORE, after) == [], (
        "the tests changed the checkout (screenshots for docs come from `make screenshots`): "
        + subprocess.run(["git", "status", "--short"], cwd=ROOT, capture_output=True, text=True).stdout)
