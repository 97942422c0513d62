"""Config patches: a YAML file of `--set` overrides and added steps, applied before `--set`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from curate import config as cfg

PATCH_KEYS = {"set", "add_steps"}


def read_patch(path: str | Path) -> dict[str, Any]:
    """Parse and check a patch file: `set` (list of dotted.path=value), `add_steps` (steps)."""
    path = Path(path)
    if not path.exists():
        raise cfg.ConfigError(f"patch file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise cfg.ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise cfg.ConfigError(f"{path}: expected a mapping with `set` and/or `add_steps`")
    unknown = set(data) - PATCH_KEYS
    if unknown:
        raise cfg.ConfigError(
            f"{path}: unknown key {', '.join(sorted(unknown))} (a patch has `set` and `add_steps`)"
        )
    overrides = data.get("set") or []
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise cfg.ConfigError(f"{path}: `set` must be a list of 'dotted.path=value' strings")
    steps = data.get("add_steps") or []
    if not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps):
        raise cfg.ConfigError(f"{path}: `add_steps` must be a list of step mappings")
    return {"set": overrides, "add_steps": steps}


def apply_patch(data: dict[str, Any], patch: dict[str, Any], where: str = "patch") -> None:
    """Apply a patch to a raw config dict in place: overrides first, then appended steps."""
    for assignment in patch.get("set", []):
        try:
            cfg.apply_override(data, assignment)
        except cfg.ConfigError as exc:
            raise cfg.ConfigError(f"{where}: {exc}") from exc
    if patch.get("add_steps"):
        data.setdefault("steps", [])
        data["steps"] = list(data["steps"]) + list(patch["add_steps"])


def load(
    path: str | Path,
    patches: list[str | Path] | None = None,
    overrides: list[str] | None = None,
) -> cfg.PipelineConfig:
    """Read a config, apply patch files in order, then `--set` overrides, and validate."""
    data = cfg.read_file(path)
    for patch_path in patches or []:
        apply_patch(data, read_patch(patch_path), where=str(patch_path))
    return cfg.load(None, overrides or [], base=data)
