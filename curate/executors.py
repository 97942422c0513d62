"""Where units run: in this process, or on a pool of Ray actors."""

from __future__ import annotations

import collections
import functools
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import pyarrow as pa

from curate import embedded_ray, exits, io, ownership, retry, stages
from curate.config import ConfigError, PipelineConfig, StorageConfig
from curate.embedded_ray import machine_cpus, ray_log
from curate.models import pack
from curate.process import BoundStep, StepError, UnitProcessor, setup_step


class RunError(RuntimeError):
    """The run cannot start or continue; the message says why and what to do."""


USER_ERRORS = (RunError, StepError, io.InputError, ConfigError, ownership.OwnershipError, OSError)


class LocalExecutor:
    """Everything in this process: for tiny jobs, debugging and CI checks."""

    def __init__(self, config: PipelineConfig, steps: list[BoundStep], unit_args: dict) -> None:
        self.processor = UnitProcessor(config, steps, **unit_args)
        self.processor.setup()

    def run_units(
        self, seg: int, units: list[io.WorkUnit], decision: Any
    ) -> Iterator[dict[str, Any]]:
        for unit in units:
            yield retry.unit(
                self.processor.process, seg, unit, decision, self.processor.config.storage.retries
            )

    def parallel_map(self, fn: Callable[..., Any], items: Iterable[Any]) -> list[Any]:
        return [_call(fn, item, self.processor.config.storage) for item in items]

    def close(self) -> None:
        pass


class _UnitActor:
    """One Ray worker: sets up every step once, then processes the units it is handed.

    Setup runs in `ready()`, not `__init__`: a model that crashes the process while loading then
    fails that one call (the driver stops the run) instead of a constructor Ray would restart
    forever. After a mid-run restart, `process` sets the steps up again first. A step in `pools`
    runs on that pool of GPU actors: here it is a stand-in that sends them its batches."""

    def __init__(
        self,
        config: PipelineConfig,
        packed: bytes,
        shipped: dict,
        unit_args: dict,
        pools: dict[str, list[str]] | None = None,
    ) -> None:
        self._args = (config, packed, shipped, unit_args, pools or {})
        self.processor: UnitProcessor | None = None

    def _setup(self) -> UnitProcessor:
        import ray

        config, packed, shipped, unit_args, pools = self._args
        # The pools' actors by name, looked up here: handles as constructor arguments would
        # live in the object store, which a restart after a node's death cannot count on.
        found = {sid: [ray.get_actor(name) for name in names] for sid, names in pools.items()}
        steps = [
            _OffloadedStep.of(s, found[s.sid]) if s.sid in found else s
            for s in _worker_steps(config, packed, shipped)
        ]
        processor = UnitProcessor(config, steps, **unit_args)
        processor.setup()
        return processor

    def ready(self) -> str | None:
        try:
            self.processor = self.processor or self._setup()
        except Exception as exc:
            return _setup_error(exc)
        return None

    def call(self, fn: Callable[..., Any], item: Any) -> Any:
        """One item of the runner's `parallel_map` (a global step's shuffle, the id check)."""
        return _call(fn, item, self._args[0].storage)

    def process(self, seg: int, unit: io.WorkUnit, decision: Any) -> dict[str, Any]:
        self.processor = self.processor or self._setup()
        return retry.unit(
            self.processor.process, seg, unit, decision, self.processor.config.storage.retries
        )


class _StepActor:
    """One worker of a GPU step's own pool: sets the step up once, on the GPU Ray gave this
    actor, then scores the batches the unit actors send (set up in `ready()`, as they are)."""

    def __init__(self, config: PipelineConfig, packed: bytes, shipped: dict) -> None:
        self._args = (config, packed, shipped)
        self.instance: Any = None

    def _setup(self) -> Any:
        config, packed, shipped = self._args
        (step,) = _worker_steps(config, packed, shipped)
        instance = stages.build(step, config.input.text_column)
        setup_step(step.sid, instance)
        return instance

    def ready(self) -> str | None:
        try:
            self.instance = self.instance or self._setup()
        except Exception as exc:
            return _setup_error(exc)
        return None

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        self.instance = self.instance or self._setup()
        return {name: stages.as_array(v) for name, v in self.instance.score(batch).items()}


