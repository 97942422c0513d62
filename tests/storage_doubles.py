"""A real pyarrow filesystem over the local disk that counts what is asked of it and can fail
chosen reads like an object store does (503 SlowDown), installed under `curate.io.filesystem`."""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
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
        fail_skip: int = 0,
        fail_after_reads: int | None = None,
        fail_ops: tuple[str, ...] = ("open", "read"),
    ) -> None:
        self.base = base
        self.fail_ops = fail_ops
        self.counts = counts
        self.fail_glob = fail_glob
        self.fail_left = fail_times
        self.skip_left = fail_skip  # matching opens that succeed before the failures start
        self.fail_after_reads = fail_after_reads  # fail mid-file instead of at open
        self.latency_s = latency_s
        self._lock = threading.Lock()  # the driver reads from a thread pool
        self.last = threading.local()  # the path this thread opened last (for footer counts)

    def _note(self, op: str, path: str) -> bool:
        """Count the call; raise (or, mid-file, return True) if it is one that should fail."""
        with self._lock:
            self.counts[(op, path)] += 1
            failing = op in self.fail_ops and self.fail_glob and self.fail_left
            if failing and fnmatch.fnmatch(path, self.fail_glob):
                if self.skip_left:
                    self.skip_left -= 1
                else:
                    self.fail_left -= 1
                    if self.fail_after_reads is None:
                        raise OSError(errno.EAGAIN, SLOW_DOWN)
                    return True
        if self.latency_s:
            time.sleep(self.latency_s)  # outside the lock: requests overlap as on a store
        return False

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
        self._note("move", dest)  # a commit: the temporary renamed into place
        self.base.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.base.copy_file(src, dest)

    def open_input_stream(self, path: str) -> Any:
        self._note("read", path)
        return self.base.open_input_stream(path)

    def open_input_file(self, path: str) -> Any:
        fails = self._note("open", path)
        self.last.path = path
        real = self.base.open_input_file(path)
        return pa.PythonFile(_BreaksMidway(real, self.fail_after_reads), "r") if fails else real

    def open_output_stream(self, path: str, metadata: dict | None = None) -> Any:
        return self.base.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: dict | None = None) -> Any:
        return self.base.open_append_stream(path, metadata=metadata)


class _BreaksMidway:
    """A readable file whose reads fail with a 503 after `ok_reads` of them succeeded."""

    def __init__(self, real: Any, ok_reads: int) -> None:
        self.real, self.ok_reads = real, ok_reads
        self.closed = False

    def read(self, n: int = -1) -> bytes:
        if self.ok_reads <= 0:
            raise OSError(errno.ECONNRESET, SLOW_DOWN)
        self.ok_reads -= 1
        return self.real.read(n) if n >= 0 else self.real.read()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.real.seek(offset, whence)

    def tell(self) -> int:
        return self.real.tell()

    def size(self) -> int:
        return self.real.size()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.closed = True
        self.real.close()


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
    fail_glob: str | None = None,
    fail_times: int = 0,
    latency_s: float = 0.0,
    fail_skip: int = 0,
    fail_after_reads: int | None = None,
    fail_ops: tuple[str, ...] = ("open", "read"),
) -> Iterator[Recorder]:
    """Route every local path `curate.io` opens through a CountingHandler (in this process:
    use `--executor local`); footer reads are counted at `pyarrow.parquet.ParquetFile`."""
    recorder = Recorder()
    handler = CountingHandler(
        pafs.LocalFileSystem(),
        recorder.counts,
        fail_glob,
        fail_times,
        latency_s,
        fail_skip,
        fail_after_reads,
        fail_ops,
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

    def importers(of: Any) -> list[Any]:
        """Modules that did `from curate.io import filesystem` (the dedup room) and hold `of`."""
        return [m for m in list(sys.modules.values()) if getattr(m, "filesystem", None) is of]

    io.filesystem = filesystem
    for module in importers(real_filesystem):
        module.filesystem = filesystem
    pq.ParquetFile.__init__ = init
    try:
        yield recorder
    finally:
        # Including modules first imported inside the block: they bound the double's function.
        for module in importers(filesystem):
            module.filesystem = real_filesystem
        pq.ParquetFile.__init__ = real_init


def executor_class() -> type:
    for module in ("curate.executors", "curate.runner"):
        with contextlib.suppress(ImportError, AttributeError):
            return __import__(module, fromlist=["LocalExecutor"]).LocalExecutor
    raise SystemExit("no LocalExecutor found")


class Phases:
    """Splits counts between the driver and the units it hands out, and times planning."""

    def __init__(self, recorder) -> None:
        self.recorder = recorder
        self.in_units = {"counts": {}, "footers": {}}
        self.first_unit: float | None = None

    @contextlib.contextmanager
    def installed(self):
        cls = executor_class()
        real_run, real_map = cls.run_units, cls.parallel_map
        phases = self

        def run_units(self, seg, units, decision):
            yield from phases._units(real_run(self, seg, units, decision))

        def parallel_map(self, fn, items):
            with phases._unit_work():
                return real_map(self, fn, items)

        cls.run_units, cls.parallel_map = run_units, parallel_map
        try:
            yield self
        finally:
            cls.run_units, cls.parallel_map = real_run, real_map

    def _units(self, summaries):
        iterator = iter(summaries)
        while True:
            if self.first_unit is None:
                self.first_unit = time.perf_counter()
                # Planning is over: the units run at disk speed (only the driver is measured).
                self.recorder.handler.latency_s = 0.0
            with self._unit_work():
                try:
                    summary = next(iterator)
                except StopIteration:
                    return
            yield summary

    @contextlib.contextmanager
    def _unit_work(self):
        before = (self.recorder.counts.copy(), self.recorder.footers.copy())
        try:
            yield
        finally:
            for name, now, then in (
                ("counts", self.recorder.counts, before[0]),
                ("footers", self.recorder.footers, before[1]),
            ):
                into = self.in_units[name]
                for key, n in now.items():
                    if n - then.get(key, 0):
                        into[key] = into.get(key, 0) + n - then.get(key, 0)

    def split(self, name: str) -> tuple[dict, dict]:
        everything = getattr(self.recorder, name)
        units = self.in_units[name]
        driver = {k: n - units.get(k, 0) for k, n in everything.items() if n - units.get(k, 0)}
        return driver, units
