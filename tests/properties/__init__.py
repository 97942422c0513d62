"""Property tests (hypothesis) of ids, accounting, MinHash and components."""