class _RemoteScore:
    """In a unit actor, the stand-in for a step that runs on its own pool: `score` sends the
    batch (Arrow, through the object store) to one of the pool's actors and returns the scores
    it computed there; `keep` (the thresholds) and everything else run here, on the step's own
    instance, which loads no model."""

    def __init__(self, step: Any, pool: list) -> None:
        self.step = step
        self.pool = pool
        self.calls = 0

    def setup(self) -> None:
        """Nothing to load here: the pool's actors set the model up."""

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        import ray

        actor = self.pool[self.calls % len(self.pool)]
        self.calls += 1
        try:
            return ray.get(actor.score.remote(batch))
        except ray.exceptions.RayTaskError as exc:
            # The step's own error, so the unit actor names the step and the unit around it.
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise

    def __getattr__(self, name: str) -> Any:
        if name == "step":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.step, name)


@dataclass
class _OffloadedStep(BoundStep):
    """A bound step whose instance, in a unit actor, is a `_RemoteScore` on its pool."""

    pool: list = field(default_factory=list)

    @classmethod
    def of(cls, step: BoundStep, pool: list) -> _OffloadedStep:
        return cls(**{f.name: getattr(step, f.name) for f in fields(step)}, pool=pool)

    def build(self, text_column: str) -> Any:
        return _RemoteScore(super().build(text_column), self.pool)


def _worker_steps(config: PipelineConfig, packed: bytes, shipped: dict) -> list[BoundStep]:
    """What every actor does first: storage settings, thread counts that follow the CPUs Ray
    reserved for it, and the steps unpickled with their shipped models unpacked on this node."""
    import ray

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
    return steps


def _setup_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, StepError | RunError) else f"{type(exc).__name__}: {exc}"


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
    return float(getattr(stages.resources(step), name))


def _rotated(pools: dict[str, list[str]], start: int) -> dict[str, list[str]]:
    """Each pool's actors, starting at the `start`-th (modulo the pool's size)."""
    return {sid: [*p[start % len(p) :], *p[: start % len(p)]] for sid, p in pools.items()}


def _call(fn: Callable[..., Any], item: Any, storage: StorageConfig) -> Any:
    """One item of `parallel_map`, again on a transient storage error (an object store's 503)."""
    io.configure_storage(storage.s3_endpoint_url, storage.s3_region)
    return retry.call(
        lambda: fn(item),
        f"{_task_name(fn)} of a global step or check",
        retry.Policy(attempts=storage.retries),
    )


