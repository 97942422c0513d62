"""Runs a pipeline: plans units and segments, schedules them on Ray actors or in process."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from curate import exits, io, probe, stats
from curate.config import ConfigError, PipelineConfig, dump_yaml
from curate.models import model_fields, pack, sha256_path
from curate.process import (
    SCORES_KEY,
    BoundStep,
    Layout,
    StepError,
    UnitProcessor,
    bind_steps,
    plan_segments,
)
from curate.progress import RunProgress


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


USER_ERRORS = (RunError, StepError, io.InputError, ConfigError, OSError)


@dataclass
class RunResult:
    output: str
    stats: dict[str, Any]
    skipped_units: int


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


# ----------------------------------------------------------------------------- executors
class LocalExecutor:
    """Everything in this process: for tiny jobs, debugging and CI checks."""

    def __init__(self, config: PipelineConfig, steps: list[BoundStep], reused: dict) -> None:
        self.processor = UnitProcessor(config, steps, reused)
        self.processor.setup()

    def run_units(
        self, seg: int, units: list[io.WorkUnit], decision: Any
    ) -> Iterator[dict[str, Any]]:
        for unit in units:
            yield self.processor.process(seg, unit, decision)

    def parallel_map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        return [fn(item) for item in items]

    def close(self) -> None:
        pass


class _UnitActor:
    """One Ray worker: sets up every step once, then processes the units it is handed.

    Setup runs in `ready()`, not `__init__`: a model that crashes the process while loading then
    fails that one call (the driver stops the run) instead of a constructor Ray would restart
    forever. After a mid-run restart, `process` sets the steps up again first."""

    def __init__(self, config: PipelineConfig, packed: bytes, shipped: dict, reused: dict) -> None:
        self._args = (config, packed, shipped, reused)
        self.processor: UnitProcessor | None = None

    def _setup(self) -> UnitProcessor:
        import ray

        config, packed, shipped, reused = self._args
        io.configure_storage(config.storage.s3_endpoint_url, config.storage.s3_region)
        # Arrow's compute pool follows the CPUs Ray reserved for this actor, not the node's:
        # N actors on N cores must not each start N threads.
        cpus = max(1, int(round(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))))
        pa.set_cpu_count(cpus)
        # Likewise for libraries steps import in setup() (torch, numpy's BLAS).
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(cpus))
        steps = _unpack_steps(packed, config)

        from curate.models import materialise

        for step in steps:
            for name, (files, digest) in shipped.get(step.sid, {}).items():
                files = ray.get(files) if isinstance(files, ray.ObjectRef) else files
                local = materialise(
                    files, digest, os.path.basename(getattr(step.params, name).rstrip("/"))
                )
                setattr(step.params, name, local)
        processor = UnitProcessor(config, steps, reused)
        processor.setup()
        return processor

    def ready(self) -> str | None:
        try:
            self.processor = self.processor or self._setup()
        except Exception as exc:
            return (
                str(exc)
                if isinstance(exc, StepError | RunError)
                else f"{type(exc).__name__}: {exc}"
            )
        return None

    def process(self, seg: int, unit: io.WorkUnit, decision: Any) -> dict[str, Any]:
        self.processor = self.processor or self._setup()
        return self.processor.process(seg, unit, decision)


def _unpack_steps(packed: bytes, config: PipelineConfig) -> list[BoundStep]:
    """The steps, unpickled here so that a plugin this worker lacks is named, not a crash."""
    from ray import cloudpickle

    try:
        return cloudpickle.loads(packed)
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        sids = [
            s.step_id
            for s in config.steps
            if s.use.split(":")[0].split(".")[0] == missing.split(".")[0]
        ]
        which = f"step '{sids[0]}' ({missing})" if sids else f"module '{missing}'"
        raise RunError(
            f"{which} cannot be imported on a Ray worker ({socket.gethostname()}): install "
            "the plugin's package on every node, or ship it with the job: ray job submit "
            "--working-dir DIR, or a runtime_env with py_modules or pip"
        ) from exc


def _resource(step: BoundStep, name: str) -> float:
    override = step.config.resources or {}
    return float(override.get(name, getattr(step.cls.resources, name)))


def _call(fn: Callable[..., Any], item: Any, storage: tuple[str | None, str | None]) -> Any:
    io.configure_storage(*storage)
    return fn(item)


def _check_local_workers(workers: int | None) -> None:
    """Embedded Ray gets one CPU per worker: more than the machine has would fork it to death."""
    have = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if workers and have and workers > have:
        raise RunError(
            f"--workers {workers}: this machine has {have} CPUs, and an embedded Ray "
            f"(ray.address: local) runs at most one worker per CPU: use --workers {have} or "
            "fewer, or connect to a cluster with --ray-address"
        )


def _check_reachable(address: str) -> None:
    """Refuse an address nothing listens on within seconds (ray.init retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and other forms: Ray resolves them
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise RunError(
            f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): start it, or "
            "fix --ray-address (ray.address: local, auto or ray://host:port)"
        ) from None


