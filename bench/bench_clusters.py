"""Cluster benchmark: our clusters vs k-means with the same number of clusters, same run.

    .venv/bin/python bench/bench_clusters.py [--sizes 10000 70000] [--repeats 3]

Data: Fashion-MNIST embedded with mobilenet-v2, the caches of bench/bench_label_quality.py
(bench/results/fmnist_test_mobilenet.npz: the 10,000 test images; fmnist_70k_mobilenet.npz:
all 70,000, made by `bench_label_quality.py --embed-full`). For each size the kNN graph
(k=15) and the UMAP map are built as indexing builds them and cached
(bench/results/fmnist_<n>_map.npz); they are not timed here.

Timed (median of --repeats runs; Leiden runs use seeds 0, 1, 2 ... and the ARI range over
them is given):
- leiden at resolutions 0.5 / 1 / 2 on the kNN graph (analysis.clusters, graspologic-native),
- hdbscan-map: scikit-learn HDBSCAN on the 2D map (min_cluster_size 5 = our default, and 50),
- networkx's Louvain on the same graph (the pure-Python alternative; 10,000 points only),
- k-means (scikit-learn, k-means++, n_init=1) on the unit vectors with the same k as each of
  the above: what a user would run instead.
Quality: adjusted Rand index and NMI against the 10 labels (HDBSCAN noise counts as one
more cluster). Also timed: `compute_clusters` end to end on an embedded collection (store
reads, clustering, mobilenet-v2 content words for a sample of each cluster, payload writes,
table); `--end-to-end-only` runs only that part.

`--naming` also measures the content words: the top ImageNet class recomputed from the unit
vector (indexer/concepts.py) against the full network's logits, on 1,000 test images.

Prints Markdown tables and writes bench/results/clusters.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from analysis.clusters import ClusterConfig, find_clusters, undirected_edges  # noqa: E402
from analysis.knn import KnnGraph, build_knn_graph  # noqa: E402
from bench_label_quality import CLASS_NAMES, RESULTS, fashion_full, fashion_test  # noqa: E402

K = 15


def data(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n <= 10_000:
        vectors, labels = fashion_test()
        return vectors[:n], labels[:n]
    full = fashion_full()
    if full is None:
        raise SystemExit("the 70,000 embeddings are missing: run bench/bench_label_quality.py --embed-full first")
    return full[0][:n], full[1][:n]


def graph_and_map(vectors: np.ndarray) -> tuple[KnnGraph, np.ndarray]:
    """The kNN graph and UMAP map as indexing builds them (cached per size)."""
    from indexer.projection import project

    cache = RESULTS / f"fmnist_{len(vectors)}_map.npz"
    if cache.exists():
        with np.load(cache) as d:
            return KnnGraph(d["ids"], d["indices"], d["similarities"]), d["coords"]
    graph = build_knn_graph(np.arange(len(vectors)).astype(str), vectors, k=K)
    coords = project(vectors, graph)
    np.savez(cache, ids=graph.ids, indices=graph.indices, similarities=graph.similarities, coords=coords)
    return graph, coords


def timed(run: Callable[[int], np.ndarray], repeats: int) -> tuple[list[np.ndarray], float]:
    results, seconds = [], []
    for seed in range(repeats):
        started = time.perf_counter()
        results.append(run(seed))
        seconds.append(time.perf_counter() - started)
    return results, statistics.median(seconds)


def scores(truth: np.ndarray, found: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    return float(adjusted_rand_score(truth, found)), float(normalized_mutual_info_score(truth, found))


def kmeans(vectors: np.ndarray, k: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(vectors)


def louvain_networkx(graph: KnnGraph, seed: int) -> np.ndarray:
    import networkx as nx

    rows, cols, weights = undirected_edges(graph)
    g = nx.Graph()
    g.add_nodes_from(range(len(graph)))
    g.add_weighted_edges_from(zip(rows.tolist(), cols.tolist(), weights.tolist()))
    labels = np.empty(len(graph), np.int64)
    for i, members in enumerate(nx.community.louvain_communities(g, weight="weight", seed=seed)):
        labels[list(members)] = i
    return labels


def methods(graph: KnnGraph, coords: np.ndarray) -> dict[str, Callable[[int], np.ndarray]]:
    out: dict[str, Callable[[int], np.ndarray]] = {}
    for resolution in (0.5, 1.0, 2.0):
        out[f"leiden, resolution {resolution:g}"] = (
            lambda seed, r=resolution: find_clusters(graph, coords, ClusterConfig("leiden", r, seed=seed)))
    for size in (5, 50):
        out[f"hdbscan-map, min_cluster_size {size}"] = (
            lambda seed, s=size: find_clusters(graph, coords, ClusterConfig("hdbscan-map", min_size=s, seed=seed)))
    if len(graph) <= 10_000:
        out["networkx louvain, resolution 1"] = lambda seed: louvain_networkx(graph, seed)
    return out


def compare(n: int, repeats: int) -> list[dict[str, Any]]:
    vectors, labels = data(n)
    graph, coords = graph_and_map(vectors)
    rows = []
    for name, run in methods(graph, coords).items():
        found, seconds = timed(run, repeats if "networkx" not in name else 1)
        quality = [scores(labels, f) for f in found]
        k = int(len(set(found[0][found[0] >= 0].tolist())))
        noise = float((found[0] < 0).mean())
        km, km_seconds = timed(lambda seed: kmeans(vectors, k, seed), 1 if n > 10_000 else repeats)
        km_quality = [scores(labels, f) for f in km]
        row = {"n": n, "method": name, "clusters": k, "noise": noise, "seconds": seconds,
               "ari": statistics.median(q[0] for q in quality), "ari_range": [min(q[0] for q in quality),
                                                                              max(q[0] for q in quality)],
               "nmi": statistics.median(q[1] for q in quality), "kmeans_seconds": km_seconds,
               "kmeans_ari": statistics.median(q[0] for q in km_quality),
               "kmeans_nmi": statistics.median(q[1] for q in km_quality), "runs": len(found)}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def end_to_end(n: int, repeats: int) -> dict[str, Any]:
    """`compute_clusters` on an embedded collection: what `analyze` adds for clusters."""
    from scoring.clusters import compute_clusters
    from store import open_store, point_id

    vectors, labels = data(n)
    graph, coords = graph_and_map(vectors)
    graph = KnnGraph(np.array([point_id(f"{i}.png") for i in range(n)]), graph.indices, graph.similarities)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(path=folder)
        collection = store.create("bench", vectors.shape[1], {"model": "mobilenet-v2"})
        payloads = [{"label": str(CLASS_NAMES[y]), "x": float(x), "y": float(yy), "tags": []}
                    for y, (x, yy) in zip(labels, coords)]
        collection.upsert(list(graph.ids), vectors, payloads)
        collection.flush()
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            summary = compute_clusters(collection, graph)
            seconds.append(time.perf_counter() - started)
        store.close()
    return {"n": n, "seconds": statistics.median(seconds), "runs": repeats, "clusters": len(summary.clusters),
            "names": [c.name for c in summary.clusters[:12]],
            "impure": [(c.name, c.labels[:2], round(c.purity or 0, 2)) for c in summary.clusters if c.impure]}


def naming(count: int = 1000) -> dict[str, Any]:
    """Top ImageNet class from the unit vector (our way) vs the full network's logits."""
    import torch

    from bench_label_quality import DATASETS, read_idx_images
    from indexer.concepts import FEATURE_NORM, load_content_words
    from indexer.mobilenet import EmbeddingHead, load_pretrained

    net = load_pretrained()
    head = EmbeddingHead(net).eval()
    images = read_idx_images(DATASETS / "t10k-images-idx3-ubyte.gz")[:count]
    pixels = torch.from_numpy(np.repeat(images[..., None], 3, axis=3))
    features = []
    with torch.inference_mode():
        for start in range(0, count, 100):
            x = torch.nn.functional.interpolate(pixels[start:start + 100].permute(0, 3, 1, 2).float(),
                                                size=(224, 224), mode="bilinear", align_corners=False)
            features.append(net.embed((x - head.mean) * head.inv_std))
        features_t = torch.cat(features)
        truth = net.classifier(features_t).argmax(1).numpy()
    feats = features_t.numpy()
    unit = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    words = load_content_words("mobilenet-v2")
    ours = words.top_indices(unit)
    return {"images": count, "feature_norm_median": float(np.median(np.linalg.norm(feats, axis=1))),
            "scale": FEATURE_NORM, "top1_agreement": float((ours == truth).mean())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 70_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naming", action="store_true")
    parser.add_argument("--end-to-end-only", action="store_true", help="skip the method comparison")
    args = parser.parse_args()
    import os

    report: dict[str, Any] = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                              "load_before": os.getloadavg(), "comparisons": [], "end_to_end": []}
    for n in args.sizes:
        if not args.end_to_end_only:
            report["comparisons"] += compare(n, args.repeats)
        report["end_to_end"].append(end_to_end(n, args.repeats))
        print(json.dumps(report["end_to_end"][-1]), file=sys.stderr, flush=True)
    if args.naming:
        report["naming"] = naming()
    report["load_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "clusters-end-to-end.json" if args.end_to_end_only else "clusters.json"
    (RESULTS / name).write_text(json.dumps(report, indent=1))
    print_tables(report)


def print_tables(report: dict[str, Any]) -> None:
    print(f"date {report['date']}, {report['machine']}, load {report['load_before']} -> {report['load_after']}\n")
    print("| points | method | clusters | noise | ARI (range over seeds) | NMI | s | k-means same k: ARI | NMI | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in report["comparisons"]:
        spread = f" ({r['ari_range'][0]:.3f}-{r['ari_range'][1]:.3f})" if r["runs"] > 1 else ""
        print(f"| {r['n']:,} | {r['method']} | {r['clusters']} | {100 * r['noise']:.0f} % | {r['ari']:.3f}{spread} | "
              f"{r['nmi']:.3f} | {r['seconds']:.2f} | {r['kmeans_ari']:.3f} | {r['kmeans_nmi']:.3f} | "
              f"{r['kmeans_seconds']:.1f} |")
    for r in report["end_to_end"]:
        print(f"\ncompute_clusters at {r['n']:,}: {r['seconds']:.1f} s (median of {r['runs']}), {r['clusters']} "
              f"clusters: {', '.join(r['names'])}; impure: {r['impure']}")
    if "naming" in report:
        print(f"\nnaming: {report['naming']}")


if __name__ == "__main__":
    main()
