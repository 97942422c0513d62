"""Runs a pipeline: plans units and segments, schedules them on Ray actors or in process."""

from __future__ import annotations

import errno
import fnmatch
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from rich.console import Console

from curate import idcheck, identity, io, ownership, probe, retry, stats
from curate.config import ConfigError, PipelineConfig, dump_yaml
from curate.embedded_ray import machine_cpus
from curate.executors import (
    LocalExecutor,
    RayExecutor,
    RunError,
    _resource,
)
from curate.manifests import Manifests
from curate.models import model_fields, sha256_path
from curate.process import (
    SCORES_KEY,
    BoundStep,
    Layout,
    bind_steps,
    plan_segments,
)
from curate.progress import RunProgress, phase_names


@dataclass
class RunResult:
    output: str
    stats: dict[str, Any]
    skipped_units: int
    already_complete: bool = False


def _absolute(path: str) -> str:
    return path if "://" in path else os.path.abspath(path)


def _resolve_paths(config: PipelineConfig) -> PipelineConfig:
    config = config.model_copy(deep=True)
    paths = config.input.path
    config.input.path = (
        [_absolute(p) for p in paths] if isinstance(paths, list) else _absolute(paths)
    )
    config.output.path = _absolute(config.output.path)
    return config


def _models(steps: list[BoundStep]) -> dict[str, dict[str, dict[str, str]]]:
    """sha256 of every model file named in params; relative paths made absolute in place."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    for step in steps:
        for name, path in model_fields(step.params).items():
            absolute = _absolute(path)
            try:
                digest = sha256_path(absolute)
            except FileNotFoundError as exc:
                raise ConfigError(
                    f"steps.{step.index}.params.{name}: model file {path} does not exist"
                ) from exc
            setattr(step.params, name, absolute)
            found.setdefault(step.sid, {})[name] = {"path": absolute, "sha256": digest}
    return found


# ----------------------------------------------------------------------------- the run
def _check_inputs(config: PipelineConfig, shards: list[io.Shard], footers: io.Footers) -> None:
    """Columns checked from Parquet footers (read once, by `discover`) before anything is
    written."""
    text, ident = config.input.text_column, config.input.id_column
    for shard in shards:
        if shard.format != "parquet":
            continue
        names = footers.schema(shard.uri).names
        if text not in names:
            raise io.InputError(
                f"{shard.uri}: no text column '{text}' (columns: "
                f"{', '.join(names)}); set input.text_column"
            )
        if ident and ident not in names:
            raise io.InputError(
                f"{shard.uri}: no id column '{ident}' (columns: "
                f"{', '.join(names)}); fix input.id_column"
            )


@dataclass
class Reuse:
    """Score columns the input already holds (score once, threshold later), checked by key."""

    reused: dict[str, dict[str, pa.DataType]]  # sid -> metric -> type: thresholds re-applied
    stale: list[str]  # columns of steps whose key changed: dropped and scored afresh
    notes: list[str]


def _reusable_scores(
    config: PipelineConfig, shards: list[io.Shard], steps: list[BoundStep], footers: io.Footers
) -> tuple[PipelineConfig, Reuse]:
    """Steps whose scores a previous curate run wrote into the input, with the same code, params
    and models (their score key): read from the first shard's schema metadata, nothing guessed."""
    reuse = Reuse({}, [], [])
    if not shards or shards[0].format != "parquet":
        return config, reuse
    schema = footers.schema(shards[0].uri)
    meta = json.loads((schema.metadata or {}).get(SCORES_KEY, b"{}"))
    if not meta:
        return config, reuse
    if config.input.id_column is None and io.DERIVED_ID in schema.names:
        config = config.model_copy(deep=True)
        config.input.id_column = io.DERIVED_ID  # the ids the first run derived
    for step in steps:
        entry = meta.get(step.sid)
        if not entry:
            continue
        metrics = entry.get("metrics", []) if isinstance(entry, dict) else list(entry)
        columns = [f"{step.sid}_{m}" for m in metrics if f"{step.sid}_{m}" in schema.names]
        if (
            isinstance(entry, dict)
            and entry.get("key") == step.score_key
            and len(columns) == len(metrics)
        ):
            # A global step already applied to this input (its survivors carry its columns)
            # has nothing left to remove: it is skipped, see `run`.
            reuse.reused[step.sid] = {m: schema.field(f"{step.sid}_{m}").type for m in metrics}
        elif columns:
            reuse.stale += columns
            reuse.notes.append(
                f"{step.sid}: the input's stored scores came from other params, model or code; "
                "scoring afresh"
            )
    return config, reuse