class RayExecutor:
    """A pool of Ray actors; units are handed out as actors free up."""

    def __init__(
        self,
        config: PipelineConfig,
        steps: list[BoundStep],
        models: dict[str, dict[str, dict[str, str]]],
        reused: dict,
    ) -> None:
        import ray

        self.ray = ray
        address = config.ray.address
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            try:
                if address == "local":
                    _check_local_workers(config.ray.workers)
                    os.environ.pop("RAY_ADDRESS", None)  # embedded means fresh, not a stale cluster
                    # Workers import ad-hoc `module:Class` steps from where the driver runs.
                    path = os.pathsep.join(
                        p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p
                    )
                    ray.init(
                        num_cpus=config.ray.workers or os.cpu_count(),
                        include_dashboard=False,
                        log_to_driver=False,
                        configure_logging=False,
                        runtime_env={"env_vars": {"PYTHONPATH": path}},
                    )
                else:
                    _check_reachable(address)
                    ray.init(address=address, log_to_driver=False, configure_logging=False)
            except RunError:
                raise
            except Exception as exc:  # ConnectionError, a timeout, a version mismatch, ...
                where = "start an embedded Ray" if address == "local" else f"connect to {address}"
                raise RunError(
                    f"cannot {where}: {type(exc).__name__}: {exc}; check --ray-address "
                    "(ray.address: local, auto or ray://host:port)"
                ) from None
            exits.restore_signal_handlers()  # ray.init replaced SIGTERM's with a bare exit
        cluster = address != "local" or not self._single_node()
        shipped: dict[str, dict[str, Any]] = {}
        if cluster:  # local model paths must work on nodes that do not share this disk
            for sid, fields in models.items():
                shipped[sid] = {
                    name: (ray.put(pack(info["path"])), info["sha256"])
                    for name, info in fields.items()
                }
        workers = config.ray.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        # Each actor runs every step, so it reserves the most any step needs.
        cpus = max((_resource(s, "cpus") for s in steps), default=1.0)
        gpus = max((_resource(s, "gpus") for s in steps), default=0.0)
        have = ray.cluster_resources()
        for name, each in (("CPU", cpus), ("GPU", gpus)):
            if each and workers * each > have.get(name, 0):
                self.close()
                raise RunError(
                    f"{workers} workers x {each:g} {name} each need {workers * each:g} {name}s but "
                    f"the Ray cluster has {have.get(name, 0):g}: lower --workers, or the steps' "
                    "resources, or add nodes (the actors would wait forever)"
                )
        # SPREAD: one actor a node before doubling up, so a cluster's nodes all take units.
        actor_cls = ray.remote(_UnitActor).options(
            num_cpus=cpus,
            num_gpus=gpus,
            max_restarts=-1,
            max_task_retries=3,
            scheduling_strategy="SPREAD",
        )
        # The steps travel inline (a few KB): an argument in the object store could be gone when
        # an actor restarts after its node died (Ray issue #53727). The shipped models are too big
        # for that, so the driver holds their refs for the whole run.
        packed = ray.cloudpickle.dumps(steps)
        self._pinned = shipped
        self.actors = [actor_cls.remote(config, packed, shipped, reused) for _ in range(workers)]
        # No retry: an actor that dies setting up is reported, not restarted into the same crash.
        try:
            ready = ray.get([a.ready.options(max_task_retries=0).remote() for a in self.actors])
        except ray.exceptions.RayActorError as exc:
            self.close()
            raise RunError(
                "a Ray worker died setting up the steps "
                f"({', '.join(s.sid for s in steps)}): a model file is probably truncated or "
                f"corrupt, or setup ran out of memory ({type(exc).__name__})"
            ) from None
        errors = [e for e in ready if e]
        if errors:
            self.close()
            raise RunError(errors[0])
        # The actors hold the CPUs and sit idle while a global step decides: its tasks take no
        # CPU reservation (else they would wait forever) and are throttled to `workers` at once.
        self._call = ray.remote(num_cpus=0, max_retries=3)(_call)
        self.workers = workers
        self.storage = (config.storage.s3_endpoint_url, config.storage.s3_region)

    def _single_node(self) -> bool:
        return len([n for n in self.ray.nodes() if n.get("Alive")]) <= 1

    def run_units(
        self, seg: int, units: list[io.WorkUnit], decision: Any
    ) -> Iterator[dict[str, Any]]:
        ray = self.ray
        decision_ref = ray.put(decision) if decision is not None else None
        queue = list(units)
        in_flight: dict[Any, Any] = {}
        free = list(self.actors)
        while queue or in_flight:
            while queue and free:
                actor = free.pop(0)
                in_flight[actor.process.remote(seg, queue.pop(0), decision_ref)] = actor
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                free.append(in_flight.pop(ref))
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayTaskError as exc:
                    # A user-facing error (bad input, a failing step) is re-raised as itself, so
                    # the CLI prints its sentence and not the worker's traceback.
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, USER_ERRORS):
                        raise cause from None
                    raise exc.as_instanceof_cause() from None

    def parallel_map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        ray = self.ray
        fn_ref = ray.put(fn)
        refs: list[Any] = []
        for item in items:
            if len(refs) >= self.workers:
                ray.wait(refs, num_returns=len(refs) - self.workers + 1)
            refs.append(self._call.remote(fn_ref, item, self.storage))
        return ray.get(refs)

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            self.ray.kill(actor)
        self.actors = []
        if self.owns_ray:
            self.ray.shutdown()


