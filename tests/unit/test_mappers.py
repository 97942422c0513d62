"""The Mapper protocol on hand-made tables: rewrite, reject the emptied, count; the contract."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.mapper import Mapper, MapResult, apply_mapper
from curate.testing import check_filter_contract


class DropVowels(Mapper):
    """Removes the vowels of every text (a text of vowels only comes out empty)."""

    def map(self, batch: pa.Table) -> MapResult:
        text = pc.fill_null(self.text(batch).combine_chunks(), "")
        new = pc.replace_substring_regex(text, "[aeiou]", "")
        changes = pc.count_substring_regex(text, "[aeiou]")
        removed = None
        if self.record_changes:
            removed = pa.array(
                [[c for c in t if c in "aeiou"] for t in text.to_pylist()], pa.list_(pa.string())
            )
        return MapResult(new, pc.cast(changes, pa.int64()), {}, removed)


def batch(*texts: str) -> pa.Table:
    return pa.table(
        {"text": pa.array(texts, pa.string()), "id": [str(i) for i in range(len(texts))]}
    )


def test_a_mapper_rewrites_counts_and_rejects_what_it_empties():
    step = DropVowels()
    stats: dict = {}
    table, scores, keep = apply_mapper(step, batch("banana", "aeiou", "xyz"), stats, annotate=False)
    assert keep.to_pylist() == [True, False, True]
    # The emptied row keeps its original text, so the ledger shows what came in.
    assert table["text"].to_pylist() == ["bnn", "aeiou", "xyz"]
    assert scores["changes"].to_pylist() == [3, 5, 0]
    assert scores["chars_removed"].to_pylist() == [3, 5, 0]
    assert stats == {"changed": 1, "chars_removed": 3}  # kept rows only


def test_annotate_mode_counts_without_rewriting():
    table, scores, keep = apply_mapper(DropVowels(), batch("banana"), {}, annotate=True)
    assert table["text"].to_pylist() == ["banana"]
    assert scores["changes"].to_pylist() == [3]


def test_record_changes_adds_the_removed_spans():
    step = DropVowels()
    step.record_changes = True
    _, scores, _ = apply_mapper(step, batch("banana", "xyz"), {}, annotate=False)
    assert scores["removed"].to_pylist() == [["a", "a", "a"], []]


def test_the_contract_accepts_a_good_mapper():
    check_filter_contract(DropVowels)


class CountsEverything(DropVowels):
    def map(self, batch):
        result = super().map(batch)
        result.changes = pa.array([1] * batch.num_rows, pa.int64())
        return result


class LooksAtNeighbours(DropVowels):
    def map(self, batch):
        result = super().map(batch)
        texts = [f"{t}{batch.num_rows}" for t in result.text.to_pylist()]
        result.text = pa.array(texts, pa.string())
        return result


@pytest.mark.parametrize(
    "cls, message",
    [
        (CountsEverything, "counts changes in a row whose text it did not change"),
        (LooksAtNeighbours, "depends on the other rows of its batch"),
    ],
)
def test_the_contract_catches_a_broken_mapper(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_filter_contract(cls, texts=["xyz", "banana", "qrst", "aeiou"])
