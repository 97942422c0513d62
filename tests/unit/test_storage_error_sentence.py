"""The sentence a run ends with when the disk or the store fails under the output folder."""

from __future__ import annotations

from curate import runner


def test_a_storage_error_says_write_only_when_it_was_one():
    """Disk full names the write and free space; any other OSError (a global step's sidecar
    removed, no access) says read or write, and does not tell the user to free space."""
    full = runner._storage_error("/out", OSError(28, "No space left on device"))
    arrow_full = runner._storage_error("/out", OSError("IOError: No space left on device"))
    gone = runner._storage_error("/out", FileNotFoundError(2, "No such file", "/out/x.parquet"))
    assert full.startswith("cannot write the output under /out") and "free space" in full
    assert arrow_full.startswith("cannot write the output") and "free space" in arrow_full
    assert gone.startswith("cannot read or write the output under /out")
    assert "free space" not in gone and "/out/x.parquet" in gone
