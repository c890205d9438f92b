"""The payload schema: every field embedscape writes into a Qdrant point, declared once.

Each field is a `PayloadField`: its name, value type, whether it holds a list, whether Qdrant
keeps a payload index on it (so filters and facets on it are fast, for us and for other tools),
and whether the app shows it (the explorer's table, sort, colour and metric lists). Store,
indexer, scoring, export and ui import the names from here instead of typing them out, so
adding a score means adding one line below (and README's payload table).

Also here: the tag rule (`validate_tag`) and the tag with a meaning of its own (`EXCLUDED_TAG`),
which the command line, the app and the store all apply the same way.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["keyword", "float", "integer", "bool", "object"]


@dataclass(frozen=True)
class PayloadField:
    name: str
    kind: Kind
    indexed: bool = False
    is_list: bool = False
    shown: bool = True  # False: no page shows it, so the app does not keep it in memory
    description: str = ""

    @property
    def numeric(self) -> bool:
        return self.kind in ("float", "integer")


# --- names ---------------------------------------------------------------------------------
PATH, LABEL, LABELS, TAGS, SPLIT = "path", "label", "labels", "tags", "split"
X, Y = "x", "y"
WIDTH, HEIGHT, SHA1 = "width", "height", "sha1"
SUBSETS = "subsets"
BRIGHTNESS, CONTRAST, SHARPNESS = "brightness", "contrast", "sharpness"
COLOURFULNESS, ASPECT_RATIO, AREA = "colourfulness", "aspect_ratio", "area"
MISLABEL_SCORE, SUGGESTED_LABEL = "mislabel_score", "suggested_label"
NEIGHBOUR_AGREEMENT, PROBE_AGREEMENT = "neighbour_agreement", "probe_agreement"
OUTLIER_SCORE, UNIQUENESS = "outlier_score", "uniqueness"
DUPLICATE_GROUP, EXACT_DUPLICATE_GROUP = "duplicate_group", "exact_duplicate_group"
SPLIT_LEAK_GROUP = "split_leak_group"
QUALITY_FLAGS = "quality_flags"
CLUSTER = "cluster"
ORIGINAL_LABEL = "original_label"
REVIEW = "review"
PREDICTION, PREDICTION_CONFIDENCE, PREDICTION_CORRECT = "prediction", "prediction_confidence", "prediction_correct"
PREDICTION_PROBABILITIES = "prediction_probabilities"
# Object (bounding-box) points: one per labelled box, in the collection NAME-objects.
IMAGE_ID, ANNOTATION_ID, BBOX = "image_id", "annotation_id", "bbox"
IMAGE_WIDTH, IMAGE_HEIGHT = "image_width", "image_height"
DUPLICATE_BOX_GROUP, MAX_BOX_IOU = "duplicate_box_group", "max_box_iou"
MODEL_OVERLAP = "model_overlap"  # two embedding models of the collection compared (compare-models)
MISLABEL_FLAGGED_BY = "mislabel_flagged_by"  # the vectors whose analysis flags the label (analyze --vector)
SCORES_BY_VECTOR = "scores_by_vector"  # a named vector's own scores (analyze --vector): {NAME2: {SCORE_FIELDS}}
# Per-channel colour (images and boxes) and the object metrics (analysis/object_metrics.py).
RED, GREEN, BLUE = "red", "green", "blue"
RELATIVE_AREA, BORDER_DISTANCE, SHAPE_SCORE = "relative_area", "border_distance", "shape_score"
OBJECT_COUNT, OBJECT_DENSITY = "object_count", "object_density"
MASK, MASK_FILL, POLYGON_VERTICES = "mask", "mask_fill", "polygon_vertices"
# Object points against a detector's run (evaluation/): what happened to the labelled box.
DETECTION_OUTCOME, DETECTION_IOU, DETECTION_SCORE = "detection_outcome", "detection_iou", "detection_score"
DETECTION_REASON = "detection_reason"
LOOKALIKES_FOUND = "lookalikes_found"
ORIGINAL_BBOX = "original_bbox"  # object points: the box before a move accepted in review
SOURCE = "source"  # object points: where the box comes from (absent: the labels file)
ADDED_SOURCE = "added"  # a detector's box a user accepted as a missing label (evaluation/accept.py)
PREDICTION_SOURCE = "prediction"  # a detector's false positive drawn on the map, never a label
LABEL_SOURCE = "label"  # how exports name an absent source: the box comes from the labels file
# Prediction points (evaluation/prediction_points.py): the run, the predicted class, the ranking's score.
PREDICTION_RUN, PREDICTED_LABEL, MISSING_LABEL_SCORE = "prediction_run", "predicted_label", "missing_label_score"

# --- the fields ----------------------------------------------------------------------------
_FIELDS = (
    PayloadField(PATH, "keyword", description="path relative to the source root (POSIX)"),
    PayloadField(LABEL, "keyword", indexed=True, description="the point's label ('' when unlabelled)"),
    PayloadField(LABELS, "keyword", is_list=True, shown=False, description="every label of the source"),
    PayloadField(TAGS, "keyword", indexed=True, is_list=True, description="tags written by the app, CLI or tools"),
    PayloadField(SPLIT, "keyword", indexed=True, description="e.g. train / test, from a labels file"),
    PayloadField(X, "float", description="position on the 2D map"),
    PayloadField(Y, "float", description="position on the 2D map"),
    PayloadField(WIDTH, "integer", description="pixel width after EXIF rotation"),
    PayloadField(HEIGHT, "integer", description="pixel height after EXIF rotation"),
    PayloadField(SHA1, "keyword", shown=False,
                 description="content hash of the file (object points: of the file and the box)"),
    PayloadField(SUBSETS, "keyword", indexed=True, is_list=True, description="named subsets of the point"),
    PayloadField(BRIGHTNESS, "float", indexed=True, description="mean luma, 0..1"),
    PayloadField(CONTRAST, "float", indexed=True, description="standard deviation of luma, 0..0.5"),
    PayloadField(SHARPNESS, "float", indexed=True, description="variance of the Laplacian of luma"),
    PayloadField(COLOURFULNESS, "float", indexed=True, description="Hasler & Suesstrunk colourfulness"),
    PayloadField(ASPECT_RATIO, "float", indexed=True, description="width / height"),
    PayloadField(AREA, "float", indexed=True, description="width * height in pixels"),
    PayloadField(MISLABEL_SCORE, "float", indexed=True, description="estimated probability that the label is wrong"),
    PayloadField(SUGGESTED_LABEL, "keyword", indexed=True, description="the most probable true class"),
    PayloadField(NEIGHBOUR_AGREEMENT, "float", indexed=True,
                 description="similarity-weighted share of the neighbours' vote for the label"),
    PayloadField(PROBE_AGREEMENT, "float", indexed=True,
                 description="a cross-validated linear probe's probability of the label"),
    PayloadField(OUTLIER_SCORE, "float", indexed=True, description="robust z-score of how unlike the rest it is"),
    PayloadField(UNIQUENESS, "float", indexed=True, description="cosine distance to the nearest neighbour"),
    PayloadField(DUPLICATE_GROUP, "integer", indexed=True, description="near-duplicate group, -1 for none"),
    PayloadField(EXACT_DUPLICATE_GROUP, "integer", indexed=True, description="identical-content group, -1 for none"),
    PayloadField(SPLIT_LEAK_GROUP, "integer", indexed=True,
                 description="near-duplicate group with members in two or more splits (a leak), -1 for none"),
    PayloadField(QUALITY_FLAGS, "keyword", indexed=True, is_list=True,
                 description="mislabel, outlier, duplicate, duplicate_box, shape_outlier"),
    PayloadField(CLUSTER, "integer", indexed=True, description="cluster of similar points (analyze), -1 for none"),
    PayloadField(ORIGINAL_LABEL, "keyword", description="the label before a relabel in the app"),
    PayloadField(REVIEW, "object", shown=False,
                 description="review decisions per issue: {issue: {decision, at, label, suggested, sha1, ...}}"),
    PayloadField(PREDICTION, "keyword", indexed=True, description="an imported model's predicted label"),
    PayloadField(PREDICTION_CONFIDENCE, "float", indexed=True, description="its confidence"),
    PayloadField(PREDICTION_CORRECT, "bool", indexed=True, description="prediction == label"),
    PayloadField(PREDICTION_PROBABILITIES, "object", shown=False,
                 description="an imported model's probability per class, {class: p} (uncertainty sampling)"),
    # Object points only. image_id is indexed: "the boxes of this image" and "the images of these
    # boxes" are filters on it. annotation_id is unique per point, so it gets no index (see
    # indexer/pipeline.py on why an index on a per-point-unique field costs every open).
    PayloadField(IMAGE_ID, "keyword", indexed=True, shown=False, description="the id of the box's image point"),
    PayloadField(ANNOTATION_ID, "integer", shown=False,
                 description="the box's id in its source (COCO id; YOLO / VOC: its row / object number)"),
    PayloadField(BBOX, "float", is_list=True, shown=False,
                 description="[x, y, width, height] in pixels of the upright image (COCO order)"),
    PayloadField(IMAGE_WIDTH, "integer", shown=False, description="the box's image width in pixels"),
    PayloadField(IMAGE_HEIGHT, "integer", shown=False, description="the box's image height in pixels"),
    PayloadField(DUPLICATE_BOX_GROUP, "integer", indexed=True,
                 description="boxes of one image overlapping at IoU >= 0.7, -1 for none"),
    PayloadField(MAX_BOX_IOU, "float", indexed=True, description="highest IoU with another box of its image"),
    PayloadField(MODEL_OVERLAP, "float", indexed=True,
                 description="share of its k nearest neighbours two embedding models agree on (compare-models)"),
    PayloadField(MISLABEL_FLAGGED_BY, "keyword", indexed=True, is_list=True,
                 description="collections with named vectors: the vectors whose analysis flags the label"),
    PayloadField(SCORES_BY_VECTOR, "object", shown=False,
                 description="collections with named vectors: each named vector's own label-quality scores "
                             "(analyze --vector NAME2): {NAME2: {mislabel_score, suggested_label, ...}}; the "
                             "default vector's are the plain fields"),
    PayloadField(RED, "float", indexed=True, description="mean red, 0..1 (a box: of its pixels)"),
    PayloadField(GREEN, "float", indexed=True, description="mean green, 0..1 (a box: of its pixels)"),
    PayloadField(BLUE, "float", indexed=True, description="mean blue, 0..1 (a box: of its pixels)"),
    PayloadField(RELATIVE_AREA, "float", indexed=True, description="the box's area / its image's area"),
    PayloadField(BORDER_DISTANCE, "float", indexed=True,
                 description="the box's smallest gap to an image edge, as a share of that side (0 = touching)"),
    PayloadField(SHAPE_SCORE, "float", indexed=True,
                 description="how unusual the box's shape is for its class (robust z; flag shape_outlier)"),
    PayloadField(MASK, "object", shown=False,
                 description="the box's mask: {polygons: [[x, y, ...]]} or {rle, size, uncompressed}, iscrowd "
                             "(detection/masks.py)"),
    PayloadField(MASK_FILL, "float", indexed=True, description="the share of the box its mask covers"),
    PayloadField(POLYGON_VERTICES, "integer", indexed=True, description="the points of the mask's polygons"),
    PayloadField(OBJECT_COUNT, "integer", indexed=True, description="image points: how many boxes it holds"),
    PayloadField(OBJECT_DENSITY, "float", indexed=True,
                 description="image points: the total area of its boxes / its area"),
    PayloadField(DETECTION_OUTCOME, "keyword", indexed=True,
                 description="the current detector run, COCO matching at IoU 0.5: tp, missed or crowd"),
    PayloadField(DETECTION_REASON, "keyword", indexed=True,
                 description="a missed box: badly_placed, wrong_class or unseen (analysis/detection_outcomes.py)"),
    PayloadField(LOOKALIKES_FOUND, "float", indexed=True,
                 description="a box no prediction overlaps (unseen): the share of its nearest labelled boxes "
                             "the run found (>= 0.5: possibly spurious)"),
    PayloadField(DETECTION_IOU, "float", indexed=True,
                 description="IoU of the prediction that found the box (missed: of its nearest same-class one)"),
    PayloadField(DETECTION_SCORE, "float", indexed=True,
                 description="score of the prediction that found the box (missed: of its nearest same-class one)"),
    PayloadField(ORIGINAL_BBOX, "float", is_list=True, shown=False,
                 description="object points: [x, y, w, h] before the box was moved to a detector's box"),
    PayloadField(SOURCE, "keyword", indexed=True,
                 description="object points: 'added' for a detector's box accepted as a missing label, "
                             "'prediction' for a detector's false positive (no label)"),
    PayloadField(PREDICTION_RUN, "keyword", indexed=True, description="prediction points: the detector run"),
    PayloadField(PREDICTED_LABEL, "keyword", indexed=True, description="prediction points: the predicted class"),
    PayloadField(MISSING_LABEL_SCORE, "float", indexed=True,
                 description="prediction points: share of the crop's nearest labelled boxes of its class"),
)
FIELDS: dict[str, PayloadField] = {f.name: f for f in _FIELDS}

# The values of QUALITY_FLAGS, which are also the issues a review decision is about.
MISLABEL_FLAG, OUTLIER_FLAG, DUPLICATE_FLAG = "mislabel", "outlier", "duplicate"
QUALITY_FLAG_VALUES = (MISLABEL_FLAG, OUTLIER_FLAG, DUPLICATE_FLAG)
DUPLICATE_BOX_FLAG = "duplicate_box"  # object points: overlaps another box of its image
SHAPE_OUTLIER_FLAG = "shape_outlier"  # object points: a shape unusual for its class
FLAG_COLUMN_SUFFIX = "_flag"  # exports give each flag a yes/no column: mislabel_flag, ...


def flag_column(flag: str) -> str:
    """The export column that says whether a point has the quality flag `flag`."""
    return f"{flag}{FLAG_COLUMN_SUFFIX}"


def review_column(issue: str) -> str:
    """The export column holding a point's review status for `issue` (review/decisions.py)."""
    return f"{issue}_review"


