"""Vectors the user already has, read from a file: `python app.py index PATH --embeddings FILE`.

Two formats:
- Parquet (one file, or a folder of `.parquet` files read in name order): a `path` column, an
  embedding column (list or fixed-size list of numbers; `embedding` or `vector` unless
  `--embedding-column` names it), optional `label` and `split`, and any other scalar columns,
  which are kept in the payload.
- `.npy` (a 2-D number matrix, one row per point) with a CSV of the same rows in the same
  order (`--paths FILE`, default the `.csv` beside the `.npy`): a `path` column, optional
  `label`, `split` and other columns.

No model is loaded and no image is opened. Paths are relative to PATH (an absolute path inside
PATH is made relative) and must name a file there, unless `allow_missing_files`.

Nothing is written unless every row is usable: a first pass reads the whole file in batches
and checks every row (path given, inside PATH, file present, not repeated; vector of the
collection's dimension, finite, not all zeros); a file with bad rows is refused whole with
each bad row and its reason (`EmbeddingsRejected`). Only then a second pass writes, in
batches, through one writer thread. Memory stays bounded by a batch plus one path per row
(for the repeated-path check). Point ids are the same UUID5 of the relative path as for
indexed images, so running again with the same file updates the points in place, keeping
their tags. Vectors are stored L2-normalised (distance is cosine).
"""
from __future__ import annotations

import csv
import os
import posixpath
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from analysis.knn import normalise
from imaging.progress import progress_bar
from indexer.pipeline import (
    IndexOptions, IndexReport, create_payload_indexes, finish_index, merge_payload, open_collection,
    refuse_other_source,
)
from indexer.sources import Dataset, SourceError
from store import Collection, Store, point_id
from store.schema import FIELDS, HEIGHT, LABEL, LABELS, PATH, SHA1, SPLIT, WIDTH

LAYOUT = "embeddings-file"
EMBEDDING_COLUMNS = ("embedding", "vector", "embeddings", "vectors")  # looked for in this order
READ_BATCH = 65_536
WRITE_BATCH = 4_096
MAX_LISTED = 10_000  # bad rows kept with their reason; every one is counted
# Extra columns are kept in the payload, except those named like a field embedscape computes
# itself (map position, tags, scores, ...): a file must not overwrite those.
SOURCE_FIELDS = frozenset({PATH, LABEL, SPLIT, WIDTH, HEIGHT, SHA1})
COMPUTED_FIELDS = frozenset(FIELDS) - SOURCE_FIELDS
# Why a row cannot be used: one bit each, reported in this order.
NO_PATH, OUTSIDE, NO_FILE, REPEATED, NO_VECTOR, WRONG_LENGTH, NOT_FINITE, ALL_ZERO = (1 << i for i in range(8))
REASONS = {NO_PATH: "no path", OUTSIDE: "outside the dataset folder", NO_FILE: "no such file in the dataset folder",
           REPEATED: "path repeated in the file", NO_VECTOR: "no vector", WRONG_LENGTH: "vector of another length",
           NOT_FINITE: "NaN or infinite value in the vector", ALL_ZERO: "vector is all zeros"}
PATH_REASONS = {REASONS[NO_PATH]: NO_PATH, REASONS[OUTSIDE]: OUTSIDE}  # relative_path's answers


class EmbeddingsFileError(SourceError):
    """The file as a whole cannot be read (missing, wrong format, no path column, ...)."""


@dataclass(frozen=True)
class RowProblem:
    row: int  # 0-based, counted across the whole input (all Parquet files in name order)
    path: str
    reason: str


class EmbeddingsRejected(SourceError):
    """Some rows are not usable; nothing was written. `problems` lists them (the first
    MAX_LISTED), `counts` counts every one by reason."""

    def __init__(self, file: str, rows: int, problems: list[RowProblem], counts: Counter[str]) -> None:
        self.problems, self.counts, self.rows = problems, counts, rows
        bad = sum(counts.values())
        reasons = "; ".join(f"{count} x {reason}" for reason, count in counts.most_common())
        super().__init__(f"{file}: {bad} of {rows} rows cannot be used, so nothing was written ({reasons}). "
                         "Fix or drop those rows and run again")

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "path", "reason"])
            writer.writerows((p.row, p.path, p.reason) for p in self.problems)


