"""A step that says where it was scored: the process and the GPUs Ray reserved for it."""

from __future__ import annotations

import os

import pyarrow as pa

from curate.filter import Filter


class WhereScored(Filter):
    """Scores each row with the scoring process's id and the GPUs Ray assigned to it; keeps all."""

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        import ray

        gpus = 0.0
        if ray.is_initialized():
            gpus = float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))
        n = batch.num_rows
        return {
            "pid": pa.array([os.getpid()] * n, pa.int64()),
            "gpus": pa.array([gpus] * n, pa.float64()),
        }

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pa.array([True] * len(scores["pid"]), pa.bool_())