def _check_workers(config: PipelineConfig) -> None:
    """Embedded Ray never gets more CPUs than the machine has: refuse, before anything starts."""
    wanted = config.ray.workers
    if config.executor == "local" or config.ray.address != "local" or not wanted:
        return
    import ray

    if not ray.is_initialized() and wanted > machine_cpus():
        cpus = machine_cpus()
        raise RunError(
            f"--workers {wanted}: this machine has {cpus} CPUs, so embedded Ray runs at most "
            f"{cpus} workers; use --workers {cpus} or fewer, or a Ray cluster (--ray-address)"
        )


def _check_disjoint(config: PipelineConfig) -> None:
    """The output may not be, contain, or sit inside any input path (nor match its glob)."""
    out = _real(config.output.path)
    paths = config.input.path if isinstance(config.input.path, list) else [config.input.path]
    for raw in paths:
        base = _glob_root(raw)
        root = _real(base)
        holds = root == out or root.startswith(out.rstrip("/") + "/")
        if raw != base:  # a glob: would it match what curate writes?
            pattern = root + raw[len(base) :]
            written = [
                out,
                *(
                    f"{out}/{d}/part-00000.{e}"
                    for d in ("data", "rejected")
                    for e in ("parquet", "jsonl", "jsonl.gz")
                ),
            ]
            inside = any(fnmatch.fnmatch(p, pattern) for p in written)
        else:
            inside = out.startswith(root.rstrip("/") + "/")
        if inside or holds:
            where = "is" if out == root else ("contains" if holds else "is inside")
            raise RunError(
                f"output folder {config.output.path} {where} the input {raw}; curate never "
                "writes where it reads: choose an --output outside the input"
            )


def _glob_root(path: str) -> str:
    """The folder a glob starts from (the path itself when it has no wildcard)."""
    scheme, sep, rest = path.rpartition("://")
    cut = min((i for i in (rest.find("*"), rest.find("?"), rest.find("[")) if i >= 0), default=-1)
    if cut >= 0:
        rest = rest[:cut].rsplit("/", 1)[0] or "/"
    return f"{scheme}{sep}{rest}"


def _real(path: str) -> str:
    return path.rstrip("/") if "://" in path else os.path.realpath(path)


def _read_plan(root: str) -> dict | None:
    uri = io.join(root, "_manifest", "plan.json")
    try:
        plan = io.read_json(uri) if io.exists(uri) else None
    except (ValueError, OSError):
        return None
    return plan if isinstance(plan, dict) else None


def trusted_manifests(root: str, plan: dict, seg: int | None = None) -> list[dict]:
    """Unit manifests this run may build on: its run key, a planned unit, its shard unchanged.
    (Reads the folder; a run reads it once, into `Manifests`, and asks that.)"""
    return Manifests.read(root).trusted(plan, seg)


def _policy(config: PipelineConfig) -> retry.Policy:
    return retry.Policy(attempts=config.storage.retries)