# --- groups other modules use ----------------------------------------------------------------
METRIC_FIELDS = (BRIGHTNESS, CONTRAST, SHARPNESS, COLOURFULNESS, ASPECT_RATIO, AREA, RED, GREEN, BLUE)
SCORE_FIELDS = (MISLABEL_SCORE, SUGGESTED_LABEL, NEIGHBOUR_AGREEMENT, PROBE_AGREEMENT, OUTLIER_SCORE, UNIQUENESS,
                DUPLICATE_GROUP, EXACT_DUPLICATE_GROUP, SPLIT_LEAK_GROUP, QUALITY_FLAGS)
PREDICTION_FIELDS = (PREDICTION, PREDICTION_CONFIDENCE, PREDICTION_CORRECT)
OBJECT_FIELDS = (IMAGE_ID, ANNOTATION_ID, BBOX, IMAGE_WIDTH, IMAGE_HEIGHT)
BOX_SCORE_FIELDS = (DUPLICATE_BOX_GROUP, MAX_BOX_IOU)
OBJECT_METRIC_FIELDS = (RELATIVE_AREA, BORDER_DISTANCE, SHAPE_SCORE, MASK_FILL, POLYGON_VERTICES)  # per box
IMAGE_OBJECT_FIELDS = (OBJECT_COUNT, OBJECT_DENSITY)                  # per image of a detection dataset
DETECTION_FIELDS = (DETECTION_OUTCOME, DETECTION_REASON, DETECTION_IOU, DETECTION_SCORE, LOOKALIKES_FOUND)
# Numeric, but identifiers or map positions rather than measurements (not compared, not binned).
NOT_MEASUREMENTS = frozenset({X, Y, DUPLICATE_GROUP, EXACT_DUPLICATE_GROUP, SPLIT_LEAK_GROUP, DUPLICATE_BOX_GROUP,
                              ANNOTATION_ID, IMAGE_WIDTH, IMAGE_HEIGHT, CLUSTER})
