"""The unit manifests of an output folder, as the driver sees them: listed and read once a run
(in parallel), then kept current from the summaries the units return."""

from __future__ import annotations

import os
from typing import Any

from curate import io, retry

_NOT_MANIFESTS = ("run.json", "plan.json")


class Manifests:
    """Every manifest in `root/_manifest/`, by file name (`s<segment>-<unit>.json`).

    The driver reads the folder once, before any unit runs; a unit it then runs returns the
    very dict it published as its manifest, and `add` records it, so nothing is read twice.
    """

    def __init__(self, root: str, found: dict[str, dict[str, Any]] | None = None) -> None:
        self.root = root
        self._by_name: dict[str, dict[str, Any]] = dict(found or {})

    @classmethod
    def read(cls, root: str, policy: retry.Policy = retry.Policy()) -> Manifests:
        """List `_manifest/` once and read its unit manifests in parallel (retrying a store's
        hiccups); the order of the result never depends on which read finished first."""
        folder = io.join(root, "_manifest")
        listed = retry.call(lambda: io.list_files(folder, ".json"), folder, policy)
        uris = [u for u in listed if os.path.basename(u) not in _NOT_MANIFESTS]
        read = io.map_io(lambda uri: retry.call(lambda: io.read_json(uri), uri, policy), uris)
        return cls(root, {os.path.basename(u): m for u, m in zip(uris, read, strict=True)})

    @classmethod
    def empty(cls, root: str) -> Manifests:
        return cls(root)

    def add(self, summary: dict[str, Any]) -> None:
        """A unit just published this manifest (its summary is the manifest's content)."""
        self._by_name[f"s{summary['segment']}-{summary['unit']}.json"] = summary

    def all(self) -> list[dict[str, Any]]:
        """Every manifest, whatever its run, in file-name order."""
        return [m for _, m in sorted(self._by_name.items()) if isinstance(m, dict)]

    def of_run(self, run_key: str | None) -> list[dict[str, Any]]:
        return [m for m in self.all() if m.get("run") == run_key]

    def trusted(self, plan: dict, seg: int | None = None) -> list[dict[str, Any]]:
        """Manifests this run may build on: its run key, a planned unit, its shard unchanged."""
        stamps = {
            u["name"]: [plan["shards"][u["shard"]][k] for k in ("uri", "size", "mtime_ns")]
            for u in plan["units"]
        }
        return [
            m
            for m in self.of_run(plan["run_key"])
            if stamps.get(m.get("unit")) == m.get("shard")
            and (seg is None or m.get("segment") == seg)
        ]