def _prepare_output(
    config: PipelineConfig, plan: dict, overwrite: bool, run_yaml: str, notes: list[str]
) -> Manifests:
    """Check the folder holds this plan's run (or nothing of any run); clear what curate may.
    Returns the manifests left there, read once (the rest of the run asks them)."""
    root = config.output.path
    manifests = Manifests.empty(root)
    previous = _read_plan(root)
    legacy = io.exists(io.join(root, "_manifest", "run.json")) and previous is None
    if overwrite:
        removal = ownership.remove_owned(root)
        if removal.removed:
            notes.append(f"--overwrite: removed the {removal.removed} files curate wrote in {root}")
        if removal.kept_foreign:
            notes.append(
                f"--overwrite kept {len(removal.kept_foreign)} files curate did not write: "
                + ", ".join(removal.kept_foreign[:3])
                + (" ..." if len(removal.kept_foreign) > 3 else "")
            )
    elif legacy:
        raise RunError(
            f"{root} holds the output of an older curate without a plan; rerun with --overwrite "
            "to replace it, or choose another --output"
        )
    elif previous is not None and previous.get("run_key") != plan["run_key"]:
        published = {
            m["unit"] for m in Manifests.read(root, _policy(config)).of_run(previous.get("run_key"))
        }
        if published:
            raise RunError(
                f"{root} holds {len(published)} finished work units of a different run: "
                + "; ".join(identity.changes(previous, plan))
                + ". Rerun with --overwrite to replace it (curate deletes only the files it "
                "wrote there), or choose another --output"
            )
        # Nothing of the earlier attempt was published (it failed before any unit finished):
        # nothing can be mixed, so its leftovers go and the new plan takes its place.
        ownership.remove_owned(root)
    else:
        manifests = Manifests.read(root, _policy(config))
        _check_changed_shards(root, plan, previous, notes, manifests)
    ownership.remove_stale_temporaries(root)
    _remove_unpublished(root, plan, manifests)
    io.write_json_atomic(io.join(root, "_manifest", "plan.json"), plan)
    io.write_text_atomic(io.join(root, "run.yaml"), run_yaml)
    return manifests


def _check_changed_shards(
    root: str, plan: dict, previous: dict | None, notes: list[str], manifests: Manifests
) -> None:
    """Same run, but a shard's size or time moved: fine before any of its units finished (it is
    read afresh), refused after (its old rows are already in the output)."""
    if previous is None:
        return
    before = {s["uri"]: s for s in previous.get("shards", [])}
    changed = [
        s["uri"]
        for s in plan["shards"]
        if s["uri"] in before
        and (before[s["uri"]]["size"], before[s["uri"]]["mtime_ns"]) != (s["size"], s["mtime_ns"])
    ]
    if not changed:
        return
    written = {
        m["shard"][0]
        for m in manifests.of_run(plan["run_key"])
        if (m.get("shard") or [None])[0] in changed
    }
    if written:
        raise RunError(
            f"{root}: input file changed after some of its units were written: "
            + ", ".join(sorted(written)[:3])
            + ". Rerun with --overwrite to start again, or restore the file"
        )
    notes.append(
        "input changed since the last attempt, before any of its units finished (read afresh): "
        + ", ".join(sorted(changed)[:3])
    )


def _remove_unpublished(root: str, plan: dict, manifests: Manifests) -> None:
    """Files of units no trusted manifest names: what killed attempts left (on object stores,
    their attempt-unique keys). The lease guarantees no live attempt writes them."""
    named = {uri for m in manifests.trusted(plan) for uri in m.get("files", {}).values()}
    fs, local = io.filesystem(root)
    scheme = root.split("://", 1)[0] + "://" if "://" in root else ""
    unit_files = tuple(
        f"{local.rstrip('/')}/{d}" for d in ("data/", "rejected/", "_segments/", "_sidecar/")
    )
    for path in ownership.owned_files(root):  # one listing of the folder
        if path.startswith(unit_files) and scheme + path not in named:
            fs.delete_file(path)