NOT_SHOWN = frozenset(f.name for f in _FIELDS if not f.shown)
LIST_FIELDS = tuple(f.name for f in _FIELDS if f.is_list)

# --- collection metadata -------------------------------------------------------------------
# An object collection's metadata says what it is and names its image collection; the image
# collection's names its object collection, so the app and exports can go from one to the other.
COLLECTION_KIND, OBJECTS_KIND, IMAGES_KIND = "kind", "objects", "images"
IMAGE_COLLECTION, OBJECT_COLLECTION = "image_collection", "object_collection"
CATEGORIES = "categories"  # object collections: [{"id", "name"}] of the source, in its order
CROP_MARGIN = "crop_margin"  # object collections: the context margin its crops were cut with
CROP_MODE = "crop"  # object collections: "box" (the box's pixels) or "mask" (background blanked)
OBJECT_COLLECTION_SUFFIX = "-objects"
# What made a collection's vectors (indexer/pipeline.py); vectors mix only with the same MODEL
# and PRECISION ("fp32" / "bf16", as it actually ran), whatever the RUNTIME and DEVICE.
MODEL, PRECISION, RUNTIME, DEVICE = "model", "precision", "runtime", "device"
# The named vectors added to a collection (`index --add-vector`): name -> {dimension, model,
# precision, runtime, device, added_at, ...}; the top-level MODEL etc. describe the default vector.
VECTORS = "vectors"

# --- tags ----------------------------------------------------------------------------------
# Points with this tag are left out of the map's exports, counts and comparisons by default.
EXCLUDED_TAG = "excluded"
TAG_MAX_LENGTH = 100


class InvalidTag(ValueError):
    """A tag name that breaks the tag rule; the message states the rule."""


def validate_tag(name: str | None) -> str:
    """The tag rule, for the app, the command line and the store alike: 1 to TAG_MAX_LENGTH
    characters after trimming surrounding spaces, and no control characters (tabs, newlines):
    a tag is a single-line name that filters, CSV cells and other tools take as it is."""
    tag = (name or "").strip()
    if not tag or len(tag) > TAG_MAX_LENGTH or any(unicodedata.category(c) == "Cc" for c in tag):
        raise InvalidTag(f"invalid tag {name!r}: use 1-{TAG_MAX_LENGTH} characters on one line "
                         "(no tabs, newlines or other control characters)")
    return tag


def index_kind(name: str) -> str | None:
    """The payload index kind of a declared, indexed field ('keyword', 'float', 'integer',
    'bool'); None for fields without an index."""
    field = FIELDS.get(name)
    return field.kind if field is not None and field.indexed and field.kind != "object" else None