# ----------------------------------------------------------------------------- the run
def _check_inputs(config: PipelineConfig, shards: list[io.Shard]) -> None:
    """Columns checked from Parquet footers before anything is written."""
    text, ident = config.input.text_column, config.input.id_column
    for shard in shards:
        if shard.format != "parquet":
            continue
        names = io.unit_schema(io.WorkUnit(0, shard, None, 0)).names
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


def _reusable_scores(
    config: PipelineConfig, shards: list[io.Shard], steps: list[BoundStep]
) -> tuple[PipelineConfig, dict[str, dict[str, Any]]]:
    """Steps whose scores a previous curate run already wrote into the input (score once,
    threshold later): read from the first shard's schema metadata, so nothing is guessed."""
    if not shards or shards[0].format != "parquet":
        return config, {}
    schema = io.unit_schema(io.WorkUnit(0, shards[0], None, 0))
    meta = json.loads((schema.metadata or {}).get(SCORES_KEY, b"{}"))
    if not meta:
        return config, {}
    if config.input.id_column is None and io.DERIVED_ID in schema.names:
        config = config.model_copy(deep=True)
        config.input.id_column = io.DERIVED_ID  # the ids the first run derived
    reused = {}
    for step in steps:
        metrics = meta.get(step.sid)
        if metrics and all(f"{step.sid}_{m}" in schema.names for m in metrics):
            # A global step already applied to this input (its survivors carry its columns)
            # has nothing left to remove: it is skipped, see `run`.
            reused[step.sid] = {m: schema.field(f"{step.sid}_{m}").type for m in metrics}
    return config, reused


def _prepare_output(config: PipelineConfig, overwrite: bool, run_yaml: str) -> None:
    root = config.output.path
    run_file = io.join(root, "_manifest", "run.json")
    fingerprint = config.fingerprint()
    if overwrite:
        io.clear(root)
    elif io.exists(run_file):
        previous = io.read_json(run_file)
        if previous.get("fingerprint") != fingerprint:
            raise RunError(
                f"{root} holds the output of a different config; rerun with "
                "--overwrite to replace it, or choose another --output"
            )
    elif io.exists(root) and io.list_files(io.join(root, "data")):
        raise RunError(f"{root} already holds data from an unknown run; use --overwrite")
    io.remove_temporaries(root)
    io.write_text_atomic(io.join(root, "run.yaml"), run_yaml)
    io.write_json_atomic(run_file, {"fingerprint": fingerprint})


