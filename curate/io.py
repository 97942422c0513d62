"""Shard discovery, work units, streaming readers, stable ids and atomic writers."""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import glob
import gzip
import json
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from curate import retry

ROW_BITS = 40  # dense row id = shard index << 40 | row in shard: 1e12 rows a shard, 8M shards
DERIVED_ID = "curate_id"
ROW_ID = "__curate_row_id"
# Threads for the driver's storage calls: pyarrow's filesystems release the GIL, and an object
# store answers each request in tens of milliseconds, so many small reads overlap well.
IO_THREADS = 32

T = TypeVar("T")
R = TypeVar("R")


class InputError(ValueError):
    """Unreadable or malformed input; the message names the file and column."""


@dataclass(frozen=True)
class Shard:
    index: int
    uri: str  # what pyarrow.fs resolves (absolute local path or scheme://...)
    relpath: str  # stable name used in derived ids
    format: str  # parquet | jsonl
    num_rows: int | None  # known for Parquet
    row_group_rows: tuple[int, ...] = ()
    size: int | None = None  # bytes and modification time: a changed file changes the plan
    mtime_ns: int | None = None


@dataclass(frozen=True)
class WorkUnit:
    index: int
    shard: Shard
    row_groups: tuple[int, ...] | None  # None = whole shard
    first_row: int  # row index of the unit's first row within its shard

    @property
    def name(self) -> str:
        return f"part-{self.index:05d}"

    def describe(self) -> str:
        if self.row_groups is None:
            return self.shard.relpath
        return f"{self.shard.relpath} row groups {self.row_groups[0]}-{self.row_groups[-1]}"


_S3_OPTIONS: dict[str, str] = {}


def configure_storage(endpoint_url: str | None = None, region: str | None = None) -> None:
    """S3 settings from the config (else the standard AWS_* environment variables apply)."""
    _S3_OPTIONS.clear()
    # Also exported: plugins that open s3:// URIs with pyarrow directly see the same store.
    if endpoint_url:
        scheme, _, host = endpoint_url.rpartition("://")
        _S3_OPTIONS.update(endpoint_override=host.rstrip("/"), scheme=scheme or "https")
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
    if region:
        _S3_OPTIONS["region"] = region
        os.environ["AWS_DEFAULT_REGION"] = region


