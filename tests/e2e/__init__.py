"""End-to-end tests through the CLI, most on the session-scoped local Ray."""
