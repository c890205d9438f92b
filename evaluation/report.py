"""The `evaluate` command's text output: a RunEvaluation.report() as a few lines and a table."""
from __future__ import annotations

from typing import Any

from analysis.detection_failures import MetricFailures

SUMMARY_LINES = (("mAP@[.5:.95]", "map"), ("AP50", "map_50"), ("AP75", "map_75"), ("AP small", "map_small"),
                 ("AP medium", "map_medium"), ("AP large", "map_large"), ("AR@1", "mar_1"), ("AR@10", "mar_10"),
                 ("AR@100", "mar_100"))


def _value(number: float) -> str:
    return "n/a" if number < 0 else f"{number:.4f}"


def format_report(report: dict[str, Any]) -> str:
    """Scope, COCO's numbers, the counts at the confidence, and one row per class."""
    lines = [f"run {report['run']}: {report['images']} images, {report['labelled_boxes']} labelled boxes, "
             f"{report['predictions']} predictions"]
    lines += [f"{name:14}{_value(report[key])}" for name, key in SUMMARY_LINES]
    lines.append(f"at IoU {report['iou']:g}, score >= {report['confidence']:g}: TP {report['tp']}, "
                 f"FP {report['fp']}, missed {report['fn']}; precision {report['precision']:.4f}, "
                 f"recall {report['recall']:.4f}, F1 {report['f1']:.4f}")
    lines.append(f"{'class':20}{'AP':>8}{'AP50':>8}{'AR100':>8}{'boxes':>7}{'TP':>7}{'FP':>7}{'missed':>7}")
    for row in report["per_class"]:
        if row["labelled"] or row["tp"] or row["fp"]:
            lines.append(f"{row['class'][:19]:20}{_value(row['ap']):>8}{_value(row['ap_50']):>8}"
                         f"{_value(row['ar_100']):>8}{row['labelled']:>7}{row['tp']:>7}{row['fp']:>7}{row['fn']:>7}")
    return "\n".join(lines)


def _share(value: float) -> str:
    return "–" if value != value else f"{100 * value:.1f}%"


def format_failures(table: list[MetricFailures]) -> str:
    """Per metric (most separating first): its bins with boxes, recall, predictions and FP rate."""
    lines = ["", "where the model fails (metric: how much it separates found from missed boxes, 0..1)"]
    for metric in table:
        lines.append(f"{metric.name} ({metric.separation:.3f})")
        for b in metric.bins:
            lines.append(f"  {b.label:24}{b.boxes:>7} boxes  recall {_share(b.recall):>6}   "
                         f"{b.predictions:>7} predictions  FP {_share(b.fp_rate):>6}")
    return "\n".join(lines)