def run(
    config: PipelineConfig,
    *,
    overwrite: bool = False,
    progress: str = "auto",
    console: Console | None = None,
) -> RunResult:
    """Run a pipeline to completion, resuming what a previous run of the same plan finished."""
    console = console or Console(stderr=True)
    wall = time.perf_counter()
    io.configure_storage(config.storage.s3_endpoint_url, config.storage.s3_region)
    config = _resolve_paths(config)
    _check_disjoint(config)
    steps = bind_steps(config)
    skipped: list[tuple[str, str]] = []
    footers = io.Footers(_policy(config))  # this run's: each footer read once, then asked
    shards = io.discover(config.input.path, config.input.format, skipped=skipped, footers=footers)
    models = _models(steps)  # every model, reused or not: score keys include their sha256
    for step in steps:
        step.score_key = identity.score_key(step, models)
    config, reuse = _reusable_scores(config, shards, steps, footers)
    reused = reuse.reused
    applied = [s.sid for s in steps if s.is_global and s.sid in reused]
    steps = [s for s in steps if s.sid not in applied]
    for sid in applied:
        del reused[sid]
    segments = plan_segments(steps)
    _check_inputs(config, shards, footers)
    del footers  # planning is over: the footers go, only rows and stamps stay in the plan
    units = io.plan_units(shards, config.input.unit_rows)
    plan = identity.build_plan(config, shards, units, steps, models)
    layout = Layout(config.output.path)
    resolved = {s.sid: s.params.model_dump(mode="json") for s in steps}
    extra = {"models": models} if models else None
    run_yaml = dump_yaml(config, resolved, {**(extra or {}), "plan": plan["digest"]})
    _check_workers(config)
    ownership.claim(config.output.path)
    lease = ownership.Lease(config.output.path)
    lease.acquire()
    try:
        return _run_owned(
            config,
            steps,
            segments,
            units,
            plan,
            reuse,
            models,
            applied,
            layout,
            shards,
            overwrite=overwrite,
            skipped=skipped,
            run_yaml=run_yaml,
            lease=lease,
            view=RunProgress(console, progress),
            wall=wall,
        )
    finally:
        lease.release()


