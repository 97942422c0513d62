"""The plugin registry: steps are found by name on the `curate.filters` entry-point group."""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
import sys
from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "curate.filters"


class PluginError(LookupError):
    """A plugin that cannot be found or imported; the message names it."""


def available() -> dict[str, EntryPoint]:
    """Every registered plugin, by name, without importing any of them."""
    return dict(_registered())


@functools.lru_cache(maxsize=1)
def _registered() -> tuple[tuple[str, EntryPoint], ...]:
    # Read once a process: each read scans every installed distribution's metadata.
    return tuple((ep.name, ep) for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name))


def load(name: str) -> type[Any]:
    """Import one plugin class: a registered name, or `package.module:Class`."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if os.getcwd() not in sys.path:  # ad-hoc classes live beside the config, like `python -m`
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken plugin must fail only the pipelines that use it
            raise PluginError(
                f"step '{name}': cannot import module '{module_name}': {type(exc).__name__}: {exc}"
            ) from exc
        try:
            return getattr(module, attr)
        except AttributeError as exc:
            raise PluginError(f"step '{name}': module '{module_name}' has no '{attr}'") from exc
    registry = available()
    if name not in registry:
        known = ", ".join(registry) or "none"
        raise PluginError(
            f"unknown step '{name}'. Registered plugins: {known}. "
            "Use 'package.module:Class' for a class that is not registered."
        )
    try:
        return registry[name].load()
    except Exception as exc:
        raise PluginError(
            f"plugin '{name}' ({registry[name].value}) failed to import: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def first_paragraph(doc: str | None) -> str:
    """A docstring's first paragraph on one line (a sentence is never cut at a line break)."""
    text = (doc or "").strip().split("\n\n")[0]
    return " ".join(text.split())


def summary(value: str) -> str:
    """The first paragraph of a registered class's docstring, read from its source with `ast`:
    `curate filters list` describes every plugin without importing any."""
    module_name, _, attr = value.partition(":")
    try:
        spec = importlib.util.find_spec(module_name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return ""
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (ImportError, OSError, SyntaxError, ValueError):
        return ""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == attr.split(".")[-1]:
            return first_paragraph(ast.get_docstring(node))
    return ""


def describe(cls: type[Any]) -> list[dict[str, Any]]:
    """The params of a plugin class: name, type, default and help, for `curate filters show`."""
    rows = []
    for field_name, field in cls.Params.model_fields.items():
        annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
        default = (
            "required"
            if field.is_required()
            else repr(field.get_default(call_default_factory=True))
        )
        rows.append(
            {
                "name": field_name,
                "type": annotation.replace("typing.", ""),
                "default": default,
                "help": field.description or "",
            }
        )
    return rows
