"""A dedup index: the bucket keys and kept ids of earlier runs, to dedup a new crawl against.

An index is a folder holding `index.json` and Parquet part files a person can open: one row per
document an earlier run signed, with its bucket key columns (`band_00`, ... or `hash_hi`,
`hash_lo`) and `id`, the user id of the document it was kept as (its own id when it survived,
else its survivor's). `index.json` names the parts (and who added each), the step and the
params that define the keys; a run reads only the parts it names, in that order.

curate never deletes or rewrites a part file outside its own output folder: `update_index`
adds new parts, then replaces `index.json` atomically (its entries added by the same output
and step replace themselves, so a rerun never dedups against its own earlier survivors).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import io, ownership
from curate.models import sha256_path

KIND = "curate dedup index"
FORMAT = 1
MANIFEST = "index.json"


def owner_of(outdir: str) -> tuple[str, str]:
    """The output folder and step id of a decision folder `<output>/_global/<step>/decision`."""
    root, _, rest = outdir.rstrip("/").rpartition("/_global/")
    return root, rest.split("/", 1)[0]


def _manifest(path: str) -> dict[str, Any]:
    uri = io.join(path, MANIFEST)
    if not io.exists(uri):
        raise io.InputError(f"dedup index {path}: no {MANIFEST} (not an index curate wrote)")
    try:
        data = io.read_json(uri)
    except (ValueError, OSError) as exc:
        raise io.InputError(f"dedup index {path}: {MANIFEST} is unreadable ({exc})") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise io.InputError(f"dedup index {path}: {MANIFEST} is not a curate dedup index")
    return data


def _check(path: str, data: dict, step: str, keys: list[str], signature: dict) -> None:
    if data.get("step") != step or data.get("keys") != keys:
        raise io.InputError(
            f"dedup index {path} holds `{data.get('step')}` keys {data.get('keys')}; this "
            f"`{step}` step needs {keys}: index with the same step and params"
        )
    theirs = data.get("signature", {})
    differ = sorted(k for k in set(theirs) | set(signature) if theirs.get(k) != signature.get(k))
    if differ:
        name = differ[0]
        raise io.InputError(
            f"dedup index {path} was built with {name}={theirs.get(name)!r}, this step has "
            f"{name}={signature.get(name)!r}: its keys would never match; use the same params"
        )


def index_parts(
    paths: list[str], owner: str, step: str, keys: list[str], signature: dict
) -> list[str]:
    """The part files of the given indexes that this run dedups against, in order (the entries
    its own output and step added are left out: a rerun redoes them)."""
    out = []
    for path in paths:
        data = _manifest(path)
        _check(path, data, step, keys, signature)
        out += [
            io.join(path, e["name"]) for e in data.get("files", []) if e.get("added_by") != owner
        ]
    return out


def digests(paths: list[str], owner: str, step: str, keys: list[str], signature: dict) -> dict:
    """sha256 of every part a run reads (they decide its output): recorded in the plan."""
    return {uri: sha256_path(uri) for uri in index_parts(paths, owner, step, keys, signature)}


def index_rows(task: tuple[str, list[str], dict[str, str], str, str]) -> tuple[str, int]:
    """One sidecar's index rows: its keys, and the id each document was kept as (its shard's
    decision file, from `shards`, names the survivors)."""
    sidecar, keys, shards, out_uri, compression = task
    fs, path = io.filesystem(sidecar)
    with fs.open_input_file(path) as f:
        table = pq.read_table(f, columns=["row_id", "id", *keys])
    ids = table.column("id").combine_chunks()
    rows = table.column("row_id").to_numpy()
    decision_uri = shards.get(str(int(rows[0]) >> io.ROW_BITS)) if len(rows) else None
    if decision_uri is not None:
        dfs, dpath = io.filesystem(decision_uri)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        with dfs.open_input_file(dpath) as f:
            dec = pq.read_table(f, filters=[("row_id", ">=", lo), ("row_id", "<", hi)])
        dec = dec.filter(dec.column("drop"))
        if dec.num_rows:
            have = dec.column("row_id").to_numpy()
            pos = np.minimum(np.searchsorted(have, rows), len(have) - 1)
            hit = have[pos] == rows
            survivor = dec.column("duplicate_of").take(pa.array(pos)).combine_chunks()
            ids = pc.if_else(pa.array(hit), survivor, ids)
    out = pa.table({"id": ids, **{k: table.column(k) for k in keys}})
    writer = io.AtomicParquetWriter(out_uri, out.schema, compression)
    writer.write(out)
    writer.commit()
    return writer.uri, out.num_rows


def _name(uri: str, folder: str) -> str:
    return uri[len(folder.rstrip("/")) + 1 :] if uri.startswith(folder.rstrip("/") + "/") else uri


def write(
    folder: str,
    sidecars: list[str],
    shards: dict[str, str],
    parallel_map: Callable,
    owner: str,
    step: str,
    keys: list[str],
    signature: dict,
    compression: str = "zstd",
    append: bool = False,
) -> dict[str, Any]:
    """Write this run's index rows as new parts of `folder` and publish them in `index.json`.

    `append`: keep the entries other runs added (update an existing index); else a new index.
    """
    previous = _manifest(folder) if append else None
    if previous is not None:
        _check(folder, previous, step, keys, signature)
    tag = uuid.uuid4().hex[:16]
    tasks = [
        (sidecar, keys, shards, io.join(folder, f"part-{tag}-{i:05d}.parquet"), compression)
        for i, sidecar in enumerate(sorted(sidecars))
    ]
    written = parallel_map(index_rows, tasks)
    kept = [e for e in (previous or {}).get("files", []) if e.get("added_by") != owner]
    entries = kept + [
        {"name": _name(uri, folder), "rows": n, "added_by": owner} for uri, n in written if n
    ]
    manifest = {
        "kind": KIND,
        "format": FORMAT,
        "step": step,
        "keys": keys,
        "signature": signature,
        "rows": sum(e["rows"] for e in entries),
        "files": entries,
    }
    io.write_json_atomic(io.join(folder, MANIFEST), manifest)
    return manifest


def clear_own(root: str, sid: str) -> None:
    """An output's own index folder is rewritten whole: its earlier parts go (owned names)."""
    ownership.remove_owned(root, under=f"dedup_index/{sid}/")