@dataclass
class RowBatch:
    """Consecutive rows of the input, as columns."""

    first_row: int
    paths: list[Any]          # as in the file (None where missing)
    values: np.ndarray        # float32: every row's vector values, one row after the other
    lengths: np.ndarray       # int64 values per row; -1 where the row has no vector
    labels: list[str]
    splits: list[str]
    extras: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(self.paths)


class EmbeddingsReader(ABC):
    """Reads an input in batches of rows, as often as asked (once to check, once to write)."""

    name: str
    format: str
    fixed_dimension: int | None = None  # known from the file's type (fixed-size list, .npy)
    total_rows: int | None = None       # as the file's metadata says (for progress bars)
    notes: list[str]                    # columns left out, and why

    @abstractmethod
    def batches(self, size: int = READ_BATCH) -> Iterator[RowBatch]: ...


@dataclass
class EmbeddingsInput:
    """Where the vectors come from (the command line's --embeddings, --paths, ...)."""

    file: Path
    paths_file: Path | None = None
    column: str | None = None
    allow_missing_files: bool = False
    rejects_file: Path | None = None


@dataclass
class FileVectors:
    """The vector space of the file, as the collection records it (indexer.pipeline.VectorSpace)."""

    name: str
    dimension: int
    has_text: bool = False
    precision: str | None = None  # unknown: whatever made the file's vectors
    runtime: str | None = None
    device: str | None = None


@dataclass
class CheckedInput:
    rows: int
    dimension: int
    problems: list[RowProblem] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class EmbeddingsReport(IndexReport):
    embeddings_file: str = ""
    check_seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.embedded / self.embed_seconds if self.embed_seconds else 0.0

    def summary(self) -> str:
        return (f"{self.collection}: {self.found} rows of {self.embeddings_file} checked in {self.check_seconds:.1f} s, "
                f"{self.embedded} written ({self.rows_per_second:.0f} rows/s); {self.total_points} points in the "
                "collection")