def _task_name(fn: Callable[..., Any]) -> str:
    """`scatter_ids`, `large_star`, ...: the function a `parallel_map` task runs."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    return getattr(fn, "__name__", type(fn).__name__)


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
    """Unit actors that run the chain, handed units as they free up, and a pool of GPU actors
    per GPU filter, which scores the batches the unit actors send it."""

    def __init__(
        self,
        config: PipelineConfig,
        steps: list[BoundStep],
        models: dict[str, dict[str, dict[str, str]]],
        unit_args: dict,
    ) -> None:
        import ray

        self.ray = ray
        address = config.ray.address
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            try:
                if address == "local":
                    # Workers import ad-hoc `module:Class` steps from where the driver runs.
                    path = os.pathsep.join(
                        p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p
                    )
                    # Through the environment the raylet inherits, not a runtime_env: that
                    # one costs every worker a trip through Ray's runtime-env agent (~0.6 s).
                    with ray_log() as self.log:
                        embedded_ray.start(ray, machine_cpus(), PYTHONPATH=path)
                else:
                    _check_reachable(address)
                    with ray_log() as self.log:
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
        # A GPU filter runs on a pool of its own; every other step in each unit actor, which
        # reserves the most any of those needs (see curate.stages).
        away = stages.offloaded(steps, unit_args.get("reused"))
        chain = stages.chain_reservation(steps, away)
        have = ray.cluster_resources()
        sizes = {
            s.sid: config.ray.gpu_workers
            or max(1, int(have.get("GPU", 0) / len(away) // stages.resources(s).gpus))
            for s in away
        }
        pooled = {
            name: sum(sizes[s.sid] * getattr(stages.resources(s), attr) for s in away)
            for name, attr in (("CPU", "cpus"), ("GPU", "gpus"))
        }
        workers = config.ray.workers or max(1, int(have.get("CPU", 1) - pooled["CPU"]))
        self.layout = {"unit_actors": workers, **{f"{sid}_actors": n for sid, n in sizes.items()}}
        self._check_fits(workers, chain, pooled, have, [s.sid for s in away])
        # The steps travel inline (a few KB): an argument in the object store could be gone when
        # an actor restarts after its node died (Ray issue #53727). The shipped models are too big
        # for that, so the driver holds their refs for the whole run.
        self._pinned = shipped
        # SPREAD: one actor a node before doubling up, so a cluster's nodes all take units.
        options = {"max_restarts": -1, "max_task_retries": 3, "scheduling_strategy": "SPREAD"}
        pools: dict[str, list[str]] = {}  # step id -> its actors' names
        self.pool_actors = []
        run = uuid.uuid4().hex[:12]  # names unique to this run: one Ray may serve several
        for step in away:
            need = stages.resources(step)
            packed_step = ray.cloudpickle.dumps([step])
            pools[step.sid] = [f"curate-{run}-{step.sid}-{i}" for i in range(sizes[step.sid])]
            for name in pools[step.sid]:
                self.pool_actors.append(
                    ray.remote(_StepActor)
                    .options(name=name, num_cpus=need.cpus, num_gpus=need.gpus, **options)
                    .remote(config, packed_step, {step.sid: shipped.get(step.sid, {})})
                )
        actor_cls = ray.remote(_UnitActor).options(
            num_cpus=chain.cpus, num_gpus=chain.gpus, **options
        )
        packed = ray.cloudpickle.dumps(steps)
        here = {sid: models for sid, models in shipped.items() if sid not in pools}
        self.actors = [
            # Each unit actor starts its round of a pool at another actor: the load spreads.
            actor_cls.remote(config, packed, here, unit_args, _rotated(pools, i))
            for i in range(workers)
        ]
        # No retry: an actor that dies setting up is reported, not restarted into the same crash.
        everyone = self.pool_actors + self.actors
        try:
            ready = ray.get([a.ready.options(max_task_retries=0).remote() for a in everyone])
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

    def _check_fits(
        self, workers: int, chain: Any, pooled: dict[str, float], have: dict, away: list[str]
    ) -> None:
        """Refuse a layout the cluster cannot hold: its actors would wait forever."""
        for name, each in (("CPU", chain.cpus), ("GPU", chain.gpus)):
            total = workers * each + pooled[name]
            if total <= have.get(name, 0):
                continue
            said = [f"{workers} workers x {each:g} {name} each"] if each else []
            if pooled[name]:
                said.append(f"the pools of {', '.join(away)} {pooled[name]:g}")
            self.close()
            raise RunError(
                f"{' and '.join(said)} need {total:g} {name}s but the Ray cluster has "
                f"{have.get(name, 0):g}: lower --workers (or ray.gpu_workers), or the steps' "
                "resources, or add nodes (the actors would wait forever)"
            )

    def _single_node(self) -> bool:
        return len([n for n in self.ray.nodes() if n.get("Alive")]) <= 1

    def run_units(
        self, seg: int, units: list[io.WorkUnit], decision: Any
    ) -> Iterator[dict[str, Any]]:
        ray = self.ray
        decision_ref = ray.put(decision) if decision is not None else None
        finished = self._on_free_actors(
            units, lambda actor, unit: actor.process.remote(seg, unit, decision_ref)
        )
        for _, ref in finished:
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
        """`fn` over `items` on the unit actors, one item an actor at a time, results in order.

        The actors sit idle while a global step decides and already hold the CPUs: a task of
        its own would wait for a CPU, or (reserving none) start a fresh worker process that
        imports everything again (about a second each on two cores)."""
        fn_ref = self.ray.put(fn)
        finished = self._on_free_actors(items, lambda actor, item: actor.call.remote(fn_ref, item))
        results = {index: self.ray.get(ref) for index, ref in finished}
        return [results[i] for i in range(len(results))]

    def _on_free_actors(
        self, items: Iterable[Any], submit: Callable[[Any, Any], Any]
    ) -> Iterator[tuple[int, Any]]:
        """Each item to the next free unit actor (`submit(actor, item)` returns its ref), one
        at a time an actor; yields (item's index, ref) as each finishes."""
        queue = collections.deque(enumerate(items))
        in_flight: dict[Any, tuple[Any, int]] = {}
        free = collections.deque(self.actors)
        while queue or in_flight:
            while queue and free:
                index, item = queue.popleft()
                actor = free.popleft()
                in_flight[submit(actor, item)] = (actor, index)
            done, _ = self.ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                actor, index = in_flight.pop(ref)
                free.append(actor)
                yield index, ref

    def close(self) -> None:
        for actor in getattr(self, "actors", []) + getattr(self, "pool_actors", []):
            self.ray.kill(actor)
        self.actors, self.pool_actors = [], []
        if self.owns_ray:
            embedded_ray.stop(self.ray)
