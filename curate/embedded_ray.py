"""Start and stop the embedded single-node Ray without the seconds Ray's defaults waste there.

`ray.init()` on a 2-core machine took 2.4 s, or 3.4 s in about half the starts (3.0 s or 4.0 s
on a slower one), and its shutdown another 1.3 s. These waits and processes do nothing for a
single-node run that curate owns from start to end:

- two lost races, each a one-second sleep: the raylet's object manager connects to its own
  plasma store, sometimes before the store listens, and then sleeps
  `raylet_client_connect_timeout_milliseconds` (1,000 ms) before it tries again (workers use
  the same setting to reach the raylet); and the driver looks for its node in the GCS, which
  the raylet only joins once its agent is up (0.8-1.2 s), and sleeps 1 s between looks. curate
  retries both every 50 ms, with the same patience in all.
- the dashboard: `include_dashboard=False` still starts its head process (for usage stats)
  and waits ~0.6 s for it to publish a URL, and the raylet waits for a full dashboard agent
  (HTTP server, metrics exporter; the driver imports aiohttp, 0.3 s, to decide that). Nothing
  in curate uses them: no head is started and the agent runs as in Ray's minimal install.
  (That agent's event module then asks for the head's address once a second, in Ray's log.)
- the autoscaler monitor and the log monitor: two Python processes (0.6 CPU s each to start,
  taken from the raylet and its agents on a small machine) for a cluster of one node that never
  autoscales and a driver that does not show workers' logs (`log_to_driver=False`). Neither is
  started. Workers still write their logs to the session folder.

All of this reaches into Ray's private modules (ray is pinned in pyproject.toml); where they are
not where 2.60 keeps them, Ray starts and stops as it always did. A Ray cluster
(`--ray-address`) is never touched.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

# Same patience as Ray's default (10 tries x 1 s), in 50 ms steps.
FAST_START_CONFIG = {
    "raylet_client_connect_timeout_milliseconds": 50,
    "raylet_client_num_connect_attempts": 200,
}


def machine_cpus() -> int:
    """The CPUs this process may use (its affinity mask, not the host's core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def start(ray: Any, cpus: int, gpus: int | None = None, **environment: str) -> None:
    """`ray.init` a fresh single-node Ray of `cpus` CPUs (and `gpus`, default: those Ray
    finds), its processes inheriting `environment`."""
    os.environ.pop("RAY_ADDRESS", None)  # embedded means fresh, not a stale cluster
    with (
        _environment(**environment),
        _without_dashboard(ray),
        _without_monitors(ray),
        _quick_node_lookup(ray),
    ):
        ray.init(
            num_cpus=cpus,
            num_gpus=gpus,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            # A copy: ray.init adds its session's spilling folder to the dict it is given,
            # which a second start in this process would then inherit.
            _system_config=dict(FAST_START_CONFIG),
        )


def stop(ray: Any) -> None:
    """Shut the embedded Ray down, an autoscaler monitor (where one runs) killed first: it
    ignores SIGTERM for the second `ray.shutdown()` waits."""
    node = getattr(getattr(getattr(ray, "_private", None), "worker", None), "_global_node", None)
    processes = getattr(node, "all_processes", None) or {}
    for info in processes.get("monitor", []):
        process = getattr(info, "process", None)
        if process is not None and process.poll() is None:
            process.kill()
            with contextlib.suppress(Exception):
                process.wait(timeout=1)
    ray.shutdown()


@contextlib.contextmanager
def _patched(*changes: tuple[Any, str, Any]) -> Iterator[None]:
    """Each `(owner, attribute, value)` set for the block, then the old values put back."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in changes]
    for owner, name, value in changes:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


def _without_dashboard(ray: Any) -> contextlib.AbstractContextManager[None]:
    """During the block, Ray starts no dashboard head and a minimal agent (see the module note)."""
    private = getattr(ray, "_private", None)
    node_class = getattr(getattr(private, "node", None), "Node", None)
    utils = getattr(private, "utils", None)
    if not hasattr(node_class, "start_api_server") or not hasattr(
        utils, "get_dashboard_dependency_error"
    ):
        return contextlib.nullcontext()

    def no_dashboard_head(self: Any, **_: Any) -> None:
        self._webui_url = None

    def minimal_agent() -> str:
        return "curate's embedded Ray runs no dashboard"

    return _patched(
        (node_class, "start_api_server", no_dashboard_head),
        (utils, "get_dashboard_dependency_error", minimal_agent),
    )


def _without_monitors(ray: Any) -> contextlib.AbstractContextManager[None]:
    """During the block, the head node starts neither the autoscaler monitor nor the log
    monitor (see the module note): `ray.init` has no option for either, its RayParams do."""
    parameter = getattr(getattr(ray, "_private", None), "parameter", None)
    params_class = getattr(parameter, "RayParams", None)
    if params_class is None:
        return contextlib.nullcontext()

    class HeadWithoutMonitors(params_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("no_monitor", True)
            kwargs.setdefault("include_log_monitor", False)
            super().__init__(*args, **kwargs)

    return _patched((parameter, "RayParams", HeadWithoutMonitors))


POLL_SECONDS = 0.05
# As Ray's own patience for a raylet to join the GCS (`raylet_start_wait_time_s`).
NODE_WAIT_SECONDS = 30.0


def _quick_node_lookup(ray: Any) -> contextlib.AbstractContextManager[None]:
    """During the block, the driver looks for its node in the GCS every 50 ms before it asks
    Ray's own lookup, which sleeps a whole second whenever the node is not there yet."""
    services = getattr(getattr(ray, "_private", None), "services", None)
    original = getattr(services, "get_node", None)
    if original is None or not hasattr(services, "GcsClient"):
        return contextlib.nullcontext()

    def get_node(gcs_address: str, node_id: str) -> Any:
        _wait_for_node(services, gcs_address, node_id)
        return original(gcs_address, node_id)

    return _patched((services, "get_node", get_node))


def _wait_for_node(services: Any, gcs_address: str, node_id: str) -> None:
    """Return once the GCS lists `node_id` alive, or after NODE_WAIT_SECONDS; on any surprise
    return at once, leaving the wait to Ray's lookup."""
    try:
        client = services.GcsClient(address=gcs_address)
        selector = services.GetAllNodeInfoRequest.NodeSelector(
            node_id=services.NodeID.from_hex(node_id).binary()
        )
        alive = services.GcsNodeInfo.GcsNodeState.ALIVE
        deadline = time.monotonic() + NODE_WAIT_SECONDS
        while time.monotonic() < deadline:
            if client.get_all_node_info(timeout=5, node_selectors=[selector], state_filter=alive):
                return
            time.sleep(POLL_SECONDS)
    except Exception:  # noqa: BLE001 - Ray's own lookup then waits and reports as it always did
        return


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """These environment variables set for the block, then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def ray_log() -> Iterator[str]:
    """Send what Ray prints while it starts (its notices, its processes' output) to a log file,
    not the user's terminal; yields the file's path."""
    folder = os.path.join(tempfile.gettempdir(), "curate-logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"ray-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield path
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
