"""Steps by declared resources (which get a GPU pool, what a unit actor reserves) and the batch
size a filter's score() sees (no Ray)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate import config as cfg
from curate import runner, stages
from curate.config import ConfigError
from curate.filter import Filter
from curate.process import bind_steps
from tests.conftest import SAMPLE, assert_accounted, read_ids


def bound(*steps: dict):
    data = {"input": {"path": "in"}, "output": {"path": "out"}, "steps": list(steps)}
    return bind_steps(cfg.load(base=data))


def sample_texts(n: int) -> pa.Table:
    return pq.read_table(SAMPLE / "part-0.parquet", columns=["id", "text"]).slice(0, n)


def test_config_overrides_the_declared_resources():
    (step,) = bound({"use": "perplexity", "params": {"model": "m"}, "resources": {"gpus": 1}})
    assert stages.resources(step).gpus == 1.0
    assert stages.resources(step).cpus == 1.0
    assert stages.resources(step).batch_size == 4096  # declared by the perplexity step
    (small,) = bound({"use": "gopher_quality", "resources": {"batch_size": 100}})
    assert stages.resources(small).batch_size == 100


@pytest.mark.parametrize("size", [0, 2.5, -3])
def test_a_batch_size_that_is_not_a_whole_number_of_rows_is_refused(size):
    with pytest.raises(ConfigError, match="batch_size must be a whole number"):
        bound({"use": "gopher_quality", "resources": {"batch_size": size}})


def test_only_a_plain_gpu_filter_gets_a_pool_of_its_own():
    gpu = {"gpus": 1}
    steps = bound(
        {"use": "gopher_quality", "id": "cpu"},
        {"use": "fineweb_quality", "id": "gpu", "resources": gpu},
        {"use": "c4_lines", "id": "mapper", "resources": gpu},  # rewrites text: stays in chain
        {"use": "minhash", "id": "dedup", "resources": gpu},  # a global step: stays in chain
        {"use": "c4_quality", "id": "reused", "resources": gpu},  # its scores are reused
    )
    away = stages.offloaded(steps, reused={"reused": {}})
    assert [s.sid for s in away] == ["gpu"]
    # The unit actors still reserve a GPU for the GPU steps that stay in their chain...
    assert stages.chain_reservation(steps, away).gpus == 1.0
    # ... and none once every GPU step has a pool of its own.
    plain = bound({"use": "gopher_quality"}, {"use": "fineweb_quality", "resources": gpu})
    assert stages.chain_reservation(plain, stages.offloaded(plain)).gpus == 0.0


class CountsRows(Filter):
    """Remembers the size of every batch it scored."""

    seen: list[int] = []

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        CountsRows.seen.append(batch.num_rows)
        return {"rows": pa.array([batch.num_rows] * batch.num_rows, pa.int64())}


def test_score_sees_at_most_the_batch_size_and_the_scores_are_the_whole_batchs():
    (step,) = bound({"use": "gopher_quality", "resources": {"batch_size": 7}})
    table = sample_texts(30)
    limited = stages.build(step, "text")
    whole = step.build("text").score(table)
    sliced = limited.score(table)
    assert sliced.keys() == whole.keys()
    for name in whole:
        assert sliced[name].equals(stages.as_array(whole[name])), name
    assert limited.keep(sliced).equals(step.build("text").keep(whole))
    CountsRows.seen = []
    counted = stages.BatchLimited(CountsRows(), 7)
    assert counted.score(table)["rows"].to_pylist() == [7] * 28 + [2] * 2
    assert CountsRows.seen == [7, 7, 7, 7, 2]
    assert counted.score(table.slice(0, 0))["rows"].type == pa.int64()  # empty: one typed call


def test_a_pipeline_with_small_score_batches_writes_the_same_bytes(tmp_path):
    def files(out):
        return [
            p.read_bytes() for sub in ("data", "rejected") for p in sorted((out / sub).glob("*"))
        ]

    outs = []
    for size in (None, 5):
        resources = {"resources": {"batch_size": size}} if size else {}
        data = {
            "input": {"path": str(SAMPLE), "id_column": "id", "batch_size": 64},
            "output": {"path": str(tmp_path / f"out-{size}")},
            "executor": "local",
            "steps": [
                {"use": "gopher_quality", "params": {"min_doc_words": 30}, **resources},
                {"use": "gopher_repetition", **resources},
            ],
        }
        runner.run(cfg.load(base=data), progress="quiet")
        assert_accounted(read_ids(SAMPLE), tmp_path / f"out-{size}")
        outs.append(files(tmp_path / f"out-{size}"))
    assert outs[0] == outs[1] and outs[0]