def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem and path for a local path or a URI."""
    if uri.startswith("s3://") and _S3_OPTIONS:
        return pafs.S3FileSystem(**_S3_OPTIONS), uri[len("s3://") :]
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def is_object_store(fs: pafs.FileSystem) -> bool:
    """Stores without rename (a move is a copy): objects appear whole when written, so files are
    written in place and a unit is published by its manifest alone."""
    return fs.type_name in ("s3", "gcs")


FORMATS = {
    "parquet": (".parquet", ".pq"),
    "jsonl": (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson"),
    "csv": (".csv", ".csv.gz"),
    "tsv": (".tsv", ".tsv.gz"),
}
KNOWN = "use .parquet, .jsonl(.gz), .csv(.gz) or .tsv(.gz), or set input.format"


def _format_of(path: str, wanted: str) -> str | None:
    if wanted != "auto":
        return wanted
    lower = path.lower()
    for fmt, endings in FORMATS.items():
        if lower.endswith(endings):
            return fmt
    return None


def _expand(
    pattern: str, wanted: str, skipped: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """(uri, base) pairs for one path pattern; base is what relative names are taken from."""
    fs, path = filesystem(pattern)
    scheme = pattern.split("://", 1)[0] + "://" if "://" in pattern else ""
    has_glob = any(ch in path for ch in "*?[")
    if not scheme and has_glob:
        base = path.split("*")[0].split("?")[0].split("[")[0]
        base = base if base.endswith("/") else os.path.dirname(base)
        return [(p, base) for p in sorted(glob.glob(path, recursive=True)) if os.path.isfile(p)]
    if has_glob:
        prefix = path.split("*")[0].split("?")[0].split("[")[0].rsplit("/", 1)[0]
        infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True))
        return [
            (scheme + i.path, prefix)
            for i in sorted(infos, key=lambda i: i.path)
            if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, path)
        ]
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise InputError(f"input path {pattern} does not exist")
    if info.type == pafs.FileType.Directory:
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
        files = []
        for i in infos:
            if i.type != pafs.FileType.File:
                continue
            name = os.path.relpath(i.path, path)
            if any(part.startswith((".", "_")) for part in name.split(os.sep)):
                if skipped is not None:
                    skipped.append(
                        (scheme + i.path, "hidden or metadata: its name starts with . or _")
                    )
            elif _format_of(i.path, wanted):
                files.append(i.path)
            elif skipped is not None:
                skipped.append((scheme + i.path, "unknown type"))
        return [(scheme + p, path) for p in sorted(files)]
    return [(scheme + path, os.path.dirname(path))]


def map_io(fn: Callable[[T], R], items: Iterable[T], threads: int = IO_THREADS) -> list[R]:
    """`fn` over `items` on a thread pool sized for I/O: results in the order of `items`, and
    of several failures the first in that order is raised (the same error on every run)."""
    items = list(items)
    if len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(min(threads, len(items)), thread_name_prefix="curate-io") as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class Footer:
    """What the driver needs of a Parquet footer: rows, rows per row group, the Arrow schema."""

    num_rows: int
    row_group_rows: tuple[int, ...]
    schema: pa.Schema


class Footers:
    """The Parquet footers of one run's input, each read once and in parallel, then handed to
    every check that needs one. Made per run and passed down: nothing outlives the run, and a
    file changed between two runs is read afresh by the next."""

    def __init__(self, policy: retry.Policy = retry.Policy()) -> None:
        self.policy = policy
        self._found: dict[str, Footer] = {}
        self._schemas: dict[bytes, pa.Schema] = {}  # shards share schemas: keep one of each
        self.reads = 0

    def load(self, uris: Iterable[str]) -> None:
        """Read the footers not read yet, in parallel; an unreadable one is an InputError."""
        missing = [u for u in dict.fromkeys(uris) if u not in self._found]
        for uri, footer in zip(missing, map_io(self._read, missing), strict=True):
            self._found[uri] = footer

    def get(self, uri: str) -> Footer:
        if uri not in self._found:
            self.load([uri])
        return self._found[uri]

    def schema(self, uri: str) -> pa.Schema:
        return self.get(uri).schema

    def _read(self, uri: str) -> Footer:
        footer = retry.call(lambda: _read_footer(uri), uri, self.policy)
        self.reads += 1  # (a lost update under threads would only undercount a statistic)
        # Keyed by the serialised schema, metadata included (Schema's == ignores metadata).
        key = footer.schema.serialize().to_pybytes()
        schema = self._schemas.setdefault(key, footer.schema)
        return Footer(footer.num_rows, footer.row_group_rows, schema)


def _read_footer(uri: str) -> Footer:
    fs, path = filesystem(uri)
    try:
        with fs.open_input_file(path) as f:
            pf = pq.ParquetFile(f)
            meta = pf.metadata
            groups = tuple(meta.row_group(i).num_rows for i in range(meta.num_row_groups))
            return Footer(meta.num_rows, groups, pf.schema_arrow)
    except Exception as exc:
        if retry.is_transient(exc):
            raise
        raise InputError(f"{uri}: not a readable Parquet file ({exc})") from exc


def discover(
    paths: str | list[str],
    wanted_format: str = "auto",
    exclude: str | None = None,
    skipped: list[tuple[str, str]] | None = None,
    footers: Footers | None = None,
) -> list[Shard]:
    """Every input shard, sorted by name, with Parquet footers read (a corrupt one fails here).

    Files under `exclude` (the run's output folder) are skipped, so an output written inside the
    input folder is never read back as input. Sizes, times and footers are read in parallel,
    each once; pass `footers` to keep them for the rest of the run.
    """
    footers = footers if footers is not None else Footers()
    patterns = [paths] if isinstance(paths, str) else list(paths)
    found: list[tuple[str, str]] = []
    for pattern in patterns:
        passed: list[tuple[str, str]] = []

        def expand(pattern: str = pattern, passed: list = passed) -> list[tuple[str, str]]:
            passed.clear()  # a retried listing starts afresh
            return _expand(pattern, wanted_format, passed)

        matches = retry.call(expand, f"input path {pattern}", footers.policy)
        if not matches:
            why = (
                f": {len(passed)} files skipped, e.g. {passed[0][0]} ({passed[0][1]}); {KNOWN}"
                if passed
                else ""
            )
            raise InputError(f"input path {pattern} matches no files{why}")
        if skipped is not None:
            skipped.extend(passed)
        found.extend(matches)
    first_base: dict[str, str] = {}
    for uri, base in found:  # a file matched by two patterns is read once
        first_base.setdefault(uri, base)
    found = list(first_base.items())
    if exclude and "://" not in exclude:
        exclude = os.path.abspath(exclude)
    skip = exclude.rstrip("/") + "/" if exclude else None
    found = [(u, b) for u, b in found if not (skip and u.startswith(skip))]
    relpaths = _relative_names(found)
    formats = []
    for uri, _ in found:
        fmt = _format_of(uri, wanted_format)
        if fmt is None:
            raise InputError(f"{uri}: unknown file type; {KNOWN}")
        formats.append(fmt)
    uris = [u for u, _ in found]
    stats = _file_stats(uris, footers.policy)
    footers.load(u for u, fmt in zip(uris, formats, strict=True) if fmt == "parquet")
    shards = []
    for uri, relpath, fmt, (size, mtime_ns) in zip(uris, relpaths, formats, stats, strict=True):
        num_rows, groups = None, ()
        if fmt == "parquet":
            footer = footers.get(uri)
            num_rows, groups = footer.num_rows, footer.row_group_rows
        shards.append(Shard(len(shards), uri, relpath, fmt, num_rows, groups, size, mtime_ns))
    return shards


def _local(uri: str) -> str:
    return uri.split("://", 1)[1] if "://" in uri else uri


def _relative_names(found: list[tuple[str, str]]) -> list[str]:
    """Names for derived ids, unique across every input root.

    One root: paths relative to it (as always). Several roots (`[crawl1/, crawl2/]`): relative
    to their common folder, so `crawl1/part-0.parquet` and `crawl2/part-0.parquet` differ; where
    that still collides (other schemes or buckets), the root's position prefixes the name.
    """
    bases = list(dict.fromkeys(b for _, b in found))
    names = [os.path.relpath(_local(u), b) if b else os.path.basename(_local(u)) for u, b in found]
    if len(bases) > 1:
        schemes = {u.split("://", 1)[0] if "://" in u else "" for u, _ in found}
        try:
            common = os.path.commonpath([b for b in bases if b]) if len(schemes) == 1 else None
        except ValueError:
            common = None
        if common is not None:
            names = [os.path.relpath(_local(u), common) for u, _ in found]
    if len(set(names)) < len(names):
        index = {b: i for i, b in enumerate(bases)}
        names = [f"{index[b]}/{n}" for (_, b), n in zip(found, names, strict=True)]
    return names


def _file_stats(
    uris: list[str], policy: retry.Policy = retry.Policy()
) -> list[tuple[int | None, int | None]]:
    """Size and modification time of every input file: one call per slice of files, the
    slices in parallel (on an object store each file is a request of its own)."""
    if not uris:
        return []
    fs, _ = filesystem(uris[0])
    if fs.type_name == "local" and all("://" not in u for u in uris):
        # Local disk: one call stats them all in C++, faster than any pool of threads.
        paths = [os.path.abspath(u) for u in uris]
        infos = retry.call(lambda: fs.get_file_info(paths), "input files", policy)
        return [(i.size, i.mtime_ns) for i in infos]
    size = max(1, -(-len(uris) // IO_THREADS))
    slices = [uris[i : i + size] for i in range(0, len(uris), size)]

    def stat(group: list[str]) -> list[tuple[int | None, int | None]]:
        out: list[tuple[int | None, int | None]] = []
        for uri in group:
            fs, path = filesystem(uri)
            info = retry.call(lambda fs=fs, path=path: fs.get_file_info(path), uri, policy)
            out.append((info.size, info.mtime_ns))
        return out

    return [stamp for part in map_io(stat, slices) for stamp in part]


def _open_parquet(uri: str) -> pq.ParquetFile:
    fs, path = filesystem(uri)
    return pq.ParquetFile(fs.open_input_file(path))


def plan_units(shards: list[Shard], unit_rows: int) -> list[WorkUnit]:
    """Split shards into work units: whole shards, or ranges of row groups of at most unit_rows."""
    units: list[WorkUnit] = []
    for shard in shards:
        if shard.format != "parquet" or (shard.num_rows or 0) <= unit_rows:
            units.append(WorkUnit(len(units), shard, None, 0))
            continue
        start, rows, first = 0, 0, 0
        for i, n in enumerate(shard.row_group_rows):
            if rows and rows + n > unit_rows:
                units.append(WorkUnit(len(units), shard, tuple(range(start, i)), first))
                start, first, rows = i, first + rows, 0
            rows += n
        units.append(
            WorkUnit(len(units), shard, tuple(range(start, len(shard.row_group_rows))), first)
        )
    return units


def unit_schema(unit: WorkUnit) -> pa.Schema | None:
    """The schema of a unit's rows as read (None for JSONL: known after the first batch)."""
    if unit.shard.format == "parquet":
        try:
            return _open_parquet(unit.shard.uri).schema_arrow
        except (pa.ArrowInvalid, OSError) as exc:  # e.g. a shard that went bad mid-run
            if retry.is_transient(exc):  # a store's hiccup, not bad input: the unit is retried
                raise
            raise InputError(f"{unit.describe()}: cannot read: {exc}") from exc
    return None


def open_unit(
    unit: WorkUnit, batch_size: int, columns: list[str] | None = None
) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    """`unit_schema` and `read_unit` from one open of the unit's file: one footer read (and on
    an object store one HEAD) where calling both makes two."""
    if unit.shard.format != "parquet":
        return None, read_unit(unit, batch_size, columns)
    try:
        pf = _open_parquet(unit.shard.uri)
        schema = pf.schema_arrow
    except (pa.ArrowInvalid, OSError) as exc:
        if retry.is_transient(exc):  # a store's hiccup, not bad input: the unit is retried
            raise
        raise InputError(f"{unit.describe()}: cannot read: {exc}") from exc
    return schema, read_unit(unit, batch_size, columns, opened=pf)


def read_unit(
    unit: WorkUnit,
    batch_size: int,
    columns: list[str] | None = None,
    opened: pq.ParquetFile | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream a unit's record batches (all columns, or only `columns` where present); memory
    does not grow with the shard's size. `opened`: its Parquet file, already open."""
    uri = unit.shard.uri
    try:
        if unit.shard.format == "parquet":
            pf = opened if opened is not None else _open_parquet(uri)
            groups = list(unit.row_groups) if unit.row_groups is not None else None
            if columns is not None:
                columns = [c for c in columns if c in pf.schema_arrow.names]
            yield from pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns)
            return
        fs, path = filesystem(uri)
        compression = "gzip" if path.endswith(".gz") else None
        if unit.shard.format in ("csv", "tsv"):
            yield from _read_delimited(
                fs, path, compression, unit.shard.format, batch_size, columns
            )
            return
        stream = fs.open_input_stream(path, compression=compression)
        try:
            reader = pajson.open_json(stream, read_options=pajson.ReadOptions(block_size=1 << 24))
        except pa.ArrowInvalid as exc:
            if "Empty JSON stream" in str(exc):  # an empty file is an empty shard, not an error
                return
            raise
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            while rows >= batch_size:
                table = _select(pa.Table.from_batches(pending).combine_chunks(), columns)
                yield from table.slice(0, batch_size).to_batches()
                rest = table.slice(batch_size)
                pending, rows = rest.to_batches(), rest.num_rows
        if rows:
            yield from _select(
                pa.Table.from_batches(pending).combine_chunks(), columns
            ).to_batches()
    except (pa.ArrowInvalid, OSError) as exc:
        if retry.is_transient(exc):  # a store's hiccup, not bad input: the unit is retried
            raise
        raise InputError(f"{unit.describe()}: cannot read: {exc}") from exc


def _read_delimited(
    fs: pafs.FileSystem,
    path: str,
    compression: str | None,
    fmt: str,
    batch_size: int,
    columns: list[str] | None,
) -> Iterator[pa.RecordBatch]:
    """CSV / TSV with a header row, every column read as text (no type guessing per block)."""
    delimiter = "\t" if fmt == "tsv" else ","
    with fs.open_input_stream(path, compression=compression) as head:
        first = head.read(1 << 20).decode("utf-8", errors="replace").splitlines()[:1]
    if not first:
        return
    names = next(csv.reader(first, delimiter=delimiter))
    stream = fs.open_input_stream(path, compression=compression)
    reader = pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=1 << 24),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            include_columns=[c for c in columns if c in names] if columns else None,
            strings_can_be_null=False,
        ),
    )
    for batch in reader:
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


