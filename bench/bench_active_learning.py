"""Active-learning benchmark: which strategy picks the labels that teach a classifier most.

    .venv/bin/pip install -r bench/requirements.txt          # modAL-python, scikit-activeml: the libraries compared against
    .venv/bin/python bench/bench_active_learning.py           # the simulated loop, 3 seeds (~10-20 min, 2 cores)
    .venv/bin/python bench/bench_active_learning.py --part speed   # k-center over 1,000,000 vectors

Simulated loop on Fashion-MNIST train images (bench/al_vectors.py: the first 7,000, mobilenet-v2
vectors, cached): a pool of the first 5,000, the next 2,000 held out. 100 labels drawn at random
(per seed), then rounds of 100 chosen by the strategy up to 1,000. After every round a
scikit-learn LogisticRegression is fitted on the labelled vectors and scored on the held-out
2,000. Our strategies (analysis/selection, uncertainty from the cross-validated linear probe the
app uses, no model needed) and random, against modAL's (modAL-python: margin, entropy and
least-confidence sampling and ranked batch-mode sampling, each with the same LogisticRegression
as its learner, as a modAL user would set it up) and scikit-activeml's (margin, entropy and
least-confident UncertaintySampling over the same LogisticRegression wrapped in its
SklearnClassifier, and its CoreSet and TypiClust diversity sampling from the vectors alone),
seeds 0, 1, 2, same initial labels per seed.
Reported: accuracy at 600 and 1,000 labels (median over seeds), and the labels each needs to
reach random's median accuracy at 1,000.
Speed: k-center greedy choosing 1,000 of 1,000,000 64-d vectors (1,000 labelled), median of runs;
then ours against the textbook greedy (a full pass per pick) on the same vectors in the same run:
seconds, picks in common, and the covering radius each reaches (k-center's objective).
Results: bench/results/active_learning.json; the Markdown tables are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from al_vectors import fashion_train_vectors  # noqa: E402
from analysis.knn import build_knn_graph  # noqa: E402
from analysis.selection import STRATEGIES, USES_GRAPH, USES_PROBABILITIES, Pool, probe_probabilities, select  # noqa: E402

RESULTS = ROOT / "bench" / "results"
OUT = RESULTS / "active_learning.json"  # --out: another file (runs side by side); --report merges them
POOL, HELD_OUT, START, STEP, END = 5_000, 2_000, 100, 100, 1_000
SEEDS = (0, 1, 2)
CLASSES = 10


def evaluate(vectors: np.ndarray, labels: np.ndarray, rows: np.ndarray, test_x: np.ndarray,
             test_y: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000).fit(vectors[rows], labels[rows])
    return float((model.predict(test_x) == test_y).mean())


LR_SUFFIX = " + LR"  # the strategy on the evaluator's own LogisticRegression probabilities


def lr_probabilities(vectors: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """(n, CLASSES) probabilities of the evaluator's LogisticRegression fitted on the labelled
    points: what select-next reads when a model's probabilities are imported."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=2000).fit(vectors[labelled], labels[labelled])
    dense = np.zeros((len(vectors), CLASSES))
    dense[:, model.classes_] = model.predict_proba(vectors)
    return dense


def our_loop(name: str, vectors: np.ndarray, labels: np.ndarray, first: np.ndarray, graph: Any,
             test: tuple[np.ndarray, np.ndarray], seed: int) -> list[float]:
    strategy, with_lr = name.removesuffix(LR_SUFFIX), name.endswith(LR_SUFFIX)
    labelled = np.zeros(len(vectors), dtype=bool)
    labelled[first] = True
    curve = []
    while True:
        curve.append(evaluate(vectors, labels, np.flatnonzero(labelled), *test))
        if labelled.sum() >= END:
            return curve
        probabilities = None
        if strategy in USES_PROBABILITIES and with_lr:
            probabilities = lr_probabilities(vectors, labels, labelled)
        elif strategy in USES_PROBABILITIES:
            probabilities = probe_probabilities(vectors, np.where(labelled, labels, -1), CLASSES)
        pool = Pool(vectors, labelled, ~labelled, probabilities, graph if strategy in USES_GRAPH else None)
        labelled[select(strategy, pool, STEP, seed).rows] = True


