"""The one module that edits points (actions/edits.py): the command line's writer (the
collection) and the app's (its PointTable) give the same stored payloads for the same edits,
the tag rule is applied before anything is written, and a review decision made through either
writer is the same record."""
from __future__ import annotations

from pathlib import Path

import pytest

from actions.edits import CollectionWriter, PointEditor
from conftest import build_ui_collection
from review import ACCEPTED, QueueFilter, ReviewBook, TAGGED
from scoring.analyze import analyze_collection
from store import point_id
from store.schema import InvalidTag
from ui.table import PointTable

CATS = [point_id(f"cat/{i:03d}.png") for i in range(6)]
DOGS = [point_id(f"dog/{i:03d}.png") for i in range(3)]
FIELDS = ["label", "original_label", "tags"]


def edit_everything(editor: PointEditor) -> None:
    points = editor.writer.points_of
    assert editor.add_tag(points(CATS), "  snowy day ") == ("snowy day", len(CATS))
    assert editor.remove_tag(points(CATS[:2]), "snowy day") == ("snowy day", 2)
    assert editor.exclude(points(DOGS)) == len(DOGS)
    assert editor.restore(points(DOGS[:1])) == 1
    assert editor.relabel(points(CATS[:3]), "lynx") == 3
    assert editor.restore_labels(points(CATS[:1])) == 1


@pytest.fixture
def two_collections(tmp_path: Path):
    """The same collection twice: one edited as the command line does, one as the app does."""
    opened = [build_ui_collection(tmp_path / name) for name in ("cli", "app")]
    yield opened[0][1], opened[1][1]
    for store, _, _ in opened:
        store.close()


def test_the_command_line_and_the_app_write_the_same_edits(two_collections) -> None:
    cli, app = two_collections
    table = PointTable(app)
    edit_everything(PointEditor(CollectionWriter(cli)))
    edit_everything(PointEditor(table))
    ids = CATS + DOGS
    stored = [{k: r.payload.get(k) for k in FIELDS} for c in (cli, app) for r in c.retrieve(ids, FIELDS)]
    assert stored[:len(ids)] == stored[len(ids):]
    by_id = {r.id: r.payload for r in cli.retrieve(ids, FIELDS)}
    assert by_id[CATS[0]]["label"] == "cat" and by_id[CATS[1]]["label"] == "lynx"
    assert by_id[CATS[1]]["original_label"] == "cat" and by_id[CATS[5]]["tags"] == ["snowy day"]
    assert by_id[DOGS[0]]["tags"] == [] and by_id[DOGS[2]]["tags"] == ["excluded"]
    # The app's in-memory copy follows its writes.
    rows = table.rows_for_ids(ids)
    assert table.tags_of(rows) == [list(by_id[i]["tags"]) for i in ids]
    assert [table.label_of(int(r)) for r in rows] == [by_id[i]["label"] for i in ids]


@pytest.mark.parametrize("bad", ["", "a\tb", "two\nlines", "x" * 101])
def test_a_bad_tag_writes_nothing_through_either_writer(two_collections, bad: str) -> None:
    cli, app = two_collections
    for editor in (PointEditor(CollectionWriter(cli)), PointEditor(PointTable(app))):
        with pytest.raises(InvalidTag, match="1-100 characters on one line"):
            editor.add_tag(editor.writer.points_of(CATS), bad)
    assert cli.tag_counts() == {} and app.tag_counts() == {}


def test_no_points_writes_nothing_but_still_checks_the_tag(two_collections) -> None:
    cli, _ = two_collections
    editor = PointEditor(CollectionWriter(cli))
    assert editor.add_tag([], " fine ") == ("fine", 0)
    with pytest.raises(InvalidTag):
        editor.add_tag([], "a\nb")
    assert cli.tag_counts() == {}


def test_review_decisions_from_the_command_line_writer(two_collections) -> None:
    """Accept a suggested label with the collection as the writer; a new decision with a bad
    tag is refused before the old one is undone (nothing lost); undo gives the label back."""
    collection, _ = two_collections
    collection.set_payload([CATS[0]], {"label": "dog"})
    analyze_collection(collection, add_metrics=False)
    book = ReviewBook(collection)
    editor = PointEditor(CollectionWriter(collection), book)
    item = book.item("mislabel", CATS[0])
    assert (item.label, item.suggested) == ("dog", "cat")
    assert editor.decide(item, "accept").decision == ACCEPTED
    after = collection.retrieve([CATS[0]], FIELDS + ["review"])[0].payload
    assert after["label"] == "cat" and after["review"]["mislabel"]["decision"] == ACCEPTED
    with pytest.raises(InvalidTag):
        editor.decide(book.item("mislabel", CATS[0]), "tag", "a\tb", replace=True)
    assert collection.retrieve([CATS[0]], ["label"])[0].payload["label"] == "cat"
    assert book.item("mislabel", CATS[0]).status == ACCEPTED
    done = editor.decide(book.item("mislabel", CATS[0]), "tag", " check me ", replace=True)
    assert (done.decision, done.tag) == (TAGGED, "check me")
    assert collection.retrieve([CATS[0]], ["label", "tags"])[0].payload == {"label": "dog", "tags": ["check me"]}
    editor.undo("mislabel", [CATS[0]])
    assert collection.retrieve([CATS[0]], ["tags"])[0].payload["tags"] == []
    assert book.progress("mislabel", QueueFilter()) == (0, len(book.queue("mislabel", QueueFilter())))


def test_a_decision_needs_the_review_book(two_collections) -> None:
    collection, _ = two_collections
    collection.set_payload([CATS[0]], {"label": "dog"})
    analyze_collection(collection, add_metrics=False)
    item = ReviewBook(collection).item("mislabel", CATS[0])
    with pytest.raises(ValueError, match="ReviewBook"):
        PointEditor(CollectionWriter(collection)).decide(item, "keep")