def _select(table: pa.Table, columns: list[str] | None) -> pa.Table:
    return (
        table if columns is None else table.select([c for c in columns if c in table.schema.names])
    )


def derive_ids(relpath: str, first_row: int, num_rows: int) -> pa.Array:
    """Stable ids '<relative path>#<row>' for rows without an id column."""
    rows = pa.array(np.arange(first_row, first_row + num_rows, dtype=np.int64)).cast(pa.string())
    return pc.binary_join_element_wise(relpath, rows, "#")


def dense_row_ids(shard_index: int, first_row: int, num_rows: int) -> pa.Array:
    """Dense int64 ids (shard index, row): corpus order, cheap to sort and search."""
    base = (np.int64(shard_index) << ROW_BITS) + first_row
    return pa.array(np.arange(base, base + num_rows, dtype=np.int64))


def join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def temporary_name(path: str) -> str:
    """A temporary beside `path` that curate recognises as its own: `.NAME.curate-<hex>.tmp`."""
    head, base = os.path.split(path)
    return os.path.join(head, f".{base}.curate-{uuid.uuid4().hex}.tmp")


def attempt_name(path: str) -> str:
    """An attempt-unique key for an object store (no rename there): `part-00000.a<hex>.parquet`.

    A failed attempt's objects never carry the final name, so readers trust only what a
    manifest names, and an abort deletes only its own attempt's objects.
    """
    head, base = os.path.split(path)
    stem, dot, ext = base.partition(".")
    return os.path.join(head, f"{stem}.a{uuid.uuid4().hex[:12]}{dot}{ext}")