def run(
    config: PipelineConfig,
    *,
    overwrite: bool = False,
    progress: str = "auto",
    console: Console | None = None,
) -> RunResult:
    """Run a pipeline to completion, resuming what a previous run of the same config finished."""
    console = console or Console(stderr=True)
    wall = time.perf_counter()
    io.configure_storage(config.storage.s3_endpoint_url, config.storage.s3_region)
    config = _resolve_paths(config)
    steps = bind_steps(config)
    shards = io.discover(config.input.path, config.input.format, config.output.path)
    config, reused = _reusable_scores(config, shards, steps)
    applied = [s.sid for s in steps if s.is_global and s.sid in reused]
    steps = [s for s in steps if s.sid not in applied]
    for sid in applied:
        del reused[sid]
    segments = plan_segments(steps)
    models = _models([s for s in steps if s.sid not in reused])
    probe.check_setup(steps, config.input.text_column, models)  # before Ray: a crash is a sentence
    _check_inputs(config, shards)
    units = io.plan_units(shards, config.input.unit_rows)
    layout = Layout(config.output.path)
    resolved = {s.sid: s.params.model_dump(mode="json") for s in steps}
    _prepare_output(
        config, overwrite, dump_yaml(config, resolved, {"models": models} if models else None)
    )
    executor: LocalExecutor | RayExecutor
    executor = (
        LocalExecutor(config, steps, reused)
        if config.executor == "local"
        else RayExecutor(config, steps, models, reused)
    )
    startup = time.perf_counter() - wall  # Ray start and every step's setup()
    view = RunProgress(console, progress)
    for sid in applied:
        view.note(f"{sid}: already applied to this input (its columns are there); skipped")
    skipped = 0
    try:
        decision = None
        for seg in segments:
            if seg.apply is not None:
                decision = _decide(seg.apply, layout, units, executor, config, view)
            todo = [u for u in units if not io.exists(layout.manifest(seg.index, u.name))]
            skipped += len(units) - len(todo)
            label = "filter" if len(segments) == 1 else f"segment {seg.index + 1}/{len(segments)}"
            view.start_segment(label, len(units), len(units) - len(todo))
            done = len(units) - len(todo)
            for summary in executor.run_units(seg.index, todo, decision):
                done += 1
                view.update(summary, done, len(units))
    except OSError as exc:  # disk full, no access, a store gone: the unit was not published
        cause = getattr(exc, "cause", exc)
        raise RunError(
            f"cannot write the output under {config.output.path}: {cause}; the units finished "
            "so far are kept: fix it (e.g. free space) and rerun the same command to resume"
        ) from None
    finally:
        view.stop()
        executor.close()
    if not config.output.keep_intermediate and len(segments) > 1:
        for seg in segments[:-1]:
            io.clear(io.join(layout.root, "_segments", f"s{seg.index}"))
    merged = _write_stats(config, steps, layout, time.perf_counter() - wall, startup)
    return RunResult(config.output.path, merged, skipped)


def _decide(
    step: BoundStep,
    layout: Layout,
    units: list[io.WorkUnit],
    executor: Any,
    config: PipelineConfig,
    view: RunProgress,
) -> Any:
    """The global step's decision, computed once over the sidecars and stored for resume."""
    path = layout.decision(step.sid)
    if not io.exists(path):
        view.note(f"{step.sid}: deciding over {len(units)} sidecar files")
        t0 = time.perf_counter()
        sidecars = [
            layout.sidecar(step.sid, u.name)
            for u in units
            if io.exists(layout.sidecar(step.sid, u.name))
        ]
        instance = step.build(config.input.text_column)
        workdir = layout.workdir(step.sid)
        io.clear(workdir)
        fs, local = io.filesystem(workdir)
        fs.create_dir(local, recursive=True)
        decision = instance.decide(sidecars, executor.parallel_map, workdir)
        decision = decision.sort_by("row_id")
        writer = io.AtomicParquetWriter(path, decision.schema, config.output.compression)
        writer.write(decision)
        writer.commit()
        dropped = int(decision.column("drop").to_numpy(zero_copy_only=False).sum())
        io.write_json_atomic(
            layout.decision_stats(step.sid),
            {
                "seconds": round(time.perf_counter() - t0, 3),
                "decision_rows": decision.num_rows,
                "to_drop": dropped,
            },
        )
    fs, local = io.filesystem(path)
    return pq.read_table(fs.open_input_file(local))


def _write_stats(
    config: PipelineConfig, steps: list[BoundStep], layout: Layout, wall: float, startup: float
) -> dict[str, Any]:
    decide = {
        s.sid: io.read_json(layout.decision_stats(s.sid))
        for s in steps
        if s.is_global and io.exists(layout.decision_stats(s.sid))
    }
    merged = stats.merge(stats.read_manifests(layout.root), [s.sid for s in steps], decide, wall)
    merged["total"]["startup_seconds"] = round(startup, 3)
    io.write_json_atomic(io.join(layout.root, "stats.json"), merged)
    return merged
