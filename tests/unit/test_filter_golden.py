"""The hot-path filters decide and score exactly as they did before they were optimised.

The fixtures were recorded from commit d805b91 (see tests/filter_golden.py): every score column
must be bit-identical and every keep decision equal, step by step on every document of the
shipped sample and of ../shared/data/bench_100k, and through whole pipelines (the quickstart on
the sample, the heuristics + minhash pipeline on bench_100k).
"""

from __future__ import annotations

import pytest

from tests import filter_golden as golden
from tests.conftest import SAMPLE, SHARED, needs_shared

BENCH = SHARED / "bench_100k"


def _check_steps(corpus, fixture):
    expected = golden.load(golden.FIXTURES / fixture)
    actual = golden.record(corpus)
    assert golden.differences(expected, actual) == []
    for name, step in expected["steps"].items():
        assert actual["steps"][name]["kept"] == step["kept"], name


def _check_pipeline(corpus, steps, fixture, out):
    expected = golden.load(golden.FIXTURES / fixture)["pipeline"]
    actual = golden.run_pipeline(corpus, out, steps)
    assert {k: v for k, v in actual.items() if v != expected.get(k)} == {}
    assert set(actual) == set(expected)


def test_every_step_matches_the_golden_on_the_shipped_sample():
    _check_steps(SAMPLE, "sample.json.gz")


def test_the_quickstart_pipeline_matches_the_golden_on_the_shipped_sample(tmp_path):
    _check_pipeline(SAMPLE, golden.quickstart_steps(), "pipeline_sample.json.gz", tmp_path / "o")


@needs_shared()
@pytest.mark.slow
def test_every_step_matches_the_golden_on_bench_100k():
    _check_steps(BENCH, "bench_100k.json.gz")


@needs_shared()
@pytest.mark.slow
def test_the_heuristics_pipeline_matches_the_golden_on_bench_100k(tmp_path):
    _check_pipeline(
        BENCH, golden.HEURISTICS_PIPELINE, "pipeline_heuristics_100k.json.gz", tmp_path / "o"
    )
