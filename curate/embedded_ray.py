"""Start and stop the embedded single-node Ray without the seconds Ray's defaults waste there.

`ray.init()` on a 2-core machine took 2.4 s, or 3.4 s in about half the starts, and its
shutdown another 1.3 s. Three of those waits do nothing for a single-node run that curate
owns from start to end:

- a lost race: the raylet's object manager connects to its own plasma store, sometimes before
  the store listens, and then sleeps `raylet_client_connect_timeout_milliseconds` (1,000 ms)
  before it tries again. Retrying every 50 ms (with the same 10 s of patience in all) removes
  that second; workers use the same setting to reach the raylet and ask it for the config.
- the dashboard: `include_dashboard=False` still starts its head process (for usage stats)
  and waits ~0.6 s for it to publish a URL, and the raylet waits for a full dashboard agent
  (HTTP server, metrics exporter; the driver imports aiohttp, 0.3 s, to decide that). Nothing
  in curate uses them: no head is started and the agent runs as in Ray's minimal install.
  (That agent's event module then asks for the head's address once a second, in Ray's log.)
- the autoscaler monitor: it never autoscales one node, and does not exit on SIGTERM within
  the second `ray.shutdown()` waits before killing it; curate kills it first.

The last two reach into Ray's private node record (ray is pinned in pyproject.toml); where
that record is not where 2.60 keeps it, Ray starts and stops as it always did. A Ray cluster
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
    with _environment(**environment), _without_dashboard(ray):
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
    """Shut the embedded Ray down, its autoscaler monitor killed first (see the module note)."""
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
def _without_dashboard(ray: Any) -> Iterator[None]:
    """During the block, Ray starts no dashboard head and a minimal agent (see the module note)."""
    private = getattr(ray, "_private", None)
    node_class = getattr(getattr(private, "node", None), "Node", None)
    utils = getattr(private, "utils", None)
    if not hasattr(node_class, "start_api_server") or not hasattr(
        utils, "get_dashboard_dependency_error"
    ):
        yield
        return

    def no_dashboard_head(self: Any, **_: Any) -> None:
        self._webui_url = None

    saved = node_class.start_api_server, utils.get_dashboard_dependency_error
    node_class.start_api_server = no_dashboard_head
    utils.get_dashboard_dependency_error = lambda: "curate's embedded Ray runs no dashboard"
    try:
        yield
    finally:
        node_class.start_api_server, utils.get_dashboard_dependency_error = saved


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
