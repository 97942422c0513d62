"""Model files named in step params: find them, hash them, and materialise them on workers."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from curate.filter import _ModelPathMarker
from curate.io import filesystem


def _is_model_field(annotation: Any, metadata: list[Any]) -> bool:
    if any(isinstance(m, _ModelPathMarker) for m in metadata):
        return True
    for arg in typing.get_args(annotation):
        if any(isinstance(m, _ModelPathMarker) for m in getattr(arg, "__metadata__", ())):
            return True
        if typing.get_args(arg) and _is_model_field(arg, []):
            return True
    return False


def model_fields(params: BaseModel) -> dict[str, str]:
    """The params fields that hold model paths and their (non-empty) values."""
    out = {}
    for name, field in type(params).model_fields.items():
        value = getattr(params, name)
        if value and _is_model_field(field.annotation, list(field.metadata)):
            out[name] = str(value)
    return out


def sha256_path(uri: str) -> str:
    """sha256 of a model file, or of a model folder (its files' names and bytes, sorted)."""
    fs, path = filesystem(uri)
    from pyarrow.fs import FileSelector, FileType

    digest = hashlib.sha256()
    info = fs.get_file_info(path)
    if info.type == FileType.NotFound:
        raise FileNotFoundError(f"model {uri} does not exist")
    files = (
        [path]
        if info.type == FileType.File
        else sorted(
            i.path
            for i in fs.get_file_info(FileSelector(path, recursive=True))
            if i.type == FileType.File
        )
    )
    for f in files:
        if info.type != FileType.File:
            digest.update(os.path.relpath(f, path).encode())
        with fs.open_input_stream(f) as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def pack(uri: str) -> dict[str, bytes]:
    """A model file or folder as {relative name: bytes}, to ship through the object store."""
    fs, path = filesystem(uri)
    from pyarrow.fs import FileSelector, FileType

    info = fs.get_file_info(path)
    if info.type == FileType.File:
        with fs.open_input_stream(path) as f:
            files = {"": f.read()}
        # A model's settings sidecar (`<model>.json`, e.g. the fastText normaliser) travels too.
        if fs.get_file_info(path + ".json").type == FileType.File:
            with fs.open_input_stream(path + ".json") as f:
                files[".json"] = f.read()
        return files
    out = {}
    for i in fs.get_file_info(FileSelector(path, recursive=True)):
        if i.type == FileType.File:
            with fs.open_input_stream(i.path) as f:
                out[os.path.relpath(i.path, path)] = f.read()
    return out


def materialise(files: dict[str, bytes], sha256: str, name: str) -> str:
    """Write shipped model bytes to a local cache on this worker, verify the hash, return path.

    Several actors of one node may unpack the same model at once: each writes its own staging
    folder inside the cache (same filesystem, so the move is atomic), and one whose move finds
    the copy of a concurrent winner already there keeps that one, verified like its own."""
    cache = Path(tempfile.gettempdir()) / "curate-models"
    root = cache / sha256
    target = root / name
    if not target.exists():
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=cache, prefix=".staging-"))
        try:
            _unpack(files, staging, name)
            if (staging / (name + ".json")).exists():
                os.replace(staging / (name + ".json"), root / (name + ".json"))
            try:
                os.replace(staging / name, target)
            except OSError as exc:
                # A folder cannot replace a non-empty one (ENOTEMPTY, or EEXIST on some
                # systems): another actor won the race. A file replaces a file atomically.
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.is_dir():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    actual = sha256_path(str(target))
    if actual != sha256:
        raise ValueError(
            f"model {name}: sha256 {actual} on this worker differs from the driver's {sha256}"
        )
    return str(target)


def _unpack(files: dict[str, bytes], staging: Path, name: str) -> None:
    """Write what `pack` shipped under `staging`: a file (and its `.json` sidecar) or a folder."""
    if "" in files:
        (staging / name).write_bytes(files[""])
        if ".json" in files:
            (staging / (name + ".json")).write_bytes(files[".json"])
        return
    for rel, data in files.items():
        (staging / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / name / rel).write_bytes(data)
