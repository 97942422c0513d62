"""MinHash near-duplicate and exact dedup steps."""