def _run_owned(
    config: PipelineConfig,
    steps: list[BoundStep],
    segments: list,
    units: list[io.WorkUnit],
    plan: dict,
    reuse: Reuse,
    models: dict,
    applied: list[str],
    layout: Layout,
    shards: list[io.Shard],
    *,
    overwrite: bool,
    run_yaml: str,
    lease: ownership.Lease,
    view: RunProgress,
    wall: float,
    skipped: list[tuple[str, str]],
) -> RunResult:
    notes: list[str] = []
    if skipped:
        shown = "; ".join(f"{uri} ({why})" for uri, why in skipped[:5])
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        notes.append(f"skipped {len(skipped)} input files: {shown}{more}")
    if lease.taken_over:
        notes.append(f"took over the lease of a run that is gone ({lease.taken_over})")
    manifests = _prepare_output(config, plan, overwrite, run_yaml, notes)
    for text in notes + reuse.notes:
        view.note(text)
    weights = {u.name: _unit_rows(u) for u in units}
    finished = _finished(manifests, plan, len(segments))
    if all(len(finished[s.index]) == len(units) for s in segments):
        # Nothing left to do: answer at once, without Ray, models or a probe.
        elapsed = time.perf_counter() - wall
        merged = _write_stats(config, steps, layout, elapsed, 0.0, plan, manifests)
        return RunResult(config.output.path, merged, len(units), already_complete=True)
    phases = _Phases(wall)
    phases.mark("planning")
    live = [s for s in steps if s.sid not in reuse.reused]
    probe.check_setup(live, config.input.text_column, models)  # a crashing model is a sentence
    phases.mark("model_check")
    reused = {sid: t for sid, t in reuse.reused.items() if sid not in applied}
    unit_args = {"reused": reused, "run_key": plan["run_key"], "stale_columns": reuse.stale}
    kind = choose_executor(config, steps, sum(weights.values()))
    executor = _start_executor(kind, config, steps, models, unit_args, view)
    startup = time.perf_counter() - wall  # Ray start and every step's setup()
    phases.mark("start")
    try:
        for text in _check_ids(config, shards, plan, layout, executor):
            view.note(text)
    except BaseException:
        executor.close()
        raise
    phases.mark("id_check")
    for sid in applied:
        view.note(f"{sid}: already applied to this input (its columns are there); skipped")
    names = phase_names([s.signature.sid for s in segments if s.signature is not None])
    done_rows = sum(weights[u] for seg in finished.values() for u in seg)
    view.begin(sum(weights.values()), len(segments), done_rows)
    resumed = 0
    try:
        decision = None
        for seg in segments:
            if seg.apply is not None:
                decision = _decide(
                    seg.apply, seg.index - 1, layout, executor, config, view, plan, manifests
                )
                phases.mark(f"decide_{seg.apply.sid}")
            done = {m["unit"]: m for m in manifests.trusted(plan, seg.index)}
            todo = largest_first([u for u in units if u.name not in done])
            resumed += len(units) - len(todo)
            view.start_segment(
                names[seg.index],
                _segment_docs(manifests, plan, seg.index, weights),
                sum(m["input"]["rows"] for m in done.values()),
            )
            for summary in executor.run_units(seg.index, todo, decision):
                manifests.add(summary)  # what the unit published: no need to read it back
                view.update(summary, weights[summary["unit"]])
            phases.mark(f"segment_{seg.index}")
    except retry.RetriesExhausted:  # its sentence names the unit and the store's last answer
        raise
    except OSError as exc:  # disk full, no access, a store gone: the unit was not published
        raise RunError(_storage_error(config.output.path, getattr(exc, "cause", exc))) from None
    finally:
        view.stop()
        executor.close()
    phases.mark("close")
    if not config.output.keep_intermediate and len(segments) > 1:
        for seg in segments[:-1]:
            ownership.remove_owned(layout.root, under=f"_segments/s{seg.index}/")
    elapsed = time.perf_counter() - wall
    merged = _write_stats(config, steps, layout, elapsed, startup, plan, manifests)
    merged["total"]["executor"] = kind
    phases.mark("finish")
    merged["total"]["phases"] = phases.seconds
    if getattr(executor, "layout", None):  # how many actors of each pool ran the units
        merged["total"]["actors"] = executor.layout
    io.write_json_atomic(io.join(layout.root, "stats.json"), merged)
    return RunResult(config.output.path, merged, resumed)


# In process below this many planned rows: Ray's start (5-15 s) would cost more than it saves.
AUTO_LOCAL_ROWS = 50_000


class _Phases:
    """Where a run's wall time went, phase by phase, for stats.json (`total.phases`)."""

    def __init__(self, wall: float) -> None:
        self.last = wall
        self.seconds: dict[str, float] = {}

    def mark(self, name: str) -> None:
        """The phase `name` ended now: it took the time since the previous mark."""
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self.last, 3)
        self.last = now


def _storage_error(output: str, cause: BaseException) -> str:
    """The sentence for an OSError that stopped the run: a write (a unit's files) or a read (a
    global step's sidecars, the segment before's output), both under the output folder."""
    # Arrow's own write errors carry no errno, only the system's words.
    writing = getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or any(
        words in str(cause) for words in ("No space left", "Disk quota exceeded")
    )
    what = "cannot write the output" if writing else "cannot read or write the output"
    hint = "free space" if writing else "the permissions, or the file removed while in use"
    return (
        f"{what} under {output}: {cause}; the units finished so far are kept: fix {hint} and "
        "rerun the same command to resume"
    )


