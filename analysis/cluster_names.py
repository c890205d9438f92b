"""Honest names for clusters: what a user can check against the cluster's own points.

    name_clusters(stats)      # sets `name` on each analysis.clusters.ClusterStats, largest first

The rule, in order (constants below):

1. **Labels**: where most members are labelled (over LABELLED_MAJORITY), the name is made of
   the labels that each hold at least LABEL_IN_NAME of the labelled members (up to
   MAX_LABELS, most common first), e.g. "sneaker" or "coat / shirt", provided together they
   cover at least NAMED_COVER of them.
2. **The model's word**: otherwise a content word (the model's own class: mobilenet-v2's
   ImageNet head, CLIP zero-shot) names the cluster only when at least WORD_MAJORITY of the
   scored members show it *confidently* (the caller marks which: see `confident_content`).
   An ImageNet model shown clothes calls a coat "nipple" and a boot "hatchet" with low
   confidence; such words never reach a name.
3. **Neither**: "cluster 7", followed by its label shares where it has labels
   ("cluster 7: shirt 38%, coat 21%").

A name already used by a larger cluster gets the cluster's number: "bag (cluster 9)".
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analysis.clusters import ClusterStats

LABELLED_MAJORITY = 0.5   # more than this share of members labelled: the labels name it
LABEL_IN_NAME = 0.2       # a label with at least this share of the labelled members joins the name
NAMED_COVER = 0.6         # the labels in a name cover at least this share of the labelled members
MAX_LABELS = 3
WORD_MAJORITY = 0.5       # a model word names a cluster when this share of scored members confidently show it
SHARES_SHOWN = 2          # label shares written after "cluster N"


def label_name(stats: ClusterStats) -> str:
    """The name made of the cluster's labels, or "" when they do not describe it (too few
    members labelled, or no few labels cover most of them)."""
    if not stats.labels or stats.labelled <= LABELLED_MAJORITY * stats.size:
        return ""
    named = [(label, count) for label, count in stats.labels[:MAX_LABELS]
             if count >= LABEL_IN_NAME * stats.labelled]
    if sum(count for _, count in named) < NAMED_COVER * stats.labelled:
        return ""
    return " / ".join(label for label, _ in named)


def word_name(stats: ClusterStats) -> str:
    """The model's word that most scored members show with confidence, or ""."""
    if not stats.confident_content:
        return ""
    word, share = stats.confident_content[0]
    return word if share >= WORD_MAJORITY else ""


def numbered_name(stats: ClusterStats) -> str:
    """"cluster N", with the shares of its most common labels among all its members."""
    name = f"cluster {stats.id}"
    shares = [f"{label} {count / stats.size:.0%}" for label, count in stats.labels[:SHARES_SHOWN] if stats.size]
    return f"{name}: {', '.join(shares)}" if shares else name


def cluster_name(stats: ClusterStats) -> str:
    return label_name(stats) or word_name(stats) or numbered_name(stats)


def name_clusters(stats: Sequence[ClusterStats]) -> None:
    """Name every cluster (largest first); a name a larger cluster already has gets the number."""
    taken: set[str] = set()
    for s in sorted(stats, key=lambda s: (-s.size, s.id)):
        name = cluster_name(s)
        if name in taken:
            name = f"{name} (cluster {s.id})"
        taken.add(name)
        s.name = name
