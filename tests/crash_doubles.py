"""Test steps that crash, hang or dawdle on purpose: for the setup probe and the exit-code tests."""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from curate.filter import Filter, ModelPath, Params


def _segfault() -> None:
    ctypes.string_at(0)  # a real SIGSEGV, as a native library reading a bad model gives


def _in_ray_worker() -> bool:
    ray = sys.modules.get("ray")
    return ray is not None and ray.is_initialized()


class ScriptedModel(Filter):
    """Loads a "model" whose first line says what setup does: ok, raise, segfault, hang,
    segfault-on-ray (only inside a Ray worker, so the driver's probe passes) or
    segfault-on-score (setup succeeds, the first score crashes)."""

    class Params(Params):
        model: ModelPath = Field(description="A text file naming the behaviour.")

    def setup(self) -> None:
        self._what = Path(self.params.model).read_text().split("\n", 1)[0].strip()
        if self._what == "raise":
            raise ValueError(f"{self.params.model} is not a scripted model")
        if self._what == "segfault" or (self._what == "segfault-on-ray" and _in_ray_worker()):
            _segfault()
        if self._what == "hang":
            time.sleep(3600)

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self._what == "segfault-on-score":
            _segfault()
        return {"chars": pc.fill_null(pc.utf8_length(self.text(batch)), 0).cast(pa.int32())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.greater_equal(scores["chars"], 0)


class SlowWords(Filter):
    """Keeps everything, slowly: touches `started` on its first batch, then sleeps per batch."""

    class Params(Params):
        seconds: float = Field(0.5, description="Sleep per batch.")
        started: str = Field("", description="A file created when the first batch arrives.")

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        if self.params.started and not os.path.exists(self.params.started):
            Path(self.params.started).touch()
        time.sleep(self.params.seconds)
        return {"rows": pa.array([1] * batch.num_rows, pa.int8())}

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.equal(scores["rows"], 1)
