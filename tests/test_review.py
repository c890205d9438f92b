"""Review decisions: the record in the payload, the "data changed" rule, queue order, filters
and progress, the ReviewBook on both store backends (and across a reopen), the command
line's --review filter and the export columns."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

import app
from actions_helpers import build_collection
from review import ACCEPTED, KEPT, PENDING, REVIEWED, TAGGED, QueueFilter, ReviewBook, ReviewError, matching_ids
from review.decisions import applies, group_fingerprint, new_entry, parse_status_filter, status
from review.queue import order, pair_counts, progress, queue_items, select
from store import Store, open_store

BASE = {"label": "shirt", "suggested_label": "t-shirt", "sha1": "abc", "mislabel_score": 0.9,
        "quality_flags": ["mislabel"], "neighbour_agreement": 0.2}


# ---------------------------------------------------------------- the rule


def test_a_kept_decision_holds_until_the_data_change() -> None:
    entry = new_entry("mislabel", KEPT, BASE, at="2026-01-01T00:00:00+00:00")
    assert entry == {"decision": "kept", "at": "2026-01-01T00:00:00+00:00", "sha1": "abc", "label": "shirt",
                     "suggested": "t-shirt"}
    assert applies("mislabel", entry, BASE)
    assert applies("mislabel", entry, {**BASE, "mislabel_score": 0.6})  # a new score alone changes nothing
    assert applies("mislabel", entry, {**BASE, "suggested_label": "shirt"})  # the analysis now agrees
    assert not applies("mislabel", entry, {**BASE, "suggested_label": "pullover"})  # new suggestion
    assert not applies("mislabel", entry, {**BASE, "label": "dress"})  # relabelled elsewhere
    assert not applies("mislabel", entry, {**BASE, "sha1": "other"})  # the image changed
    changed = {**BASE, "label": "dress", "review": {"mislabel": entry}}
    assert status("mislabel", changed, in_queue=True) == PENDING
    assert status("mislabel", {**BASE, "review": {"mislabel": entry}}, in_queue=True) == KEPT
    assert status("mislabel", {**BASE, "quality_flags": []}, in_queue=False) is None


def test_an_accepted_decision_is_recorded_on_the_new_label() -> None:
    relabelled = {**BASE, "label": "t-shirt", "original_label": "shirt"}
    entry = new_entry("mislabel", ACCEPTED, relabelled, previous_label="shirt")
    assert (entry["label"], entry["suggested"], entry["previous"]) == ("t-shirt", "t-shirt", "shirt")
    assert applies("mislabel", entry, relabelled)
    assert applies("mislabel", entry, {**relabelled, "suggested_label": "t-shirt"})  # after re-analysis
    assert not applies("mislabel", entry, {**relabelled, "label": "shirt"})  # undone elsewhere


def test_duplicate_and_outlier_decisions() -> None:
    group = group_fingerprint(["b", "a"])
    assert group == group_fingerprint(["a", "b"]) != group_fingerprint(["a", "b", "c"])
    entry = new_entry("duplicate", TAGGED, BASE, group=group, tag="duplicate")
    assert applies("duplicate", entry, BASE, group) and not applies("duplicate", entry, BASE, group_fingerprint("ac"))
    outlier = new_entry("outlier", "excluded", BASE)
    assert applies("outlier", outlier, {**BASE, "label": "anything"}) and not applies("outlier", outlier, {"sha1": "x"})
    with pytest.raises(ReviewError, match="accepted, kept, tagged"):
        new_entry("mislabel", "excluded", BASE)


def test_status_filter_parsing() -> None:
    assert parse_status_filter("accepted") == ("mislabel", "accepted")
    assert parse_status_filter("outlier:pending") == ("outlier", "pending")
    assert parse_status_filter("duplicate:reviewed") == ("duplicate", "reviewed")
    with pytest.raises(ReviewError, match="kept, excluded, tagged"):
        parse_status_filter("outlier:accepted")
    with pytest.raises(ReviewError, match="unknown issue"):
        parse_status_filter("blurry:kept")


# ---------------------------------------------------------------- queues


def _payloads() -> dict[str, dict[str, Any]]:
    rows = {
        "p1": ("shirt", "t-shirt", 0.90, 0.30), "p2": ("shirt", "t-shirt", 0.90, 0.10),
        "p3": ("coat", "pullover", 0.95, 0.00), "p4": ("t-shirt", "shirt", 0.60, 0.40),
        "p5": ("coat", "pullover", 0.30, 0.70),  # not flagged; only in a widened queue
    }
    return {pid: {"label": label, "suggested_label": suggested, "mislabel_score": score, "sha1": pid,
                  "neighbour_agreement": agreement, "quality_flags": ["mislabel"] if score > 0.5 else []}
            for pid, (label, suggested, score, agreement) in rows.items()}


def test_queue_order_breaks_ties_by_neighbour_agreement() -> None:
    items = queue_items(_payloads(), "mislabel")
    assert [i.key for i in items] == ["p3", "p2", "p1", "p4", "p5"]  # p2 before p1: its neighbours agree less
    assert [i.key for i in select(items, QueueFilter())] == ["p3", "p2", "p1", "p4"]  # flagged only
    assert [i.key for i in select(items, QueueFilter(), skipped=["p2", "p3"])] == ["p1", "p4", "p2", "p3"]
    assert order(reversed(items)) == items


def test_queue_filters_and_progress() -> None:
    payloads = _payloads()
    payloads["p1"]["review"] = {"mislabel": new_entry("mislabel", KEPT, payloads["p1"])}
    items = queue_items(payloads, "mislabel")
    shirts = QueueFilter(pair=("t-shirt", "shirt"))
    assert [i.key for i in select(items, shirts)] == ["p2", "p1", "p4"]
    assert [i.key for i in select(items, QueueFilter(label="pullover"))] == ["p3"]
    assert [i.key for i in select(items, QueueFilter(score_range=(0.7, 0.92)))] == ["p2", "p1"]
    assert [i.key for i in select(items, QueueFilter(statuses=(PENDING,)))] == ["p3", "p2", "p4"]
    assert [i.key for i in select(items, QueueFilter(statuses=(REVIEWED,)))] == ["p1"]
    assert [i.key for i in select(items, QueueFilter(min_score=0.2))] == ["p3", "p2", "p1", "p4", "p5"]
    assert progress(items, shirts) == (1, 3) and progress(items, QueueFilter()) == (1, 4)
    assert pair_counts(items) == [("shirt", "t-shirt", 3, 2), ("coat", "pullover", 1, 1)]


def test_duplicate_groups_are_one_item() -> None:
    payloads = {p: {"label": "cat", "sha1": p, "duplicate_group": 0} for p in ("a", "b", "c")}
    payloads["d"] = {"label": "dog", "sha1": "d", "duplicate_group": 1}  # alone: not a group
    [item] = queue_items(payloads, "duplicate")
    assert item.ids == ("a", "b", "c") and item.status == PENDING and item.key == group_fingerprint("abc")
    payloads["a"]["review"] = {"duplicate": new_entry("duplicate", KEPT, payloads["a"], group=item.key)}
    assert queue_items(payloads, "duplicate")[0].status == PENDING  # b and c undecided
    for p in ("b", "c"):
        payloads[p]["review"] = {"duplicate": new_entry("duplicate", TAGGED, payloads[p], group=item.key)}
    assert queue_items(payloads, "duplicate")[0].status == TAGGED


# ---------------------------------------------------------------- the book over a store


def _analysed(store: Store, tmp: Path):
    """The action-test collection with analysis fields as `analyze` writes them."""
    collection, payloads, _ = build_collection(store, tmp / "images")
    ids = sorted(payloads)
    flagged = [pid for pid in ids if payloads[pid]["label"] != "dog" and "excluded" not in payloads[pid]["tags"]][:6]
    collection.set_payloads(ids, [{"suggested_label": "dog" if pid in flagged else payloads[pid]["label"],
                                   "quality_flags": ["mislabel"] if pid in flagged else [],
                                   "neighbour_agreement": 0.5} for pid in ids])
    return collection, flagged


def test_book_writes_decisions_into_the_payload_and_reads_them_back(store: Store, tmp_path: Path) -> None:
    collection, flagged = _analysed(store, tmp_path)
    book = ReviewBook(collection)
    assert book.progress("mislabel", QueueFilter()) == (0, 6)
    assert book.decide("mislabel", flagged[:2], KEPT) == 2
    stored = collection.retrieve(flagged[:1], ["review"])[0].payload["review"]["mislabel"]
    assert stored["decision"] == "kept" and stored["suggested"] == "dog" and stored["at"]
    assert book.progress("mislabel", QueueFilter()) == (2, 6)
    assert [i.key for i in book.queue("mislabel", QueueFilter(statuses=(PENDING,)))] == [
        i.key for i in book.items("mislabel") if i.key not in flagged[:2]]
    # Another book (a restarted app) sees the same decisions.
    assert ReviewBook(collection).progress("mislabel", QueueFilter()) == (2, 6)
    assert set(matching_ids(collection, "mislabel", "kept")) == set(flagged[:2])
    assert set(matching_ids(collection, "mislabel", "pending")) == set(flagged[2:])
    # Undo removes the field; a re-analysis with a new suggestion makes a decision pending again.
    assert book.undo("mislabel", flagged[:1]) == 1
    assert "review" not in collection.retrieve(flagged[:1], ["review"])[0].payload
    collection.set_payload(flagged[1:2], {"suggested_label": "fox"})  # neither the label nor "dog"
    book.refresh(flagged[1:2])
    assert book.progress("mislabel", QueueFilter()) == (0, 6)
    assert matching_ids(collection, "mislabel", "kept") == []


def test_decisions_survive_closing_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store = open_store(path=str(tmp_path / "qdrant"))
    collection, flagged = _analysed(store, tmp_path)
    ReviewBook(collection).decide("mislabel", flagged[:3], TAGGED, tag="check")
    store.close()
    store = open_store(path=str(tmp_path / "qdrant"))
    try:
        book = ReviewBook(store.open("things"))
        assert book.progress("mislabel", QueueFilter()) == (3, 6)
        assert book.entry("mislabel", flagged[0])["tag"] == "check"
    finally:
        store.close()


# ---------------------------------------------------------------- command line and exports


@pytest.fixture
def reviewed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("EMBEDSCAPE_ARTIFACTS", str(tmp_path / "artifacts"))
    store = open_store(path=str(tmp_path / "qdrant"))
    collection, flagged = _analysed(store, tmp_path)
    previous = collection.retrieve(flagged[:1], ["label"])[0].payload["label"]
    collection.relabel(flagged[:1], "dog")
    book = ReviewBook(collection)
    book.decide("mislabel", flagged[:1], ACCEPTED, previous_label=previous)
    book.decide("mislabel", flagged[1:3], KEPT)
    collection.set_payload(flagged[3:4], {"prediction": "bird"})
    store.close()
    return tmp_path, flagged, previous


def test_export_review_filter_on_the_command_line(reviewed, capsys) -> None:
    tmp, flagged, _ = reviewed
    for wanted, expected in (("kept", flagged[1:3]), ("accepted", flagged[:1]), ("pending", flagged[3:]),
                             ("mislabel:reviewed", flagged[:3])):
        out = tmp / f"{wanted.replace(':', '-')}.jsonl"
        assert app.main(["--qdrant-path", str(tmp / "qdrant"), "export", "--collection", "things", "--format",
                         "jsonl", "--out", str(out), "--review", wanted]) == 0
        assert {json.loads(line)["id"] for line in out.read_text().splitlines()} == set(expected), wanted
    assert app.main(["--qdrant-path", str(tmp / "qdrant"), "export", "--collection", "things", "--out",
                     str(tmp / "x.csv"), "--review", "outlier:accepted"]) != 0
    assert "kept, excluded, tagged" in capsys.readouterr().err


def test_exports_carry_every_payload_field_and_flag_columns(reviewed) -> None:
    tmp, flagged, previous = reviewed
    out = tmp / "all.csv"
    assert app.main(["--qdrant-path", str(tmp / "qdrant"), "export", "--collection", "things", "--out", str(out)]) == 0
    rows = {row["id"]: row for row in csv.DictReader(out.open(newline=""))}
    assert {"suggested_label", "quality_flags", "original_label", "prediction", "review", "sha1",
            "mislabel_flag", "outlier_flag", "duplicate_flag", "mislabel_review"} <= set(next(iter(rows.values())))
    accepted = rows[flagged[0]]
    assert (accepted["label"], accepted["original_label"], accepted["suggested_label"]) == ("dog", previous, "dog")
    assert accepted["mislabel_flag"] == "True" and accepted["mislabel_review"] == "accepted"
    assert json.loads(accepted["review"])["mislabel"]["decision"] == "accepted"
    unflagged = [row for pid, row in rows.items() if pid not in flagged]
    assert unflagged and all(r["mislabel_flag"] == "False" and r["mislabel_review"] == "" for r in unflagged)
    jsonl = tmp / "all.jsonl"
    app.main(["--qdrant-path", str(tmp / "qdrant"), "export", "--collection", "things", "--format", "jsonl",
              "--out", str(jsonl)])
    records = {json.loads(line)["id"]: json.loads(line) for line in jsonl.read_text().splitlines()}
    assert records[flagged[3]]["prediction"] == "bird" and records[flagged[3]]["mislabel_review"] == "pending"
    assert records[flagged[1]]["review"]["mislabel"]["decision"] == "kept"
    assert records[flagged[1]]["quality_flags"] == ["mislabel"] and records[flagged[1]]["mislabel_flag"] is True
