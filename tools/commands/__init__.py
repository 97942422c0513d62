"""Subcommands that belong to one plugin family (training, audits), registered on the CLI."""
