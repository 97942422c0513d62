"""What curate may touch: the output marker, the names of the files curate writes, the lease."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow.fs as pafs

from curate import io

MARKER = ".curate.json"
LEASE = "_lock.json"
MARKER_KIND = "curate output folder"
LEASE_SECONDS = 60.0  # a lease not renewed for this long belongs to a dead driver
HEARTBEAT_SECONDS = 10.0

# Every file curate writes in an output folder, relative to it. `--overwrite` deletes only these;
# anything else (a user's file) stays where it is.
_UNIT = r"part-\d{5}"
_ATTEMPT = r"(?:\.a[0-9a-f]{12})?"  # object stores: attempt-unique keys (see io.attempt_name)
_STEP = r"[A-Za-z0-9][A-Za-z0-9_-]*"
OWNED_PATTERNS = [
    re.compile(p)
    for p in (
        rf"data/{_UNIT}{_ATTEMPT}\.(?:parquet|jsonl|jsonl\.gz)",
        rf"rejected/{_UNIT}(?:-s\d+)?{_ATTEMPT}\.parquet",
        rf"_segments/s\d+/{_UNIT}{_ATTEMPT}\.parquet",
        rf"_sidecar/{_STEP}/{_UNIT}{_ATTEMPT}\.parquet",
        rf"_manifest/s\d+-{_UNIT}\.json",
        r"_manifest/(?:run|plan)\.json",
        rf"_global/{_STEP}/(?:decision{_ATTEMPT}\.parquet|decide\.json)",
        # The decision per source shard (curate.decisions), and a dedup step's index of what
        # it kept (curate_filters.dedup.index).
        rf"_global/{_STEP}/decision/shard-\d{{6,}}{_ATTEMPT}\.parquet",
        rf"dedup_index/{_STEP}/(?:index\.json|part-[0-9a-f]{{16}}-\d{{5}}{_ATTEMPT}\.parquet)",
        # A global step's work folder is created empty by curate and handed to the step.
        rf"_global/{_STEP}/work/.+",
        r"_ids/check\.json",
        r"_ids/work/ids-\d{6}\.parquet",
        r"stats\.json",
        r"run\.yaml",
    )
]
# Temporaries carry curate's tag and a random part: `.NAME.curate-<hex>.tmp`.
TEMPORARY = re.compile(r"(?:^|/)\.[^/]+\.curate-[0-9a-f]{32}\.tmp$")


class OwnershipError(RuntimeError):
    """The output folder is not curate's to write, or another run holds it."""


def _relative(child: str, root: str) -> str:
    """`child` relative to `root`, '/'-separated: a prefix cut for what a listing of `root`
    returns (os.path.relpath costs more than the listing itself on a large output)."""
    head = root.rstrip("/") + "/"
    if child.startswith(head):
        return child[len(head) :]
    return os.path.relpath(child, root).replace(os.sep, "/")


def is_owned_file(relpath: str) -> bool:
    """Whether a path (relative to the output folder) is one that curate writes."""
    return bool(TEMPORARY.search(relpath)) or any(p.fullmatch(relpath) for p in OWNED_PATTERNS)


def _entries(root: str) -> list[pafs.FileInfo]:
    fs, path = io.filesystem(root)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        return []
    if info.type != pafs.FileType.Directory:
        raise OwnershipError(f"output {root} exists and is not a folder; choose another --output")
    return fs.get_file_info(pafs.FileSelector(path, recursive=True))


