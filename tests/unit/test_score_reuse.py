"""Score once, threshold later: a run over an annotated output re-applies thresholds only."""

from __future__ import annotations

import pyarrow.parquet as pq

from curate import config as cfg
from curate import runner
from tests.conftest import assert_accounted, read_ids


def test_thresholds_reapplied_to_stored_scores_without_setup(small_corpus, tmp_path):
    annotated = tmp_path / "annotated"
    steps = [{"use": "tests.doubles:MinWords", "id": "words", "mode": "annotate"}]
    base = {"input": {"path": str(small_corpus), "id_column": "id"}, "executor": "local"}
    runner.run(
        cfg.load(base={**base, "output": {"path": str(annotated)}, "steps": steps}),
        progress="quiet",
    )
    # forbid_setup makes setup() raise: with stored scores the step is only thresholded.
    rerun = cfg.load(
        base={
            "input": {"path": str(annotated / "data"), "id_column": "id"},
            "output": {"path": str(tmp_path / "final")},
            "executor": "local",
            "steps": [
                {
                    "use": "tests.doubles:MinWords",
                    "id": "words",
                    "params": {"min_words": 11, "forbid_setup": True},
                }
            ],
        }
    )
    result = runner.run(rerun, progress="quiet")
    assert result.stats["steps"]["words"]["reused_scores"] is True
    kept = pq.read_table(tmp_path / "final" / "data")
    assert kept["words_words"].to_pylist() == [
        w for w in kept["words_words"].to_pylist() if w >= 11
    ]
    assert kept.num_rows > 0
    assert_accounted(read_ids(annotated / "data"), tmp_path / "final")
    assert kept.schema.names.count("words_words") == 1


def test_a_global_step_already_applied_to_the_input_is_skipped(tmp_path):
    from tests.conftest import words, write_corpus

    dup = words(8, 3)
    inp = write_corpus(tmp_path / "in", [[words(8, 1), dup, dup, words(9)]])
    steps = [
        {"use": "tests.doubles:MinWords", "id": "words", "mode": "annotate"},
        {"use": "tests.doubles:TextDedup", "id": "dedup"},
    ]
    first = tmp_path / "first"
    runner.run(
        cfg.load(
            base={
                "input": {"path": str(inp), "id_column": "id"},
                "output": {"path": str(first)},
                "executor": "local",
                "steps": steps,
            }
        ),
        progress="quiet",
    )
    again = cfg.load(
        base={
            "input": {"path": str(first / "data"), "id_column": "id"},
            "output": {"path": str(tmp_path / "again")},
            "executor": "local",
            "steps": steps,
        }
    )
    result = runner.run(again, progress="quiet")
    assert "dedup" not in result.stats["steps"]
    assert result.stats["steps"]["words"]["reused_scores"] is True
    assert pq.read_table(tmp_path / "again" / "data")["id"].to_pylist() == ["s0-0", "s0-1", "s0-3"]
