"""Unit tests: one filter or core module at a time, on small hand-made tables, no Ray."""
