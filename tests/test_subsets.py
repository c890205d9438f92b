"""Saved subsets in the payloads: save, list, rename, delete, compare (both backends)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ks_2samp

from actions_helpers import build_collection
from actions.tagging import exclude
from filters import FilterSpec, matching_ids
from store import Store, StoreError
from store.schema import SUBSETS as SUBSET_FIELD
from subsets.compare import class_rows, compare_saved_subsets, field_rows, format_comparison
from subsets.saved import (
    delete_subset, list_subsets, rename_subset, save_subset, subset_arrays, subset_filter, subset_ids,
    validate_subset_name,
)


def test_save_list_rename_delete(store: Store) -> None:
    collection, payloads, _ = build_collection(store)
    cats = matching_ids(collection, FilterSpec(labels=["cat"]))
    snowy = matching_ids(collection, FilterSpec(tags_any=["snowy"]))
    assert save_subset(collection, "cats", cats, description="label cat") == len(cats) == 10
    assert save_subset(collection, "snowy", snowy) == 8
    subsets = list_subsets(collection)
    assert {n: s.count for n, s in subsets.items()} == {"cats": 10, "snowy": 8}
    assert subsets["cats"].description == "label cat" and subsets["cats"].created_at
    assert collection.read_metadata()[SUBSET_FIELD]["cats"]["description"] == "label cat"
    # Membership is a payload list any Qdrant tool can filter on.
    both = set(cats) & set(snowy)
    for record in collection.retrieve(list(both), [SUBSET_FIELD]):
        assert sorted(record.payload[SUBSET_FIELD]) == ["cats", "snowy"]
    assert collection.count(subset_filter("cats")) == 10
    with pytest.raises(StoreError, match="already exists"):
        save_subset(collection, "cats", snowy)
    assert save_subset(collection, "cats", cats[:4], replace=True) == 4
    assert set(subset_ids(collection, "cats")) == set(cats[:4])

    assert rename_subset(collection, "cats", "some cats") == 4
    assert set(list_subsets(collection)) == {"some cats", "snowy"}
    assert set(subset_ids(collection, "some cats")) == set(cats[:4])
    assert collection.count(subset_filter("cats")) == 0
    with pytest.raises(StoreError, match="already exists"):
        rename_subset(collection, "some cats", "snowy")
    with pytest.raises(StoreError, match="no subset 'cats'"):
        rename_subset(collection, "cats", "x")

    assert delete_subset(collection, "snowy") == 8
    assert set(list_subsets(collection)) == {"some cats"}
    assert collection.count() == 30  # the points stay
    assert all(not r.payload.get(SUBSET_FIELD) for r in collection.retrieve(snowy, [SUBSET_FIELD])
               if r.id not in cats[:4])
    with pytest.raises(StoreError, match="no subset 'snowy'"):
        delete_subset(collection, "snowy")
    with pytest.raises(StoreError, match="selection is empty"):
        save_subset(collection, "none", [])


@pytest.mark.parametrize("name", ["a/b", "..", "../up", "a\\b", "", " lead", ".hidden", "x" * 101])
def test_subset_names_with_path_separators_are_refused(name: str) -> None:
    with pytest.raises(StoreError, match="invalid subset name"):
        validate_subset_name(name)


def test_compare_matches_scipy_on_the_same_arrays(store: Store) -> None:
    collection, payloads, _ = build_collection(store)
    low = matching_ids(collection, FilterSpec(ranges={"mislabel_score": (None, 0.5)}))
    high = matching_ids(collection, FilterSpec(ranges={"mislabel_score": (0.4, None)}))
    save_subset(collection, "low", low)
    save_subset(collection, "high", high)
    result = compare_saved_subsets(collection, "low", "high")
    assert (result.size_a, result.size_b) == (len(low), len(high))
    assert result.overlap == len(set(low) & set(high))
    for name in ("mislabel_score", "brightness"):
        a = np.array([payloads[i][name] for i in low], dtype=float)
        b = np.array([payloads[i][name] for i in high], dtype=float)
        expected = ks_2samp(a, b)
        assert result.fields[name].p_value == pytest.approx(expected.pvalue)
        assert result.fields[name].statistic == pytest.approx(expected.statistic)
    assert "x" not in result.fields and "y" not in result.fields
    assert result.fields["mislabel_score"].p_value < 0.01
    assert result.classes == ["bird", "cat", "dog"]
    for cls, share in zip(result.classes, result.share_a):
        assert share == pytest.approx(sum(payloads[i]["label"] == cls for i in low) / len(low))
    assert class_rows(result)[0]["difference"] == pytest.approx(max(result.share_diff, key=abs))
    assert field_rows(result)[0]["field"] == "mislabel_score"
    text = format_comparison(result, "low", "high")
    assert "subset A: low (15 points)" in text and "mislabel_score" in text and "KS p-value" in text
    # Excluded points leave the comparison by default.
    exclude(collection, low[:2])
    assert compare_saved_subsets(collection, "low", "high").size_a == len(low) - 2
    assert compare_saved_subsets(collection, "low", "high", include_excluded=True).size_a == len(low)
    with pytest.raises(StoreError, match="no subset 'nope'"):
        compare_saved_subsets(collection, "low", "nope")


def test_subset_arrays_line_up(store: Store) -> None:
    collection, payloads, _ = build_collection(store)
    ids = sorted(payloads)
    save_subset(collection, "a", ids[:12])
    save_subset(collection, "b", ids[8:20])
    arrays = subset_arrays(collection, "a", "b")
    assert len(arrays.ids) == 20 and int(arrays.a_mask.sum()) == 12 and int(arrays.b_mask.sum()) == 12
    for row, pid in enumerate(arrays.ids):
        assert arrays.labels[row] == payloads[pid]["label"]
        assert arrays.numeric["brightness"][row] == payloads[pid]["brightness"]
        assert arrays.a_mask[row] == (pid in ids[:12]) and arrays.b_mask[row] == (pid in ids[8:20])