def _discard(fs: pafs.FileSystem, sink: pa.NativeFile, tmp: str) -> None:
    """Close and delete a temporary whose writer could not start."""
    try:
        sink.close()
    except OSError:
        pass
    try:
        fs.delete_file(tmp)
    except OSError:
        pass


class AtomicParquetWriter:
    """Writes a Parquet file under a temporary name; `commit` renames it into place."""

    def __init__(self, uri: str, schema: pa.Schema, compression: str = "zstd") -> None:
        self.fs, self.path = filesystem(uri)
        parent = os.path.dirname(self.path)
        self.direct = is_object_store(self.fs)
        scheme = uri.split("://", 1)[0] + "://" if "://" in uri else ""
        if self.direct:  # no rename on object stores: the manifest written last publishes
            self.path = attempt_name(self.path)
            self.tmp = self.path
        else:
            self.fs.create_dir(parent, recursive=True)
            self.tmp = temporary_name(self.path)
        self.uri = scheme + self.path  # where the file is once committed: manifests name it
        self.schema = schema
        self._sink = self.fs.open_output_stream(self.tmp)
        try:  # the header's first bytes can already meet a full disk: leave no temporary
            self._writer = pq.ParquetWriter(self._sink, schema, compression=compression)
        except BaseException:
            _discard(self.fs, self._sink, self.tmp)
            raise

    def write(self, table: pa.Table, row_group_size: int | None = None) -> None:
        """Append rows; `row_group_size` caps a row group (default: pyarrow's, 1Mi rows)."""
        if table.num_rows:
            self._writer.write_table(
                table.cast(self.schema) if table.schema != self.schema else table,
                row_group_size=row_group_size,
            )

    def commit(self) -> None:
        self._writer.close()
        self._sink.close()  # an object store completes the upload here
        if not self.direct:
            self.fs.move(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
            self._sink.close()
        finally:
            self.fs.delete_file(self.tmp)


class AtomicJsonlWriter:
    """Kept rows as JSON Lines (`.jsonl`, or gzip for `.jsonl.gz`), published like Parquet.

    One object a row, keys in column order, non-ASCII kept as is; values JSON lacks (bytes,
    dates) are written as strings. The gzip header carries no time, so bytes are reproducible.
    """

    def __init__(self, uri: str, schema: pa.Schema) -> None:
        self.fs, self.path = filesystem(uri)
        self.direct = is_object_store(self.fs)
        scheme = uri.split("://", 1)[0] + "://" if "://" in uri else ""
        if self.direct:
            self.path = attempt_name(self.path)
            self.tmp = self.path
        else:
            self.fs.create_dir(os.path.dirname(self.path), recursive=True)
            self.tmp = temporary_name(self.path)
        self.uri = scheme + self.path
        self.schema = schema
        self._sink = self.fs.open_output_stream(self.tmp)
        try:  # gzip writes its header at once
            self._gzip = (
                gzip.GzipFile(fileobj=self._sink, mode="wb", mtime=0, filename="")
                if self.path.endswith(".gz")
                else None
            )
        except BaseException:
            _discard(self.fs, self._sink, self.tmp)
            raise

    def write(self, table: pa.Table, row_group_size: int | None = None) -> None:
        """Append rows (JSON Lines has no row groups: `row_group_size` is ignored)."""
        if not table.num_rows:
            return
        lines = "".join(
            json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in table.to_pylist()
        ).encode()
        (self._gzip or self._sink).write(lines)

    def _close(self) -> None:
        if self._gzip is not None:
            self._gzip.close()
        self._sink.close()

    def commit(self) -> None:
        self._close()
        if not self.direct:
            self.fs.move(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._close()
        finally:
            self.fs.delete_file(self.tmp)


def write_json_atomic(uri: str, data: object) -> None:
    write_text_atomic(uri, json.dumps(data, indent=2))


def write_text_atomic(uri: str, text: str) -> None:
    """Publish a small file whole: temp name + rename locally, one PUT on an object store."""
    fs, path = filesystem(uri)
    if is_object_store(fs):  # a PUT is atomic: the object appears whole or not at all
        with fs.open_output_stream(path) as out:
            out.write(text.encode())
        return
    fs.create_dir(os.path.dirname(path), recursive=True)
    tmp = temporary_name(path)
    try:
        with fs.open_output_stream(tmp) as out:
            out.write(text.encode())
        fs.move(tmp, path)
    except BaseException:  # a full disk, an interrupt: the temporary must not stay behind
        with contextlib.suppress(OSError):
            fs.delete_file(tmp)
        raise


def read_json(uri: str) -> object:
    fs, path = filesystem(uri)
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def list_files(uri: str, suffix: str = "") -> list[str]:
    """Files directly under a folder (sorted), skipping temporaries."""
    fs, path = filesystem(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    scheme = uri.split("://", 1)[0] + "://" if "://" in uri else ""
    infos = fs.get_file_info(pafs.FileSelector(path))
    return sorted(
        scheme + i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.path.endswith(suffix)
        and not os.path.basename(i.path).startswith(".")
    )


def local_path(uri: str) -> Path | None:
    return None if "://" in uri else Path(uri)
