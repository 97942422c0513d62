"""A run's identity: the plan of what it reads and does, its digest, and what changed since."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import inspect
import json
import sys
from typing import Any

from curate import io, plugins

PLAN_FORMAT = 1


def _sha256_file(path: str | None) -> str | None:
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def _registering_distributions() -> dict[str, str]:
    """Top-level module -> distribution, for the distributions that register plugins: read
    from their entry points, a few ms (the full scan below takes 0.25 s beside torch)."""
    found: dict[str, str] = {}
    for ep in plugins.available().values():
        if ep.dist is not None:
            found.setdefault(ep.module.split(".")[0], ep.dist.name)
    return found


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()  # scans every installed package: once


def _distribution(top: str) -> str | None:
    """The installed distribution that holds the top-level module `top`, if any."""
    return _registering_distributions().get(top) or next(iter(_distributions().get(top, [])), None)


def plugin_identity(cls: type) -> dict[str, Any]:
    """Which code a step runs: its class, its distribution's version, its module's sha256."""
    return dict(_plugin_identity(cls))


@functools.lru_cache(maxsize=256)
def _plugin_identity(cls: type) -> dict[str, Any]:
    module = sys.modules.get(cls.__module__)
    top = cls.__module__.split(".")[0]
    dist = _distribution(top)
    version = None
    if dist:
        try:
            version = f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            version = None
    try:
        source = inspect.getsourcefile(module) if module else None
    except TypeError:
        source = None
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "version": version,
        "source_sha256": _sha256_file(source),
    }


def threshold_params(cls: type) -> set[str]:
    """Params that only `keep` reads: changing them re-thresholds stored scores, no re-scoring."""
    names = set(getattr(cls, "threshold_params", ()))
    calibration = getattr(cls, "calibration", None) or {}
    if calibration.get("param"):
        names.add(calibration["param"])
    names.update(calibration.get("unset", ()))
    return names


def score_key(step: Any, models: dict[str, dict[str, dict[str, str]]]) -> str:
    """What a step's scores depend on: its code, its scoring params and its models' sha256.

    Stored next to the scores (Parquet metadata `curate.scores`); a later run reuses them only
    if its own key is the same, so a new model or new params are never masked by old scores.
    """
    thresholds = threshold_params(step.cls)
    params = {k: v for k, v in step.params.model_dump(mode="json").items() if k not in thresholds}
    for name in models.get(step.sid, {}):
        params.pop(name, None)  # the path may move; the content is what counts
    ident = {
        "use": step.config.use,
        "plugin": plugin_identity(step.cls),
        "params": params,
        "models": {k: v["sha256"] for k, v in sorted(models.get(step.sid, {}).items())},
    }
    if not step.is_global:  # files a filter reads besides models (eval sets, block lists)
        ident["references"] = step.build("text").references("")
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def build_plan(
    config: Any,
    shards: list[io.Shard],
    units: list[io.WorkUnit],
    steps: list[Any],
    models: dict[str, dict[str, dict[str, str]]],
) -> dict[str, Any]:
    """Everything that decides a run's output, written before any unit runs."""
    resolved = config.model_dump(mode="json", exclude={"ray": True, "executor": True})
    resolved.pop("storage", None)
    resolved["output"].pop("keep_intermediate", None)
    bound = {s.sid: s for s in steps}
    for raw, step_config in zip(resolved["steps"], config.steps, strict=True):
        raw["id"] = step_config.step_id
        # A step's CPUs only say how many actors fit on a node: the output is the same, so a
        # resume may change them. GPUs (the device and its dtype) and batch_size stay in.
        kept = {k: v for k, v in (raw.get("resources") or {}).items() if k != "cpus"}
        raw["resources"] = kept or None
        if step_config.step_id in bound:  # defaults filled in, model paths absolute
            raw["params"] = bound[step_config.step_id].params.model_dump(mode="json")
    plan: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "config": resolved,
        "shards": [
            {
                "uri": s.uri,
                "name": s.relpath,
                "size": s.size,
                "mtime_ns": s.mtime_ns,
                "rows": s.num_rows,
            }
            for s in shards
        ],
        "units": [
            {
                "name": u.name,
                "shard": u.shard.index,
                "row_groups": list(u.row_groups) if u.row_groups is not None else None,
                "first_row": u.first_row,
            }
            for u in units
        ],
        "models": {
            sid: {name: info["sha256"] for name, info in fields.items()}
            for sid, fields in models.items()
        },
        "plugins": {s.sid: plugin_identity(s.cls) for s in steps},
    }
    references = {
        s.sid: found
        for s in steps
        if (found := s.build(config.input.text_column).references(f"{config.output.path}#{s.sid}"))
    }
    if references:  # e.g. a dedup index: its files decide the output like a model does
        plan["references"] = references
    plan["digest"] = digest(plan)
    plan["run_key"] = run_key(plan)
    return plan


