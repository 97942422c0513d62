"""curate's test suite (a package, so tests can share doubles and fixtures)."""
