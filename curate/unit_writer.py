"""A unit's output files: opened on their first row, written in row groups of a target size,
committed together or not at all, and published by the unit's manifest, written last."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from curate import io
from curate.config import OutputConfig

# A row group closes at whichever comes first: readers get few, large groups (fewer footers,
# better compression) while a writer holds at most one group per open file in memory.
ROW_GROUP_ROWS = 65_536
ROW_GROUP_BYTES = 128 << 20

FileWriter = io.AtomicParquetWriter | io.AtomicJsonlWriter


@dataclass(frozen=True)
class Layout:
    """Where a run's files live inside the output folder."""

    root: str

    def data(self, unit: str, fmt: str = "parquet") -> str:
        return io.join(self.root, "data", f"{unit}.{fmt}")

    def segment(self, seg: int, unit: str) -> str:
        return io.join(self.root, "_segments", f"s{seg}", f"{unit}.parquet")

    def rejected(self, seg: int, unit: str) -> str:
        suffix = "" if seg == 0 else f"-s{seg}"
        return io.join(self.root, "rejected", f"{unit}{suffix}.parquet")

    def sidecar(self, sid: str, unit: str) -> str:
        return io.join(self.root, "_sidecar", sid, f"{unit}.parquet")

    def manifest(self, seg: int, unit: str) -> str:
        return io.join(self.root, "_manifest", f"s{seg}-{unit}.json")

    def decision(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "decision.parquet")

    def decision_stats(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "decide.json")

    def workdir(self, sid: str) -> str:
        return io.join(self.root, "_global", sid, "work")


class RowGroupWriter:
    """One output file, created on its first row (never for a file that would hold none), fed
    in batches and written in row groups of `rows` rows (or `nbytes` bytes, if that comes first).
    """

    def __init__(
        self,
        open_file: Callable[[pa.Schema], FileWriter],
        rows: int = ROW_GROUP_ROWS,
        nbytes: int = ROW_GROUP_BYTES,
    ) -> None:
        self._open = open_file
        self.rows = rows
        self.nbytes = nbytes
        self.file: FileWriter | None = None
        self._buffer: list[pa.Table] = []
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self.row_groups = 0

    @property
    def uri(self) -> str | None:
        """Where the file is once committed; None while (and if) it holds no row."""
        return self.file.uri if self.file is not None else None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.file is None:
            self.file = self._open(table.schema)
        if table.schema != self.file.schema:  # e.g. JSONL batches whose types were inferred
            table = table.cast(self.file.schema)
        self._buffer.append(table)
        self._buffered_rows += table.num_rows
        self._buffered_bytes += table.nbytes
        while self._buffered_rows >= self.rows:
            self._flush(self.rows)
        if self._buffered_bytes >= self.nbytes:
            self._flush(self._buffered_rows)

    def _flush(self, rows: int) -> None:
        """Write the first `rows` buffered rows as one row group; keep the rest buffered."""
        buffered = pa.concat_tables(self._buffer)
        group = buffered.slice(0, rows)
        rest = buffered.slice(rows)
        self.file.write(group, row_group_size=rows)
        self.row_groups += 1
        self._buffer = [rest] if rest.num_rows else []
        self._buffered_rows = rest.num_rows
        self._buffered_bytes = rest.nbytes if rest.num_rows else 0

    def commit(self) -> None:
        if self.file is None:
            return
        if self._buffered_rows:
            self._flush(self._buffered_rows)
        self.file.commit()

    def abort(self) -> None:
        self._buffer = []
        if self.file is not None:
            self.file.abort()


WriterFactory = Callable[[pa.Schema], FileWriter]


def intermediate_codec(root: str, configured: str) -> str:
    """The codec of a segment's survivors, which only the next segment reads (then deleted):
    none on a local disk, where compressing and decompressing them with zstd costs about 0.1
    CPU second per 10,000 web pages and saves nothing the run needs; the configured one on an
    object store, where bytes are what each request pays for. The kept output is the same
    bytes either way."""
    return "none" if io.filesystem(root)[0].type_name == "local" else configured


class UnitWriter:
    """The files one unit writes in one segment: kept rows, its ledger, the global step's sidecar.

    A file that would hold no row is not written; the manifest, written after every file is in
    place, names the files that were (`files`) and carries the unit's counts either way.
    """

    def __init__(
        self,
        layout: Layout,
        output: OutputConfig,
        seg: int,
        unit: str,
        last: bool,
        sidecar_step: str | None = None,
    ) -> None:
        self.layout = layout
        self.manifest_uri = layout.manifest(seg, unit)
        rows = output.row_group_rows
        fmt = output.format if last else "parquet"
        data = layout.data(unit, fmt) if last else layout.segment(seg, unit)

        def parquet(uri: str, compression: str = output.compression) -> WriterFactory:
            return lambda schema: io.AtomicParquetWriter(uri, schema, compression)

        codec = output.compression if last else intermediate_codec(layout.root, output.compression)
        self.files: dict[str, RowGroupWriter] = {
            "data": RowGroupWriter(
                parquet(data, codec)
                if fmt == "parquet"
                else (lambda s: io.AtomicJsonlWriter(data, s)),
                rows,
            ),
            "rejected": RowGroupWriter(parquet(layout.rejected(seg, unit)), rows),
        }
        if sidecar_step is not None:
            self.files["sidecar"] = RowGroupWriter(
                parquet(layout.sidecar(sidecar_step, unit)), rows
            )

    def write(self, kept: pa.Table, rejected: pa.Table, sidecar: pa.Table | None = None) -> None:
        self.files["data"].write(kept)
        self.files["rejected"].write(rejected)
        if sidecar is not None:
            self.files["sidecar"].write(sidecar)

    def commit(self) -> dict[str, str]:
        """Put every file in place (all or none); return what was written, by kind."""
        try:
            for f in self.files.values():
                f.commit()
        except BaseException:
            self.abort()
            raise
        return {kind: f.uri for kind, f in sorted(self.files.items()) if f.uri is not None}

    def publish(self, summary: dict[str, Any]) -> None:
        """Write the manifest, after every file is in place: from now on the unit is done."""
        io.write_json_atomic(self.manifest_uri, summary)

    def abort(self) -> None:
        """Remove whatever this attempt wrote; nothing of it is published."""
        for f in self.files.values():
            try:
                f.abort()
            except Exception:  # already committed, or the temporary is gone
                pass
