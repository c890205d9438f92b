"""Filters from the app or the command line: combined, validated, and the `excluded` default."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from actions_helpers import build_collection, ids_where, visible
from actions.tagging import exclude, restore, tag_matching
from filters import FilterSpec, SelectionError, count_matching, default_filter, matching_ids
from filters.cli import add_filter_arguments, parse_range, spec_from_args
from store import Store
from store.schema import EXCLUDED_TAG
from subsets.saved import save_subset


def test_filters_combine_with_and(store: Store) -> None:
    collection, payloads, _ = build_collection(store)
    cases = [
        (FilterSpec(tags_any=["snowy", "blurry"]), lambda p: {"snowy", "blurry"} & set(p["tags"])),
        (FilterSpec(tags_all=["snowy", "blurry"]), lambda p: {"snowy", "blurry"} <= set(p["tags"])),
        (FilterSpec(tags_none=["snowy"], labels=["cat"]), lambda p: "snowy" not in p["tags"] and p["label"] == "cat"),
        (FilterSpec(labels=["dog", "bird"], ranges={"mislabel_score": (0.5, None)}),
         lambda p: p["label"] in ("dog", "bird") and p["mislabel_score"] >= 0.5),
        (FilterSpec(ranges={"brightness": (10, 60), "mislabel_score": (None, 0.8)}),
         lambda p: 10 <= p["brightness"] <= 60 and p["mislabel_score"] <= 0.8),
    ]
    for spec, keep in cases:
        expected = ids_where(payloads, lambda p: visible(p) and keep(p))
        assert set(matching_ids(collection, spec, require=False)) == expected, spec.describe()
        assert count_matching(collection, spec) == len(expected)
    some = sorted(payloads)[:10]
    spec = FilterSpec(ids=some, tags_any=["snowy"])
    assert set(matching_ids(collection, spec)) == {
        i for i in some if visible(payloads[i]) and "snowy" in payloads[i]["tags"]}
    assert count_matching(collection, FilterSpec(ids=[])) == 0
    save_subset(collection, "firsts", some)
    assert set(matching_ids(collection, FilterSpec(subset="firsts", labels=["cat"]))) == {
        i for i in some if visible(payloads[i]) and payloads[i]["label"] == "cat"}


def test_exclusion_hides_points_until_restored(store: Store) -> None:
    collection, payloads, _ = build_collection(store)
    assert default_filter().tags_none == [EXCLUDED_TAG] and default_filter(include_excluded=True).is_empty()
    assert count_matching(collection, FilterSpec()) == 29
    assert count_matching(collection, FilterSpec(include_excluded=True)) == 30
    cats = matching_ids(collection, FilterSpec(labels=["cat"]))
    assert exclude(collection, cats[:3]) == 3
    assert count_matching(collection, FilterSpec()) == 26
    assert collection.count(default_filter()) == 26
    assert count_matching(collection, FilterSpec(tags_any=[EXCLUDED_TAG])) == 4  # asking for them shows them
    assert restore(collection, cats[:3]) == 3
    assert count_matching(collection, FilterSpec()) == 29
    # Removing the tag by filter reaches the excluded points without --include-excluded.
    assert tag_matching(collection, FilterSpec(labels=["dog"]), remove=EXCLUDED_TAG) == (10, 1)
    assert count_matching(collection, FilterSpec()) == 30


def test_unknown_names_say_what_exists(store: Store) -> None:
    collection, _, _ = build_collection(store)
    with pytest.raises(SelectionError, match=r"no points have tag 'rainy'; known tags: snowy \(8\), blurry"):
        FilterSpec(tags_any=["rainy"]).resolve(collection)
    with pytest.raises(SelectionError, match="no points have label 'cow'; known labels: .*cat"):
        FilterSpec(labels=["cow"]).resolve(collection)
    with pytest.raises(SelectionError, match="no subset 'nope' in collection 'things'; subsets: none"):
        FilterSpec(subset="nope").resolve(collection)
    with pytest.raises(SelectionError, match="empty"):
        FilterSpec(ranges={"x": (3, 1)}).resolve(collection)
    FilterSpec(tags_none=["rainy"]).resolve(collection)  # excluding an unknown tag is harmless


def test_command_line_flags_make_the_same_spec(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_filter_arguments(parser)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("a\n\nb\n")
    args = parser.parse_args(["--tag", "x", "--tag", "y", "--tag-all", "z", "--tag-none", "w", "--label", "cat",
                              "--subset", "s", "--range", "score:0.5:", "--range", "b::2", "--ids-file", str(ids_file),
                              "--include-excluded"])
    spec = spec_from_args(args)
    assert spec == FilterSpec(tags_any=["x", "y"], tags_all=["z"], tags_none=["w"], labels=["cat"], subset="s",
                              ids=["a", "b"], ranges={"score": (0.5, None), "b": (None, 2.0)}, include_excluded=True)
    flt = spec.to_filter()
    assert flt.values == {"subsets": ["s"]} and flt.tags_none == ["w"]
    assert spec_from_args(parser.parse_args([])).to_filter().tags_none == [EXCLUDED_TAG]
    for bad in ("score", "score:1", "score:a:2", "score:inf:"):
        with pytest.raises(SelectionError, match="bad --range"):
            parse_range(bad)
    with pytest.raises(SelectionError, match="cannot read --ids-file"):
        spec_from_args(parser.parse_args(["--ids-file", str(tmp_path / "missing.txt")]))


def test_one_tag_rule_for_store_and_command_line(store: Store) -> None:
    from store.schema import TAG_MAX_LENGTH, InvalidTag, validate_tag

    assert validate_tag("  snowy day ") == "snowy day"
    assert validate_tag("x" * TAG_MAX_LENGTH) == "x" * TAG_MAX_LENGTH
    for bad in ("", "   ", "x" * (TAG_MAX_LENGTH + 1), "a\tb", "a\nb", "a\x00b", "a\x7fb"):
        with pytest.raises(InvalidTag, match="1-100 characters on one line"):
            validate_tag(bad)
    collection, _, _ = build_collection(store)
    ids = matching_ids(collection, FilterSpec(labels=["cat"]))
    with pytest.raises(InvalidTag):
        collection.add_tag(ids, "two\nlines")
    with pytest.raises(InvalidTag):
        tag_matching(collection, FilterSpec(labels=["cat"]), add="x" * (TAG_MAX_LENGTH + 1))
    assert collection.tag_counts().get("two\nlines") is None
