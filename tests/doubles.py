"""Small steps used by the core's tests: a word-count filter and a whole-corpus exact dedup."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from curate.filter import Filter, GlobalStep, Params


class MinWords(Filter):
    """Drops documents with fewer than `min_words` whitespace-separated words."""

    threshold_params = ("min_words", "forbid_setup")

    class Params(Params):
        min_words: int = Field(5, description="Fewest words a kept document has.")
        forbid_setup: bool = Field(False, description="Fail in setup (proves it was skipped).")

    def setup(self) -> None:
        if self.params.forbid_setup:
            raise RuntimeError("setup ran: the model would have been loaded")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        words = pc.list_value_length(pc.utf8_split_whitespace(self.text(batch)))
        return {"words": pc.fill_null(words, 0).cast(pa.int32())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.greater_equal(scores["words"], self.params.min_words)


class Boom(Filter):
    """Raises on any non-empty batch: for error-path tests."""

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if batch.num_rows:
            raise RuntimeError("boom")
        return {"x": pa.array([], pa.int8())}

    def keep(self, scores):
        return pc.is_valid(scores["x"])


def _first_by_text(path: str) -> pa.Table:
    return pq.read_table(path)


class TextDedup(GlobalStep):
    """Keeps the first document (smallest row id) of each exact text; a test double for dedup."""

    def signature(self, batch, row_ids, ids):
        return pa.table(
            {"row_id": row_ids, "id": pc.cast(ids, pa.string()), "text": self.text(batch)}
        )

    def decision_schema(self):
        return {"duplicate_of": pa.string(), "cluster_size": pa.int64()}

    defaults = {"cluster_size": 1}

    def decide(self, sidecars, parallel_map, workdir):
        parts = parallel_map(_first_by_text, sidecars)
        table = (
            pa.concat_tables(parts)
            if parts
            else pa.table(
                {
                    "row_id": pa.array([], pa.int64()),
                    "id": pa.array([], pa.string()),
                    "text": pa.array([], pa.string()),
                }
            )
        )
        table = table.sort_by("row_id")
        codes = pc.dictionary_encode(table["text"]).combine_chunks().indices.to_numpy()
        rows = table["row_id"].to_numpy()
        first = np.full(codes.max() + 1 if len(codes) else 0, -1)
        order = np.arange(len(codes))[::-1]
        first[codes[order]] = order  # last write wins = smallest position
        sizes = np.bincount(codes) if len(codes) else np.array([], int)
        drop = first[codes] != np.arange(len(codes))
        in_cluster = sizes[codes] > 1
        ids = table["id"].to_numpy(zero_copy_only=False)
        return pa.table(
            {
                "row_id": pa.array(rows[in_cluster]),
                "drop": pa.array(drop[in_cluster]),
                "duplicate_of": pa.array(
                    np.where(drop, ids[first[codes]], None)[in_cluster], pa.string()
                ),
                "cluster_size": pa.array(sizes[codes][in_cluster].astype(np.int64)),
            }
        )


class Slow(Filter):
    """Sleeps per batch so a test can interrupt a run midway; keeps everything."""

    class Params(Params):
        seconds: float = Field(0.2, description="Sleep per batch.")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if batch.num_rows:
            import time

            time.sleep(self.params.seconds)
        return {"ok": pa.array([True] * batch.num_rows, pa.bool_())}

    def keep(self, scores):
        return scores["ok"]


class KillOnce(Filter):
    """Kills its own worker process (SIGKILL) the first time it sees a batch, then behaves."""

    class Params(Params):
        marker: str = Field(description="File created before the kill, so it happens once.")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        import os
        import signal

        if batch.num_rows and not os.path.exists(self.params.marker):
            open(self.params.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return {"ok": pa.array([True] * batch.num_rows, pa.bool_())}

    def keep(self, scores):
        return scores["ok"]


from curate_filters.dedup.step import MinHashDedup, MinHashParams  # noqa: E402


class PausedMinHash(MinHashDedup):
    """`minhash` whose decide pauses once after a shuffle phase, so a test can kill the driver
    inside the shuffle; the marker file, created when the pause starts, makes it pause once."""

    class Params(MinHashParams):
        marker: str = Field(description="File created when the pause starts; present: no pause.")
        after: str = Field(
            "scatter",
            description="Pause after this phase: scatter, gather, large_star (inside the "
            "distributed components) or join_ids.",
        )
        seconds: float = Field(60.0, description="Length of the pause.")

    def decide_sharded(self, sidecars, parallel_map, workdir, outdir, compression="zstd"):
        import os
        import time

        def paced(fn, items):
            out = parallel_map(fn, items)
            if fn.__name__ == self.params.after and not os.path.exists(self.params.marker):
                open(self.params.marker, "w").close()
                time.sleep(self.params.seconds)
            return out

        return super().decide_sharded(sidecars, paced, workdir, outdir, compression)


class ScaledWords(Filter):
    """Word count times `scale` (a scoring param); keeps documents scoring at least `min`."""

    threshold_params = ("min", "forbid_setup")

    class Params(Params):
        scale: float = Field(1.0, description="Multiplies the word count: changes the scores.")
        min: float = Field(0.0, description="Lowest score kept: a threshold only.")
        forbid_setup: bool = Field(False, description="Fail in setup (proves it was skipped).")

    def setup(self) -> None:
        if self.params.forbid_setup:
            raise RuntimeError("setup ran: the scores should have been reused")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        words = pc.list_value_length(pc.utf8_split_whitespace(self.text(batch)))
        return {
            "words": pc.multiply(pc.cast(pc.fill_null(words, 0), pa.float64()), self.params.scale)
        }

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.greater_equal(scores["words"], self.params.min)


class _KillTaskOnce:
    """Wraps a dedup task: the first call kills its own process (SIGKILL), then it just runs."""

    def __init__(self, fn, marker: str) -> None:
        self.fn, self.marker = fn, marker
        self.__name__ = fn.__name__

    def __call__(self, item):
        import os
        import signal

        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.fn(item)


class KilledMinHash(MinHashDedup):
    """`minhash` whose first task of one decide phase (e.g. large_star, inside the distributed
    components) kills its Ray worker; Ray retries the task."""

    class Params(MinHashParams):
        marker: str = Field(description="File created before the kill, so it happens once.")
        phase: str = Field("large_star", description="The decide phase whose task dies.")

    def decide_sharded(self, sidecars, parallel_map, workdir, outdir, compression="zstd"):
        def killing(fn, items):
            if fn.__name__ == self.params.phase:
                fn = _KillTaskOnce(fn, self.params.marker)
            return parallel_map(fn, items)

        return super().decide_sharded(sidecars, killing, workdir, outdir, compression)