def modal_loop(query: Callable[..., Any], vectors: np.ndarray, labels: np.ndarray, first: np.ndarray,
               test: tuple[np.ndarray, np.ndarray]) -> list[float]:
    """modAL's loop. The learner is made anew on the labelled set every round: modAL 0.4.2's
    `teach` passes `force_all_finite` to scikit-learn's check_X_y, which scikit-learn 1.8
    removed; a new ActiveLearner fits the same estimator on the same rows."""
    from modAL.models import ActiveLearner
    from sklearn.linear_model import LogisticRegression

    labelled = np.asarray(first)
    curve = []
    while True:
        learner = ActiveLearner(estimator=LogisticRegression(max_iter=2000), query_strategy=query,
                                X_training=vectors[labelled], y_training=labels[labelled])
        curve.append(float(learner.score(*test)))
        if len(labelled) >= END:
            return curve
        unlabelled = np.setdiff1d(np.arange(len(vectors)), labelled)
        picked, _ = learner.query(vectors[unlabelled], n_instances=STEP)
        labelled = np.concatenate([labelled, unlabelled[np.asarray(picked)]])


def modal_strategies() -> dict[str, Callable[..., Any]]:
    from modAL.batch import uncertainty_batch_sampling
    from modAL.uncertainty import entropy_sampling, margin_sampling, uncertainty_sampling

    return {"modAL margin": margin_sampling, "modAL entropy": entropy_sampling,
            "modAL least-confidence": uncertainty_sampling, "modAL ranked batch": uncertainty_batch_sampling}


def skactiveml_loop(make_query: Callable[[int], Any], vectors: np.ndarray, labels: np.ndarray, first: np.ndarray,
                    test: tuple[np.ndarray, np.ndarray], seed: int) -> list[float]:
    """scikit-activeml's loop: unlabelled rows carry its MISSING_LABEL (NaN) in `y`; the
    query strategy fits the classifier it is given (uncertainty) or reads `X` alone (diversity)."""
    from skactiveml.classifier import SklearnClassifier
    from skactiveml.utils import MISSING_LABEL
    from sklearn.linear_model import LogisticRegression

    query = make_query(seed)
    y = np.full(len(vectors), MISSING_LABEL)
    y[first] = labels[first]
    curve = []
    while True:
        known = ~np.isnan(y)
        curve.append(evaluate(vectors, labels, np.flatnonzero(known), *test))
        if known.sum() >= END:
            return curve
        clf = SklearnClassifier(LogisticRegression(max_iter=2000), classes=np.arange(CLASSES), random_state=seed)
        if hasattr(query, "method"):  # UncertaintySampling: needs the classifier
            picked = query.query(vectors, y, clf=clf, batch_size=STEP)
        else:
            picked = query.query(vectors, y, batch_size=STEP)
        y[np.asarray(picked)] = labels[np.asarray(picked)]


def skactiveml_strategies() -> dict[str, Callable[[int], Any]]:
    from skactiveml.pool import CoreSet, TypiClust, UncertaintySampling

    def uncertainty(method: str) -> Callable[[int], Any]:
        return lambda seed: UncertaintySampling(method=method, random_state=seed)

    return {"skactiveml margin": uncertainty("margin_sampling"), "skactiveml entropy": uncertainty("entropy"),
            "skactiveml least-confident": uncertainty("least_confident"),
            "skactiveml CoreSet": lambda seed: CoreSet(random_state=seed),
            "skactiveml TypiClust": lambda seed: TypiClust(random_state=seed)}


# The comparisons that decide the default first, so a cut-short run still answers it.
ORDER = ("random", "margin-coreset", "margin-clusters", "class-balanced-margin", "margin", "modAL margin",
         "modAL ranked batch", "k-center", "entropy", "least-confidence", "modAL entropy", "modAL least-confidence",
         "representative", "cluster-balanced", "class-balanced-margin + LR", "margin-clusters + LR",
         "margin-coreset + LR", "margin + LR", "skactiveml margin", "skactiveml CoreSet", "skactiveml TypiClust",
         "skactiveml entropy", "skactiveml least-confident")


