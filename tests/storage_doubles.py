"""A real pyarrow filesystem over the local disk that counts what is asked of it and can fail
chosen reads like an object store does (503 SlowDown), installed under `curate.io.filesystem`."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from curate import io

SLOW_DOWN = "AWS Error SLOW_DOWN during GetObject operation: 503 Slow Down, please retry"


class CountingHandler(pafs.FileSystemHandler):
    """Delegates to a real filesystem; counts calls per (operation, path), waits `latency_s` per
    request like an object store, and raises a transient OSError on the first `fail_times` reads
    of paths matching `fail_glob` (-1: every time)."""

    def __init__(
        self,
        base: pafs.FileSystem,
        counts: Counter,
        fail_glob: str | None = None,
        fail_times: int = 0,
        latency_s: float = 0.0,
    ) -> None:
        self.base = base
        self.counts = counts
        self.fail_glob = fail_glob
        self.fail_left = fail_times
        self.latency_s = latency_s
        self._lock = threading.Lock()  # the driver reads from a thread pool
        self.last = threading.local()  # the path this thread opened last (for footer counts)

    def _note(self, op: str, path: str) -> None:
        with self._lock:
            self.counts[(op, path)] += 1
            failing = op in ("open", "read") and self.fail_glob and self.fail_left
            if failing and fnmatch.fnmatch(path, self.fail_glob):
                self.fail_left -= 1
                raise OSError(errno.EAGAIN, SLOW_DOWN)
        if self.latency_s:
            time.sleep(self.latency_s)  # outside the lock: requests overlap as on a store

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CountingHandler) and other.base.equals(self.base)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_type_name(self) -> str:
        return "counting"

    def normalize_path(self, path: str) -> str:
        return self.base.normalize_path(path)

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        for p in paths:
            self._note("info", p)
        return self.base.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        self._note("list", selector.base_dir)
        return self.base.get_file_info(selector)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.base.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.base.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.base.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        self.base.delete_dir_contents("/", accept_root_dir=True)

    def delete_file(self, path: str) -> None:
        self.base.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.base.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.base.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        self._note("read", path)
        return self.base.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        self._note("open", path)
        self.last.path = path
        return self.base.open_input_file(path)

    def open_output_stream(self, path: str, metadata: dict | None = None) -> Any:
        return self.base.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: dict | None = None) -> Any:
        return self.base.open_append_stream(path, metadata=metadata)


class Recorder:
    """What a run asked of storage: per-(operation, path) counts and Parquet footer reads."""

    def __init__(self) -> None:
        self.handler: CountingHandler | None = None
        self.counts: Counter = Counter()
        self.footers: Counter = Counter()  # source path -> ParquetFile opened without metadata

    def total(self, op: str, glob: str = "*") -> int:
        return sum(n for (o, p), n in self.counts.items() if o == op and fnmatch.fnmatch(p, glob))

    def most(self, op: str, glob: str = "*") -> int:
        """The most times any one path matching `glob` saw `op` (0 if none)."""
        found = [n for (o, p), n in self.counts.items() if o == op and fnmatch.fnmatch(p, glob)]
        return max(found, default=0)


@contextlib.contextmanager
def recording(
    fail_glob: str | None = None, fail_times: int = 0, latency_s: float = 0.0
) -> Iterator[Recorder]:
    """Route every local path `curate.io` opens through a CountingHandler (in this process:
    use `--executor local`); footer reads are counted at `pyarrow.parquet.ParquetFile`."""
    recorder = Recorder()
    handler = CountingHandler(
        pafs.LocalFileSystem(), recorder.counts, fail_glob, fail_times, latency_s
    )
    recorder.handler = handler
    counting = pafs.PyFileSystem(handler)
    real_filesystem, real_init = io.filesystem, pq.ParquetFile.__init__
    lock = threading.Lock()

    def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
        fs, path = real_filesystem(uri)
        return (counting, path) if fs.type_name == "local" else (fs, path)

    def init(self: pq.ParquetFile, source: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("metadata") is None and not (len(args) >= 1 and args[0] is not None):
            with lock:
                where = source if isinstance(source, str) else getattr(handler.last, "path", "?")
                recorder.footers[where] += 1
        real_init(self, source, *args, **kwargs)

    io.filesystem = filesystem
    pq.ParquetFile.__init__ = init
    try:
        yield recorder
    finally:
        io.filesystem = real_filesystem
        pq.ParquetFile.__init__ = real_init