def read_marker(root: str) -> dict | None:
    """The marker's content when it is curate's (checked by content, not by name)."""
    uri = io.join(root, MARKER)
    if not io.exists(uri):
        return None
    try:
        data = io.read_json(uri)
    except (ValueError, OSError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("kind") == MARKER_KIND else None


def claim(root: str) -> None:
    """Make `root` curate's, or check that it already is; refuse a folder curate did not create.

    A folder is curate's only if it holds curate's marker, written first (atomically) into a
    new or empty folder. A non-empty folder without it is refused, with or without --overwrite.
    """
    entries = _entries(root)
    if read_marker(root) is not None:
        return
    if entries:
        what = (
            f"has a {MARKER} that is not curate's"
            if io.exists(io.join(root, MARKER))
            else f"is not empty and was not created by curate (no {MARKER} marker)"
        )
        raise OwnershipError(
            f"output folder {root} {what}; curate writes only into a new or empty folder or one "
            "it created: choose another --output"
        )
    from curate import __version__

    io.write_json_atomic(
        io.join(root, MARKER),
        {
            "kind": MARKER_KIND,
            "created_by": f"curate {__version__}",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "note": "curate deletes only the files it wrote in this folder (see the README)",
        },
    )


@dataclass
class Removal:
    removed: int
    kept_foreign: list[str]


def remove_owned(root: str, under: str = "", keep: tuple[str, ...] = (MARKER, LEASE)) -> Removal:
    """Delete the files curate wrote in its folder (all, or those `under` a sub-folder; never
    the marker and lease), then the folders left empty; report files curate did not write,
    which stay."""
    fs, path = io.filesystem(root)
    removed, foreign = 0, []
    dirs = []
    for info in _entries(root):
        rel = _relative(info.path, path)
        if not rel.startswith(under) or rel == under.rstrip("/"):
            continue
        if info.type == pafs.FileType.Directory:
            dirs.append(info.path)
        elif rel in keep:
            continue
        elif is_owned_file(rel):
            fs.delete_file(info.path)
            removed += 1
        else:
            foreign.append(rel)
    for d in sorted(dirs, key=len, reverse=True):  # deepest first
        if not fs.get_file_info(pafs.FileSelector(d)):
            fs.delete_dir(d)
    return Removal(removed, sorted(foreign))


def owned_files(root: str, under: str = "") -> list[str]:
    """Paths (as the filesystem names them) of the files curate wrote below `under`."""
    fs, path = io.filesystem(root)
    out = []
    for info in _entries(root):
        rel = _relative(info.path, path)
        if info.type == pafs.FileType.File and rel.startswith(under) and is_owned_file(rel):
            if not TEMPORARY.search(rel):
                out.append(info.path)
    return out


def remove_stale_temporaries(root: str) -> int:
    """Delete temporaries that killed attempts left; the lease guarantees none is live."""
    fs, path = io.filesystem(root)
    stale = [
        i.path
        for i in _entries(root)
        if i.type == pafs.FileType.File
        and TEMPORARY.search(_relative(i.path, path))
        and not os.path.basename(i.path).startswith(f".{LEASE}.")  # the live lease's own
    ]
    for p in stale:
        fs.delete_file(p)
    return len(stale)


# ----------------------------------------------------------------------------- the lease
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """One live driver per output folder: a lease file with holder, pid, host and heartbeat.

    A second driver is refused with who holds it; a stale lease (its holder dead on this host, or
    not renewed for LEASE_SECONDS) is taken over with a message.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.uri = io.join(root, LEASE)
        self.holder = uuid.uuid4().hex
        self.taken_over: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _record(self) -> dict:
        return {
            "holder": self.holder,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": getattr(self, "_started", time.time()),
            "heartbeat": time.time(),
        }

    def _describe(self, lease: dict) -> str:
        started = datetime.fromtimestamp(lease.get("started", 0), UTC).isoformat(timespec="seconds")
        age = time.time() - float(lease.get("heartbeat", 0))
        return (
            f"pid {lease.get('pid')} on {lease.get('host')}, started {started}, "
            f"last heartbeat {age:.0f}s ago"
        )

    def _stale(self, lease: dict) -> bool:
        if time.time() - float(lease.get("heartbeat", 0)) > LEASE_SECONDS:
            return True
        same_host = lease.get("host") == socket.gethostname()
        return same_host and not _pid_alive(int(lease.get("pid", -1)))

    def acquire(self) -> None:
        self._started = time.time()
        current = self._read()
        if current is not None and current.get("holder") != self.holder:
            if not self._stale(current):
                raise OwnershipError(
                    f"output folder {self.root} is in use by another curate run "
                    f"({self._describe(current)}); wait for it to finish or stop it, "
                    "or choose another --output"
                )
            self.taken_over = self._describe(current)
        if not self._create(exclusive=current is None):
            raise OwnershipError(
                f"output folder {self.root} was claimed by another curate run just now; "
                "wait for it to finish or choose another --output"
            )
        # Two drivers taking over one stale lease at once: the last writer wins, the other sees.
        time.sleep(0.05)
        now = self._read()
        if now is None or now.get("holder") != self.holder:
            raise OwnershipError(
                f"output folder {self.root} was claimed by another curate run just now "
                f"({self._describe(now or {})}); wait for it to finish or choose another --output"
            )
        self._thread = threading.Thread(target=self._beat, name="curate-lease", daemon=True)
        self._thread.start()

    def _read(self) -> dict | None:
        try:
            data = io.read_json(self.uri)
        except (FileNotFoundError, OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _create(self, exclusive: bool) -> bool:
        fs, path = io.filesystem(self.uri)
        if exclusive and not io.is_object_store(fs):
            fs.create_dir(os.path.dirname(path), recursive=True)
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w") as f:
                json.dump(self._record(), f)
            return True
        io.write_json_atomic(self.uri, self._record())
        return True

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                io.write_json_atomic(self.uri, self._record())
            except OSError:  # a full disk must not kill the run from this thread
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = self._read()
        if current is not None and current.get("holder") == self.holder:
            fs, path = io.filesystem(self.uri)
            try:
                fs.delete_file(path)
            except OSError:
                pass