def choose_executor(config: PipelineConfig, steps: list[BoundStep], rows: int) -> str:
    """`executor: auto`: in process for small plans without a GPU step; Ray otherwise, and
    always when a cluster address or a worker count is given or this process already runs Ray.
    Output is identical either way."""
    if config.executor != "auto":
        return config.executor
    if config.ray.address != "local" or config.ray.workers:
        return "ray"
    ray = sys.modules.get("ray")  # a program (or test session) that already started Ray
    if ray is not None and ray.is_initialized():
        return "ray"
    if any(_resource(s, "gpus") > 0 for s in steps):
        return "ray"
    return "local" if rows <= AUTO_LOCAL_ROWS else "ray"


def _start_executor(
    kind: str,
    config: PipelineConfig,
    steps: list[BoundStep],
    models: dict,
    unit_args: dict,
    view: RunProgress,
) -> LocalExecutor | RayExecutor:
    """Start the executor, saying what the wait is for (Ray's start, the models loading)."""
    loading = [
        f"{s.sid} ({os.path.basename(info['path'].rstrip('/'))})"
        for s in steps
        for info in models.get(s.sid, {}).values()
    ]
    t0 = time.perf_counter()
    if kind == "local":
        if loading:
            view.phase(f"loading models: {', '.join(loading)}")
        executor: LocalExecutor | RayExecutor = LocalExecutor(config, steps, unit_args)
    else:
        where = (
            f"starting Ray ({machine_cpus()} CPUs)"
            if config.ray.address == "local"
            else f"connecting to Ray at {config.ray.address}"
        )
        view.phase(where + (f", then loading models: {', '.join(loading)}" if loading else ""))
        executor = RayExecutor(config, steps, models, unit_args)
    log = getattr(executor, "log", None)
    view.phase(
        f"ready in {time.perf_counter() - t0:.1f} s"
        + (f" (Ray's own messages: {log})" if log else " (in process)")
    )
    return executor


def largest_first(units: list[io.WorkUnit]) -> list[io.WorkUnit]:
    """Units in the order the workers take them: the biggest (estimated bytes) first, so the
    last ones handed out are small and no worker idles long while another finishes a big one
    (the longest-first rule). Ties keep unit order; the output does not depend on the order."""

    def estimated_bytes(unit: io.WorkUnit) -> float:
        shard = unit.shard
        if shard.size and shard.num_rows:
            return shard.size * _unit_rows(unit) / shard.num_rows
        return float(_unit_rows(unit))

    return sorted(units, key=lambda u: (-estimated_bytes(u), u.index))


