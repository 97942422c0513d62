"""The `minhash` step: near-duplicate removal with MinHash signatures, LSH bands and clusters."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from curate.filter import GlobalStep, ParallelMap, Resources
from curate_filters._alloc import keep_freed_memory
from curate_filters.dedup.indexed import IndexedDedup, IndexParams
from curate_filters.dedup.lsh import band_keys, optimal_params
from curate_filters.dedup.normalize import NormParams, normalize
from curate_filters.dedup.shuffle import DECISION_SCHEMA, bucket_dedup
from curate_filters.dedup.signatures import permutations, signatures

_DEFAULT_BANDS, _DEFAULT_ROWS = 14, 8


class MinHashParams(NormParams, IndexParams):
    """Parameters of the `minhash` step."""

    num_perm: int = Field(112, ge=1, description="Number of MinHash permutations.")
    bands: int | None = Field(
        None, ge=1, description="LSH bands (default 14, or chosen from `threshold`)."
    )
    rows: int | None = Field(
        None, ge=1, description="Rows per band (default 8, or chosen from `threshold`)."
    )
    threshold: float | None = Field(
        None,
        gt=0.0,
        lt=1.0,
        description="Jaccard threshold: when set without bands/rows, they are chosen as "
        "datasketch's MinHashLSH does (minimise weighted false positive + negative).",
    )
    weights: tuple[float, float] = Field(
        (0.5, 0.5),
        strict=False,  # a YAML list [0.3, 0.7] is the way to write it
        description="Weights of false positives and false negatives for `threshold`.",
    )
    ngram: int = Field(5, ge=1, description="Shingle length, in words or characters.")
    shingle: Literal["word", "char"] = Field("word", description="Shingle by words or by chars.")
    seed: int = Field(1, description="Permutation seed (datasketch's default is 1).")
    hash: Literal["poly64", "xxh32", "sha1"] = Field(
        "poly64",
        description="Shingle hash: poly64 (vectorised, fastest), xxh32, or sha1 (identical "
        "signatures to datasketch.MinHash).",
    )
    scheme: Literal["affine32", "legacy"] = Field(
        "affine32", description="datasketch permutation scheme (2.0 default affine32, or legacy)."
    )
    partitions: int | None = Field(
        None, ge=1, description="Shuffle partitions (default: one per ~4M bucket keys)."
    )

    @model_validator(mode="after")
    def _check_bands(self) -> MinHashParams:
        if (self.bands is None) != (self.rows is None):
            raise ValueError("set both `bands` and `rows`, or neither (then `threshold` decides)")
        bands, rows = self.lsh()
        if bands * rows > self.num_perm:
            raise ValueError(
                f"bands x rows = {bands} x {rows} = {bands * rows} exceeds num_perm={self.num_perm}"
            )
        return self

    def lsh(self) -> tuple[int, int]:
        """The `(bands, rows)` in effect."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.threshold is not None:
            return optimal_params(self.threshold, self.num_perm, *self.weights)
        return _DEFAULT_BANDS, _DEFAULT_ROWS


class MinHashDedup(IndexedDedup, GlobalStep):
    """Drop near-duplicates: documents sharing an LSH band bucket are clustered (connected
    components) and every cluster keeps its first document in corpus order.

    Sidecar rows: `row_id`, `id` (the user's id as a string) and one uint64 bucket key per band,
    `band_00`, `band_01`, ... Documents without any shingle have no sidecar row (never dropped).
    """

    step_name = "minhash"
    Params: ClassVar[type[MinHashParams]] = MinHashParams
    resources: ClassVar[Resources] = Resources(cpus=1.0, batch_size=4096)
    defaults: ClassVar[dict[str, Any]] = {"cluster_size": 1}

    def __init__(self, params: MinHashParams | None = None, text_column: str = "text") -> None:
        super().__init__(params, text_column)
        self._perms: np.ndarray | None = None

    def setup(self) -> None:
        p = self.params
        self._perms = permutations(p.num_perm, p.seed, p.scheme)
        keep_freed_memory()

    def band_columns(self) -> list[str]:
        """Names of the sidecar's band key columns."""
        return [f"band_{i:02d}" for i in range(self.params.lsh()[0])]

    def sidecar_schema(self) -> pa.Schema:
        """Schema of the sidecar tables `signature` returns."""
        bands = [(c, pa.uint64()) for c in self.band_columns()]
        return pa.schema([("row_id", pa.int64()), ("id", pa.string()), *bands])

    def signature(self, batch: pa.Table, row_ids: pa.Int64Array, ids: pa.Array) -> pa.Table:
        p = self.params
        if self._perms is None:
            self.setup()
        text = normalize(self.text(batch), p)
        sig, counts = signatures(
            text, p.num_perm, p.ngram, p.shingle, p.seed, p.hash, p.scheme, self._perms
        )
        bands, rows = p.lsh()
        keys = band_keys(sig, bands, rows, p.seed)
        has = counts > 0
        mask = pa.array(has)
        id_col = pc.cast(ids if ids is not None else row_ids, pa.string())
        cols = {
            "row_id": pc.filter(pa.array(row_ids, pa.int64()), mask),
            "id": pc.filter(id_col, mask),
            **{c: pa.array(keys[has, i]) for i, c in enumerate(self.band_columns())},
        }
        return pa.table(cols, schema=self.sidecar_schema())

    def decide(self, sidecars: list[str], parallel_map: ParallelMap, workdir: str) -> pa.Table:
        """Shuffle the band keys, cluster, and return the decision table (see `bucket_dedup`).

        The driver holds file names only; see `shuffle` for the phases.
        """
        groups = [[c] for c in self.band_columns()]
        return bucket_dedup(sidecars, groups, parallel_map, workdir, self.params.partitions)

    def key_groups(self) -> list[list[str]]:
        """The sidecar columns that form one bucket key, per bucket family."""
        return [[c] for c in self.band_columns()]

    def key_signature(self) -> dict[str, Any]:
        """The params that decide the band keys, with the (bands, rows) in effect."""
        found = {k: v for k, v in super().key_signature().items() if k not in ("bands", "rows")}
        return {**found, "lsh": list(self.params.lsh())}

    def decision_schema(self) -> dict[str, pa.DataType]:
        return dict(DECISION_SCHEMA)
