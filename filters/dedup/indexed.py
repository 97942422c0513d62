"""What `minhash` and `exact_dedup` share: index params, and deciding against / writing an index."""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, field_validator

from curate import io
from curate.filter import ParallelMap, Params
from curate_filters.dedup import index
from curate_filters.dedup.shuffle import bucket_dedup_sharded

# Params that do not change the keys: an index built with other values still matches.
_NOT_KEYS = {"index", "update_index", "write_index", "partitions", "weights", "threshold"}


class IndexParams(Params):
    """Dedup against earlier runs (see curate_filters.dedup.index)."""

    index: list[str] = Field(
        default_factory=list,
        description="Dedup index folders of earlier runs: a document that duplicates an indexed "
        "one is dropped, `duplicate_of` its id. Their part files' sha256 are in the plan.",
    )
    update_index: bool = Field(
        False, description="Append this run's signed documents to the first `index` folder."
    )
    write_index: bool = Field(
        False, description="Write this run's index to OUT/dedup_index/<step id>/."
    )

    @field_validator("index", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("index")
    @classmethod
    def _absolute(cls, value: list[str]) -> list[str]:
        return [p if "://" in p else os.path.abspath(p) for p in value]

    @field_validator("update_index")
    @classmethod
    def _needs_index(cls, value: bool, info: Any) -> bool:
        if value and not info.data.get("index"):
            raise ValueError("update_index needs an `index` folder to append to")
        return value


class IndexedDedup:
    """Mixin for a dedup GlobalStep with `params: IndexParams` and `key_groups()`."""

    step_name: str = ""

    def key_groups(self) -> list[list[str]]:
        raise NotImplementedError

    def key_columns(self) -> list[str]:
        return [c for g in self.key_groups() for c in g]

    def key_signature(self) -> dict[str, Any]:
        """The params that decide the keys: an index must have been built with the same."""
        dumped = self.params.model_dump(mode="json")  # type: ignore[attr-defined]
        return {k: v for k, v in sorted(dumped.items()) if k not in _NOT_KEYS}

    def references(self, owner: str) -> dict[str, str]:
        """The index part files this run reads, with their sha256 (for the plan)."""
        p = self.params  # type: ignore[attr-defined]
        if not p.index:
            return {}
        return index.digests(
            p.index, owner, self.step_name, self.key_columns(), self.key_signature()
        )

    def decide_sharded(
        self,
        sidecars: list[str],
        parallel_map: ParallelMap,
        workdir: str,
        outdir: str,
        compression: str = "zstd",
    ) -> dict[str, Any]:
        """The shuffle and components as tasks (decision written per shard by them), against
        the indexes given; then this run's index, when asked."""
        p = self.params  # type: ignore[attr-defined]
        root, sid = index.owner_of(outdir)
        owner = f"{root}#{sid}"
        keys, signature = self.key_columns(), self.key_signature()
        parts = index.index_parts(p.index, owner, self.step_name, keys, signature)
        result = bucket_dedup_sharded(
            sidecars,
            self.key_groups(),
            parallel_map,
            workdir,
            outdir,
            p.partitions,
            compression,
            index_files=parts,
        )
        result["index_files_read"] = len(parts)
        targets = []
        if p.write_index:
            index.clear_own(root, sid)
            targets.append((io.join(root, "dedup_index", sid), False))
        if p.update_index:
            targets.append((p.index[0], True))
        for folder, append in targets:
            manifest = index.write(
                folder,
                sidecars,
                result["shards"],
                parallel_map,
                owner,
                self.step_name,
                keys,
                signature,
                compression,
                append=append,
            )
            result.setdefault("index_written", {})[folder] = manifest["rows"]
        return result