def _unit_rows(unit: io.WorkUnit) -> int:
    """Rows a unit reads: from the footer, or guessed from the file size (JSONL, CSV)."""
    if unit.row_groups is not None:
        return sum(unit.shard.row_group_rows[g] for g in unit.row_groups)
    if unit.shard.num_rows is not None:
        return unit.shard.num_rows
    return max(1, (unit.shard.size or 0) // 2_000)


def _finished(manifests: Manifests, plan: dict, segments: int) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {s: set() for s in range(segments)}
    for m in manifests.trusted(plan):
        found.setdefault(m["segment"], set()).add(m["unit"])
    return found


def _segment_docs(manifests: Manifests, plan: dict, seg: int, weights: dict[str, int]) -> int:
    """Documents a segment reads: the planned rows, or what the segment before it kept."""
    if seg == 0:
        return sum(weights.values())
    return sum(m["kept"] for m in manifests.trusted(plan, seg - 1))


def _check_ids(
    config: PipelineConfig,
    shards: list[io.Shard],
    plan: dict,
    layout: Layout,
    executor: Any,
) -> list[str]:
    """Null and repeated user ids over the whole input, once per run (before any unit): a
    warning with counts, or a refusal with input.require_unique_ids."""
    column = config.input.id_column
    if column is None or column == io.DERIVED_ID:
        return []
    record_uri = io.join(layout.root, "_ids", "check.json")
    record = io.read_json(record_uri) if io.exists(record_uri) else None
    if not isinstance(record, dict) or record.get("run") != plan["run_key"]:
        workdir = io.join(layout.root, "_ids", "work")
        counts = idcheck.check_ids(
            shards, column, workdir, executor.parallel_map, config.storage.retries
        )
        ownership.remove_owned(layout.root, under="_ids/work/")
        record = {"run": plan["run_key"], **counts}
        io.write_json_atomic(record_uri, record)
    nulls, repeats = record["null_id"], record["duplicate_id"]
    if not (nulls or repeats):
        return []
    said = f"id column '{column}' has {nulls:,} null and {repeats:,} repeated ids" + (
        f" (e.g. {', '.join(record['examples'])})" if record["examples"] else ""
    )
    if config.input.require_unique_ids:
        raise RunError(f"{said}; input.require_unique_ids is set: fix the ids, or unset it")
    return [f"warning: {said}; set input.require_unique_ids: true to refuse such input"]


def _decide(
    step: BoundStep,
    sidecar_segment: int,
    layout: Layout,
    executor: Any,
    config: PipelineConfig,
    view: RunProgress,
    plan: dict,
    manifests: Manifests,
) -> Any:
    """The global step's decision, computed once over the sidecars and stored for resume.

    `decide.json`, written after the decision file, commits it (and names it: on an object
    store its key is attempt-unique); a decision of another plan is never reused.
    """
    record_uri = layout.decision_stats(step.sid)
    record = io.read_json(record_uri) if io.exists(record_uri) else None
    if not isinstance(record, dict) or record.get("run") != plan["run_key"]:
        # The sidecars the previous segment's manifests name: never a listing of the folder.
        sidecars = sorted(
            m["files"]["sidecar"]
            for m in manifests.trusted(plan, sidecar_segment)
            if "sidecar" in m.get("files", {})
        )
        view.deciding(step.sid, len(sidecars))
        t0 = time.perf_counter()
        instance = step.build(config.input.text_column)
        workdir = layout.workdir(step.sid)
        ownership.remove_owned(layout.root, under=f"_global/{step.sid}/")
        fs, local = io.filesystem(workdir)
        fs.create_dir(local, recursive=True)
        outdir = io.join(layout.root, "_global", step.sid, "decision")
        written = instance.decide_sharded(
            sidecars, executor.parallel_map, workdir, outdir, config.output.compression
        )
        record = {
            "run": plan["run_key"],
            "decision": {"shards": written["shards"]},
            "seconds": round(time.perf_counter() - t0, 3),
            **{k: v for k, v in written.items() if k != "shards"},
        }
        io.write_json_atomic(record_uri, record)
        # Committed: the shuffle's work files go (decide.json names the decision files).
        ownership.remove_owned(layout.root, under=f"_global/{step.sid}/work/")
    return record["decision"]


def _write_stats(
    config: PipelineConfig,
    steps: list[BoundStep],
    layout: Layout,
    wall: float,
    startup: float,
    plan: dict,
    manifests: Manifests,
) -> dict[str, Any]:
    decide = {
        s.sid: io.read_json(layout.decision_stats(s.sid))
        for s in steps
        if s.is_global and io.exists(layout.decision_stats(s.sid))
    }
    # Only this run's manifests of planned units count: a stray one can never inflate stats.
    merged = stats.merge(manifests.trusted(plan), [s.sid for s in steps], decide, wall)
    expected = sum(s["rows"] for s in plan["shards"] if s["rows"] is not None)
    if all(s["rows"] is not None for s in plan["shards"]):
        merged["total"]["planned_documents"] = expected
        merged["total"]["consistent"] = bool(
            merged["total"]["consistent"] and merged["total"]["documents"] == expected
        )
    merged["total"]["plan"] = plan["digest"]
    ids = io.join(layout.root, "_ids", "check.json")
    if io.exists(ids):
        record = io.read_json(ids)
        merged["total"]["id_checks"] = {k: record[k] for k in ("null_id", "duplicate_id")}
    merged["total"]["startup_seconds"] = round(startup, 3)
    io.write_json_atomic(io.join(layout.root, "stats.json"), merged)
    return merged