def digest(plan: dict[str, Any]) -> str:
    body = {k: v for k, v in plan.items() if k not in ("digest", "run_key")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def run_key(plan: dict[str, Any]) -> str:
    """The plan without the shards' sizes and times: what every unit of the run shares.

    A unit's manifest records this key and its own shard's size and time; it is trusted only
    while both still hold. So a shard that changed before any of its units finished is simply
    read afresh, while one that changed after is refused, never mixed.
    """
    body = {k: v for k, v in plan.items() if k not in ("digest", "run_key")}
    body["shards"] = [
        {k: v for k, v in s.items() if k not in ("size", "mtime_ns")} for s in body["shards"]
    ]
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def shard_stamp(shard: io.Shard) -> list[Any]:
    """What a manifest remembers of its shard: a change to it distrusts the manifest."""
    return [shard.uri, shard.size, shard.mtime_ns]


def _some(items: list[str], most: int = 3) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def _config_diff(old: Any, new: Any, path: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in old:
                out.append(f"{where} added")
            elif key not in new:
                out.append(f"{where} removed")
            else:
                out += _config_diff(old[key], new[key], where)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in _config_diff(a, b, f"{path}.{i}")
        ]
    return [] if old == new else [f"{path} ({json.dumps(old)} -> {json.dumps(new)})"]


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two plans, in a user's words (files, models, code, config)."""
    if old.get("format") != new.get("format"):
        return ["the plan was written by another version of curate"]
    found = []
    before = {s["uri"]: s for s in old.get("shards", [])}
    after = {s["uri"]: s for s in new.get("shards", [])}
    added = [u for u in after if u not in before]
    removed = [u for u in before if u not in after]
    changed = []
    for uri in after.keys() & before.keys():
        a, b = before[uri], after[uri]
        what = [k for k in ("size", "mtime_ns", "rows") if a.get(k) != b.get(k)]
        if what:
            words = ", ".join("modified" if k == "mtime_ns" else k for k in what)
            changed.append(f"{uri} ({words})")
    if added:
        found.append(f"input file added: {_some(sorted(added))}")
    if removed:
        found.append(f"input file removed: {_some(sorted(removed))}")
    if changed:
        found.append(f"input file changed: {_some(sorted(changed))}")
    for sid in sorted(set(old.get("models", {})) | set(new.get("models", {}))):
        a, b = old.get("models", {}).get(sid, {}), new.get("models", {}).get(sid, {})
        for name in sorted(set(a) | set(b)):
            if a.get(name) != b.get(name):
                found.append(
                    f"model of step '{sid}' ({name}) changed: sha256 "
                    f"{(a.get(name) or '-')[:12]} -> {(b.get(name) or '-')[:12]}"
                )
    for sid in sorted(set(old.get("references", {})) | set(new.get("references", {}))):
        a, b = old.get("references", {}).get(sid, {}), new.get("references", {}).get(sid, {})
        if a != b:
            files = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
            found.append(f"the files step '{sid}' reads besides the input changed: {_some(files)}")
    for sid in sorted(set(old.get("plugins", {})) & set(new.get("plugins", {}))):
        if old["plugins"][sid] != new["plugins"][sid]:
            found.append(f"the code of step '{sid}' changed ({new['plugins'][sid]['class']})")
    diff = _config_diff(old.get("config"), new.get("config"))
    if diff:
        found.append(f"config changed: {_some(diff)}")
    if not found and old.get("units") != new.get("units"):
        found.append("the work units changed (input.unit_rows or row groups)")
    return found or ["the plan differs"]
