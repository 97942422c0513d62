"""curate: score, filter and deduplicate pretraining corpora with small models, on Ray."""

__version__ = "0.1.0"