def loop_part(seeds: tuple[int, ...], only: list[str] | None, save: Callable[[dict[str, Any]], None],
              previous: dict[str, Any]) -> dict[str, Any]:
    """Every strategy's curves (with `only`: those, kept beside the `previous` run's others)."""
    vectors, labels = fashion_train_vectors()
    pool_x, pool_y = vectors[:POOL], labels[:POOL]
    test = (vectors[POOL:POOL + HELD_OUT], labels[POOL:POOL + HELD_OUT])
    graph = build_knn_graph(np.arange(POOL).astype(str), pool_x, k=15)
    libraries = {**modal_strategies(), **skactiveml_strategies()}
    names = [n for n in ORDER if n.removesuffix(LR_SUFFIX) in STRATEGIES or n in libraries]
    curves: dict[str, dict[str, list[float]]] = dict(previous.get("curves", {})) if only else {}
    seconds: dict[str, float] = dict(previous.get("seconds", {})) if only else {}
    for name in only or []:
        curves.pop(name, None)
        seconds.pop(name, None)
    part = {"curves": curves, "seconds": seconds, "labels": list(range(START, END + 1, STEP))}
    for name in names if not only else [n for n in names if n in only]:
        for seed in seeds:
            first = np.random.default_rng(seed).choice(POOL, START, replace=False)
            started = time.perf_counter()
            if name.removesuffix(LR_SUFFIX) in STRATEGIES:
                curve = our_loop(name, pool_x, pool_y, first, graph, test, seed)
            elif name in modal_strategies():
                curve = modal_loop(modal_strategies()[name], pool_x, pool_y, first, test)
            else:
                curve = skactiveml_loop(skactiveml_strategies()[name], pool_x, pool_y, first, test, seed)
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started
            curves.setdefault(name, {})[str(seed)] = curve
            print(f"{name:24} seed {seed}: " + " ".join(f"{a:.3f}" for a in curve), flush=True)
        save(part)  # after every strategy: a cut-short run keeps what it measured
    return part


def textbook_k_center(vectors: np.ndarray, labelled: np.ndarray, budget: int) -> list[int]:
    """The baseline: one full pass over every candidate per pick."""
    nearest = np.full(len(vectors), -np.inf, dtype=np.float32)
    for start in range(0, len(vectors), 65_536):
        nearest[start:start + 65_536] = (vectors[start:start + 65_536] @ vectors[labelled].T).max(axis=1)
    nearest[labelled] = np.inf
    similarity = np.empty(len(vectors), dtype=np.float32)
    picks = []
    for _ in range(budget):
        pick = int(np.argmin(nearest))
        picks.append(pick)
        np.dot(vectors, vectors[pick], out=similarity)
        np.maximum(nearest, similarity, out=nearest)
        nearest[pick] = np.inf
    return picks