# --- the command ---------------------------------------------------------------------------
def index_embeddings(root: str | Path, store: Store, options: IndexOptions, source: EmbeddingsInput) -> IndexReport:
    """Write the vectors of `source` for the images under `root` into `options.collection`,
    then build the graph and the map as indexing does (the scores: scoring/indexing.py). Raises EmbeddingsRejected
    (nothing written) when any row is unusable."""
    dataset_root = _dataset_root(root)
    reader = open_embeddings(source.file, source.paths_file, source.column)
    known_dimension = None
    if store.exists(options.collection):  # a mismatch found before reading the file, not after
        existing = store.open(options.collection)
        refuse_other_source(existing, options.model, dataset_root)
        known_dimension = existing.dimension
    started = time.perf_counter()
    checked = check_embeddings(reader, dataset_root, known_dimension, not source.allow_missing_files,
                               options.progress)
    if checked.counts:
        rejected = EmbeddingsRejected(reader.name, checked.rows, checked.problems, checked.counts)
        if source.rejects_file is not None:
            rejected.write_csv(source.rejects_file)
        raise rejected
    report = EmbeddingsReport(options.collection, str(dataset_root), found=checked.rows, problems=list(reader.notes),
                              embeddings_file=reader.name, check_seconds=time.perf_counter() - started)
    options = replace(options, image_metrics=False)  # no image is opened
    # Payload indexes are built once after the bulk write: maintaining them row by row made
    # the write about twice as slow (bench/bench_embeddings_file.py).
    collection = open_collection(store, options, FileVectors(options.model, checked.dimension),
                                 Dataset(dataset_root, LAYOUT, []), with_indexes=False)
    started = time.perf_counter()
    report.embedded = write_embeddings(collection, reader, dataset_root, checked.dimension, options.progress)
    create_payload_indexes(collection, options)
    report.embed_seconds = time.perf_counter() - started
    collection.update_metadata(vectors_from={"file": reader.name, "format": reader.format, "rows": checked.rows,
                                             "read_at": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    finish_index(collection, options, report)
    return report


def _dataset_root(root: str | Path) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise SourceError(f"dataset path {path} is not a folder; pass the folder the paths in the file are "
                          "relative to")
    return path.resolve()


# --- reading -------------------------------------------------------------------------------
def open_embeddings(file: str | Path, paths_file: str | Path | None = None,
                    column: str | None = None) -> EmbeddingsReader:
    """A reader for a Parquet file or folder, or a .npy matrix with its CSV of paths."""
    path = Path(file).expanduser()
    if not path.exists():
        raise EmbeddingsFileError(f"embeddings file {path} does not exist")
    if path.is_dir() or path.suffix.lower() in (".parquet", ".pq"):
        if paths_file is not None:
            raise EmbeddingsFileError("--paths is for a .npy matrix; a Parquet file holds its own path column")
        return ParquetReader(path, column)
    if path.suffix.lower() == ".npy":
        csv_path = Path(paths_file).expanduser() if paths_file is not None else path.with_suffix(".csv")
        if not csv_path.is_file():
            raise EmbeddingsFileError(f"{path.name} needs a CSV of its rows' paths: pass --paths FILE "
                                      f"(no {csv_path} found)")
        return NpyReader(path, csv_path)
    raise EmbeddingsFileError(f"{path.name}: use a Parquet file (.parquet, or a folder of them) or a .npy "
                              "matrix with a CSV of paths")


class ParquetReader(EmbeddingsReader):
    format = "parquet"

    def __init__(self, path: Path, column: str | None) -> None:
        import pyarrow.parquet as pq

        self.name = path.name
        self.files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
        if not self.files:
            raise EmbeddingsFileError(f"no .parquet files in the folder {path}")
        try:
            self.schema = pq.read_schema(self.files[0])
        except Exception as error:  # pyarrow raises several kinds for a file that is not Parquet
            raise EmbeddingsFileError(f"{self.files[0].name} is not a readable Parquet file: {error}") from error
        self.column = _embedding_column(self.schema, column, self.name)
        value_type = self.schema.field(self.column).type
        self.fixed_dimension = value_type.list_size if _is_fixed_size_list(value_type) else None
        self.extras, self.notes = _extra_columns(self.schema, {PATH, LABEL, SPLIT, self.column}, self.name)
        self.columns = [c for c in (PATH, LABEL, SPLIT) if c in self.schema.names] + [self.column, *self.extras]
        self.total_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def batches(self, size: int = READ_BATCH) -> Iterator[RowBatch]:
        import pyarrow.parquet as pq

        first = 0
        for file in self.files:
            handle = pq.ParquetFile(file)
            missing = [c for c in self.columns if c not in handle.schema_arrow.names]
            if missing:
                raise EmbeddingsFileError(f"{file.name} lacks the column(s) {missing} that {self.files[0].name} has")
            for batch in handle.iter_batches(batch_size=size, columns=self.columns):
                values, lengths = _list_values(batch.column(self.column))
                yield _row_batch(first, batch, values, lengths, self.extras)
                first += batch.num_rows


class NpyReader(EmbeddingsReader):
    format = "npy"

    def __init__(self, path: Path, csv_path: Path) -> None:
        self.name, self.csv_path = path.name, csv_path
        try:
            self.matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as error:
            raise EmbeddingsFileError(f"{path.name} is not a readable .npy matrix: {error}") from error
        if self.matrix.ndim != 2 or not (np.issubdtype(self.matrix.dtype, np.floating)
                                         or np.issubdtype(self.matrix.dtype, np.integer)):
            raise EmbeddingsFileError(f"{path.name} holds a {self.matrix.dtype} array of shape {self.matrix.shape}; "
                                      "expected a 2-D matrix of numbers, one row per point")
        self.fixed_dimension = int(self.matrix.shape[1])
        self.total_rows = int(self.matrix.shape[0])
        header = _csv_header(csv_path)
        if PATH not in header:
            raise EmbeddingsFileError(f"{csv_path.name} needs a 'path' column (and optional 'label', 'split'); "
                                      f"found {header}")
        self.extras = [c for c in header if c not in (PATH, LABEL, SPLIT) and c not in COMPUTED_FIELDS]
        self.notes = [f"{csv_path.name}: column '{c}' left out: embedscape computes '{c}' itself"
                      for c in header if c in COMPUTED_FIELDS]

    def batches(self, size: int = READ_BATCH) -> Iterator[RowBatch]:
        import pyarrow as pa
        import pyarrow.csv as pacsv

        rows, dimension = self.matrix.shape
        text = {c: pa.string() for c in (PATH, LABEL, SPLIT)}
        first = 0
        reader = pacsv.open_csv(self.csv_path, read_options=pacsv.ReadOptions(block_size=1 << 22),
                                convert_options=pacsv.ConvertOptions(column_types=text, strings_can_be_null=True))
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as error:
                raise EmbeddingsFileError(f"{self.csv_path.name} near row {first}: {error} (a column whose "
                                          "values change type part-way cannot be read)") from error
            if first + batch.num_rows > rows:
                raise EmbeddingsFileError(f"{self.csv_path.name} has more rows than {self.name} ({rows}); "
                                          "they must list the same rows in the same order")
            for start in range(0, batch.num_rows, size):
                part = batch.slice(start, size)
                block = np.asarray(self.matrix[first:first + part.num_rows], dtype=np.float32)
                lengths = np.full(part.num_rows, dimension, dtype=np.int64)
                yield _row_batch(first, part, block.reshape(-1), lengths, self.extras)
                first += part.num_rows
        if first != rows:
            raise EmbeddingsFileError(f"{self.csv_path.name} has {first} rows but {self.name} has {rows}; they must "
                                      "list the same rows in the same order")


def _csv_header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return next(csv.reader(handle), [])


def _embedding_column(schema: Any, column: str | None, name: str) -> str:
    numeric_lists = [f.name for f in schema if _is_number_list(f.type)]
    if PATH not in schema.names:
        raise EmbeddingsFileError(f"{name} needs a 'path' column (relative to the dataset folder); found "
                                  f"{schema.names}")
    if column is not None:
        if column not in schema.names:
            raise EmbeddingsFileError(f"{name} has no column '{column}'; its columns: {schema.names}")
        if column not in numeric_lists:
            raise EmbeddingsFileError(f"column '{column}' of {name} is {schema.field(column).type}, not a list of "
                                      "numbers")
        return column
    for candidate in EMBEDDING_COLUMNS:
        if candidate in numeric_lists:
            return candidate
    if len(numeric_lists) == 1:
        return numeric_lists[0]
    found = f"list columns {numeric_lists}" if numeric_lists else f"no list-of-numbers column in {schema.names}"
    raise EmbeddingsFileError(f"{name}: which column holds the vectors? {found}; name it with --embedding-column")


def _is_fixed_size_list(value_type: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_fixed_size_list(value_type)


def _is_number_list(value_type: Any) -> bool:
    import pyarrow as pa

    is_list = pa.types.is_list(value_type) or pa.types.is_large_list(value_type) or _is_fixed_size_list(value_type)
    return is_list and (pa.types.is_floating(value_type.value_type) or pa.types.is_integer(value_type.value_type))


def _extra_columns(schema: Any, used: set[str], name: str) -> tuple[list[str], list[str]]:
    """The scalar columns kept in the payload, and notes on those left out."""
    import pyarrow as pa

    extras, notes = [], []
    for column in schema:
        if column.name in used:
            continue
        scalar = (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                  or pa.types.is_boolean(column.type) or pa.types.is_string(column.type)
                  or pa.types.is_large_string(column.type) or pa.types.is_dictionary(column.type))
        if column.name in COMPUTED_FIELDS:
            notes.append(f"{name}: column '{column.name}' left out: embedscape computes '{column.name}' itself")
        elif not scalar:
            notes.append(f"{name}: column '{column.name}' left out: {column.type} is not a scalar type")
        else:
            extras.append(column.name)
    return extras, notes


def _list_values(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """(every value as float32, values per row with -1 for a missing vector) of a list column.
    A missing value inside a vector becomes NaN, which the check reports."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.list_value_length(array).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(array)
    values = pc.cast(flat, pa.float32()).to_numpy(zero_copy_only=False)
    return np.asarray(values, dtype=np.float32), lengths


def _row_batch(first: int, batch: Any, values: np.ndarray, lengths: np.ndarray, extras: Sequence[str]) -> RowBatch:
    def text(name: str) -> list[str]:
        if name not in batch.schema.names:
            return [""] * batch.num_rows
        return ["" if v is None else str(v) for v in batch.column(name).to_pylist()]

    return RowBatch(first, batch.column(PATH).to_pylist(), values, lengths, text(LABEL), text(SPLIT),
                    {name: batch.column(name).to_pylist() for name in extras})


# --- checking ------------------------------------------------------------------------------
def relative_path(text: Any, root: Path) -> tuple[str, str]:
    """(dataset-relative POSIX path, "") or ("", why the path cannot be used)."""
    if not isinstance(text, str) or not text.strip():
        return "", REASONS[NO_PATH]
    if text[0] not in "/." and "//" not in text and "/." not in text and text[-1] != "/" and os.sep == "/":
        return text, ""  # already normal (most rows): normpath would return it unchanged
    path = text.replace(os.sep, "/") if os.sep != "/" else text
    if posixpath.isabs(path):
        base = root.as_posix().rstrip("/") + "/"
        if not path.startswith(base):
            return "", REASONS[OUTSIDE]
        path = path[len(base):]
    path = posixpath.normpath(path)
    if path == "." or path.startswith("../") or path == "..":
        return "", REASONS[OUTSIDE]
    return path, ""


def check_embeddings(reader: EmbeddingsReader, root: Path, dimension: int | None, check_files: bool = True,
                     progress: bool = True) -> CheckedInput:
    """Read every row once and find every unusable one (see the module docstring). Problems
    are kept as one bit set per row, so even a file of 10M bad rows is checked in bounded memory."""
    shown: list[Any] = []       # pyarrow arrays: each row's relative path (or the text as given)
    flags: list[np.ndarray] = []
    lengths: list[np.ndarray] = []
    bar = progress_bar(desc=f"checking {reader.name}", unit="row", total=reader.total_rows, disable=not progress)
    for batch in reader.batches():
        names, path_flags = _check_paths(batch, root, check_files)
        shown.append(names)
        flags.append(path_flags | _vector_flags(batch))
        lengths.append(batch.lengths)
        bar.update(len(batch))
    bar.close()
    if not lengths or sum(len(x) for x in lengths) == 0:
        raise EmbeddingsFileError(f"{reader.name} has no rows")
    all_lengths, all_flags, names = np.concatenate(lengths), np.concatenate(flags), _concat(shown)
    dimension = dimension or reader.fixed_dimension or _most_common_length(all_lengths)
    all_flags[all_lengths < 0] |= NO_VECTOR
    all_flags[(all_lengths >= 0) & (all_lengths != dimension)] |= WRONG_LENGTH
    all_flags[_repeated_rows(names, (all_flags & (NO_PATH | OUTSIDE)) == 0)] |= REPEATED
    return _collect_problems(dimension, all_lengths, all_flags, names)


def _check_paths(batch: RowBatch, root: Path, check_files: bool) -> tuple[Any, np.ndarray]:
    import pyarrow as pa

    names, flags = [], np.zeros(len(batch), dtype=np.uint16)
    for i, text in enumerate(batch.paths):
        relative, why = relative_path(text, root)
        if why:
            flags[i] = PATH_REASONS[why]
        elif check_files and not os.path.isfile(root / relative):
            flags[i] = NO_FILE
        names.append(relative or ("" if text is None else str(text)))
    return pa.array(names, type=pa.string()), flags


def _vector_flags(batch: RowBatch) -> np.ndarray:
    """NOT_FINITE and ALL_ZERO per row (rows of any length)."""
    ends = np.cumsum(np.maximum(batch.lengths, 0))
    starts = ends - np.maximum(batch.lengths, 0)

    def per_row(mask: np.ndarray) -> np.ndarray:
        totals = np.concatenate([[0], np.cumsum(mask, dtype=np.int64)])
        return totals[ends] - totals[starts]

    not_finite = per_row(~np.isfinite(batch.values)) > 0
    all_zero = (per_row(batch.values != 0) == 0) & (batch.lengths > 0)
    return np.where(not_finite, NOT_FINITE, 0).astype(np.uint16) | np.where(all_zero, ALL_ZERO, 0).astype(np.uint16)


def _most_common_length(lengths: np.ndarray) -> int:
    present = lengths[lengths > 0]
    return int(np.bincount(present).argmax()) if len(present) else 0


def _concat(arrays: list[Any]) -> Any:
    import pyarrow as pa

    return pa.chunked_array(arrays, type=pa.string())


def _reason(flags: int, length: int, dimension: int) -> str:
    texts = [f"vector has {length} values, expected {dimension}" if bit == WRONG_LENGTH else text
             for bit, text in REASONS.items() if flags & bit]
    return "; ".join(texts)


def _collect_problems(dimension: int, lengths: np.ndarray, flags: np.ndarray, names: Any) -> CheckedInput:
    """Every bad row counted by reason; the first MAX_LISTED listed with their path."""
    checked = CheckedInput(len(flags), dimension)
    bad = np.flatnonzero(flags)
    if not len(bad):
        return checked
    shown_length = np.where(flags[bad] & WRONG_LENGTH, lengths[bad], 0)
    kinds, counts = np.unique(np.column_stack([flags[bad].astype(np.int64), shown_length]), axis=0,
                              return_counts=True)
    for (kind, length), count in zip(kinds, counts):
        checked.counts[_reason(int(kind), int(length), dimension)] += int(count)
    for row in bad[:MAX_LISTED]:
        checked.problems.append(RowProblem(int(row), names[int(row)].as_py(),
                                           _reason(int(flags[row]), int(lengths[row]), dimension)))
    return checked


def _repeated_rows(names: Any, usable: np.ndarray) -> np.ndarray:
    """Rows whose (usable) path another row has too: every one of them is reported."""
    import pyarrow as pa
    import pyarrow.compute as pc

    candidates = pc.filter(names, pa.array(usable))
    counts = pc.value_counts(candidates)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    if len(repeated) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(pc.is_in(names, value_set=repeated).to_numpy(zero_copy_only=False) & usable)


# --- writing -------------------------------------------------------------------------------
def write_embeddings(collection: Collection, reader: EmbeddingsReader, root: Path, dimension: int,
                     progress: bool = True) -> int:
    """Upsert every row (checked before) in batches; returns how many. Points already in the
    collection keep what users and analyses wrote on them (tags above all)."""
    had_points = collection.count() > 0
    written = 0
    bar = progress_bar(desc=f"writing {collection.name}", unit="row", total=reader.total_rows, disable=not progress)
    # One writer thread: batch n goes into Qdrant while batch n+1 is read and converted.
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing: Future[None] | None = None
        for batch in reader.batches(WRITE_BATCH):
            ids, vectors, payloads = _points(batch, root, dimension)
            if writing is not None:
                writing.result()
            writing = writer.submit(_upsert, collection, ids, vectors, payloads, had_points)
            written += len(ids)
            bar.update(len(ids))
        if writing is not None:
            writing.result()
    bar.close()
    return written


def _points(batch: RowBatch, root: Path, dimension: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    paths = [relative_path(text, root)[0] for text in batch.paths]
    vectors = normalise(batch.values.reshape(len(batch), dimension))
    payloads = []
    for i, path in enumerate(paths):
        # No `labels` (readers take a missing one as [label]) and no empty `tags`: each payload
        # key costs the engine ~10 us per point to convert, which is most of the write time.
        payload = {PATH: path, LABEL: batch.labels[i]}
        if batch.splits[i]:
            payload[SPLIT] = batch.splits[i]
        for name, column in batch.extras.items():
            if column[i] is not None:
                payload[name] = column[i]
        payloads.append(payload)
    return [point_id(p) for p in paths], vectors, payloads


def _upsert(collection: Collection, ids: list[str], vectors: np.ndarray, payloads: list[dict[str, Any]],
            had_points: bool) -> None:
    previous = {r.id: r.payload for r in collection.retrieve(ids)} if had_points else {}
    collection.upsert(ids, vectors, [_merged(previous[pid], p) if pid in previous else p
                                     for pid, p in zip(ids, payloads)])


def _merged(previous: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """A point written before keeps its tags and scores; a `labels` it has follows the new label."""
    if LABELS in previous:
        fresh = {**fresh, LABELS: [fresh[LABEL]] if fresh[LABEL] else []}
    return merge_payload(previous, fresh)