def clustered_unit_vectors(points: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(points x 64 unit vectors around 200 centres, 1,000 of them labelled)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(200, 64)).astype(np.float32)
    vectors = centres[rng.integers(200, size=points)] + 0.6 * rng.normal(size=(points, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labelled = np.zeros(points, dtype=bool)
    labelled[rng.choice(points, 1000, replace=False)] = True
    return vectors, labelled


def coverage(vectors: np.ndarray, centres: np.ndarray) -> float:
    """The largest cosine distance from a point to its nearest centre (k-center's objective)."""
    from analysis.selection.diversity import _nearest_centre_similarity

    return float(1.0 - _nearest_centre_similarity(vectors, vectors[centres]).min())


def speed_part(runs: int, points: int, budget: int, baseline_points: int) -> dict[str, Any]:
    vectors, labelled = clustered_unit_vectors(points)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        ours = select("k-center", Pool(vectors, labelled, ~labelled), budget).rows
        times.append(time.perf_counter() - started)
        print(f"k-center {budget} of {points:,} x 64: {times[-1]:.1f} s", flush=True)
    small, small_labelled = (vectors, labelled) if baseline_points == points else \
        clustered_unit_vectors(baseline_points, seed=1)
    started = time.perf_counter()
    ours = select("k-center", Pool(small, small_labelled, ~small_labelled), budget).rows
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    textbook = np.array(textbook_k_center(small, np.flatnonzero(small_labelled), budget))
    textbook_s = time.perf_counter() - started
    known = np.flatnonzero(small_labelled)
    baseline = {"points": baseline_points, "ours_s": ours_s, "textbook_s": textbook_s,
                "common_picks": len(set(ours.tolist()) & set(textbook.tolist())),
                "ours_coverage": coverage(small, np.concatenate([known, ours])),
                "textbook_coverage": coverage(small, np.concatenate([known, textbook]))}
    print(f"at {baseline_points:,}: {baseline}", flush=True)
    return {"points": points, "dimensions": 64, "budget": budget, "labelled": 1000, "seconds": times,
            "baseline": baseline}


def report(results: dict[str, Any]) -> None:
    loop = results.get("loop")
    if loop:
        steps = loop["labels"]
        med = {name: [median(c[i] for c in by_seed.values()) for i in range(len(steps))]
               for name, by_seed in loop["curves"].items()}
        target = med["random"][-1] if "random" in med else None
        print(f"\n| strategy | accuracy at 600 | at 1,000 | labels to reach random's {target:.3f} at 1,000 |"
              if target else "")
        print("|---|---|---|---|")
        for name, curve in sorted(med.items(), key=lambda kv: -kv[1][steps.index(600)]):
            reach = next((steps[i] for i, a in enumerate(curve) if target is not None and a >= target), None)
            print(f"| {name} | {curve[steps.index(600)]:.3f} | {curve[-1]:.3f} | "
                  f"{reach if reach is not None else '> 1,000'} |")
    if results.get("speed"):
        speed = results["speed"]
        print(f"\nk-center: {speed['budget']} of {speed['points']:,} x {speed['dimensions']}: median "
              f"{median(speed['seconds']):.1f} s over {len(speed['seconds'])} runs")
        if "baseline" in speed:
            b = speed["baseline"]
            print(f"at {b['points']:,}: {b['ours_s']:.2f} s vs the textbook greedy {b['textbook_s']:.1f} s "
                  f"({b['textbook_s'] / b['ours_s']:.0f}x); {b['common_picks']} picks in common; covering "
                  f"radius {b['ours_coverage']:.4f} vs {b['textbook_coverage']:.4f}")


def merged_results() -> dict[str, Any]:
    """Every bench/results/active_learning*.json together (curves of runs made side by side)."""
    merged: dict[str, Any] = {}
    for path in sorted(RESULTS.glob("active_learning*.json")):
        data = json.loads(path.read_text())
        if "loop" in data:
            loop = merged.setdefault("loop", {"curves": {}, "seconds": {}, "labels": data["loop"]["labels"]})
            loop["curves"].update(data["loop"]["curves"])
            loop["seconds"].update(data["loop"].get("seconds", {}))
        if "speed" in data:
            merged["speed"] = data["speed"]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["loop", "speed", "all"], default="loop")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--only", nargs="+", help="these strategies only (names as in the table)")
    parser.add_argument("--runs", type=int, default=3, help="speed: repeats")
    parser.add_argument("--points", type=int, default=1_000_000, help="speed: vectors")
    parser.add_argument("--budget", type=int, default=1_000, help="speed: batch size")
    parser.add_argument("--baseline-points", type=int, default=1_000_000,
                        help="speed: vectors for ours against the textbook greedy, same run")
    parser.add_argument("--report", action="store_true", help="print the tables of every saved results file")
    parser.add_argument("--out", type=Path, default=OUT, help="results file (runs side by side: one each)")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.report:
        results = merged_results()
    else:
        meta = {"date": datetime.now(timezone.utc).isoformat(timespec="minutes"), "machine": platform.node(),
                "cpus": os.cpu_count(), "load": os.getloadavg()[0]}

        def save(part: dict[str, Any], key: str = "loop") -> None:
            results[key] = {**part, **meta}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1))

        if args.part in ("loop", "all"):
            save(loop_part(tuple(args.seeds), args.only, save, results.get("loop", {})))
        if args.part in ("speed", "all"):
            save(speed_part(args.runs, args.points, args.budget, args.baseline_points), "speed")
    report(results)


if __name__ == "__main__":
    main()
