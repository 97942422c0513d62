"""curate's own embedded Ray: started without a dashboard head, without the autoscaler and log
monitors and with the fast-retry config, runs tasks, restores what it patched, and stops. In a
fresh process each: the test session already runs its own Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import pytest

from curate import embedded_ray
from tests.conftest import REPO

pytestmark = pytest.mark.ray

PROBE = textwrap.dedent(
    """
    import json, os, ray
    from curate import embedded_ray
    original = ray._private.node.Node.start_api_server
    params, get_node = ray._private.parameter.RayParams, ray._private.services.get_node
    embedded_ray.start(ray, 1, CURATE_TEST_MARK="seen")
    node = ray._private.worker._global_node

    @ray.remote
    def env_and_square(x):
        return os.environ.get("CURATE_TEST_MARK"), x * x

    results = ray.get([env_and_square.remote(i) for i in range(4)])
    logs = os.path.join(node.get_session_dir_path(), "logs")
    raylet = open(os.path.join(logs, "raylet.out")).read()
    report = {
        "results": results,
        "processes": sorted(node.all_processes),
        "restored": ray._private.node.Node.start_api_server is original
        and ray._private.parameter.RayParams is params
        and ray._private.services.get_node is get_node,
        "mark_after": os.environ.get("CURATE_TEST_MARK"),
        "config": json.loads(node._config) if isinstance(node._config, str) else node._config,
        "minimal_agent": "Metrics agent not available" in raylet,
    }
    embedded_ray.stop(ray)
    report["initialized_after"] = ray.is_initialized()
    print("REPORT " + json.dumps(report))
    """
)


def test_embedded_ray_starts_without_dashboard_and_stops_cleanly():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("REPORT "))
    report = json.loads(line.removeprefix("REPORT "))
    # Tasks ran on workers that inherited the environment the start was given.
    assert report["results"] == [["seen", i * i] for i in range(4)]
    assert report["mark_after"] is None  # ... and the driver's own environment is restored
    assert "dashboard" not in report["processes"]  # no dashboard head process
    assert {"gcs_server", "raylet"} <= set(report["processes"])
    assert not {"monitor", "log_monitor"} & set(report["processes"])  # neither monitor started
    assert report["restored"]  # Ray's node class, params and node lookup are as they were
    assert report["minimal_agent"]  # the raylet did not wait for a full dashboard agent
    for name, value in embedded_ray.FAST_START_CONFIG.items():
        assert report["config"][name] == value
    assert report["initialized_after"] is False


def test_a_ray_without_the_private_node_record_starts_as_usual():
    """Where Ray keeps its node class elsewhere (another version), nothing is patched and
    `ray.init` is called as always."""
    calls = []
    fake = SimpleNamespace(init=lambda **kw: calls.append(kw), shutdown=lambda: calls.append("off"))
    embedded_ray.start(fake, 2)
    assert calls[0]["num_cpus"] == 2 and calls[0]["include_dashboard"] is False
    assert calls[0]["_system_config"] == embedded_ray.FAST_START_CONFIG
    calls[0]["_system_config"]["object_spilling_config"] = "this session's folder"  # as Ray does
    embedded_ray.stop(fake)
    assert calls[1] == "off"
    # Ray's additions to the config it was given do not leak into the next start.
    assert "object_spilling_config" not in embedded_ray.FAST_START_CONFIG


def test_the_dashboard_patch_is_undone_when_init_fails():
    class Node:
        def start_api_server(self, **_):
            return "original"

    utils = SimpleNamespace(get_dashboard_dependency_error=lambda: None)

    def failing_init(**_):
        assert Node().start_api_server() is None  # patched during init
        assert utils.get_dashboard_dependency_error()  # the agent is told to run minimal
        raise ConnectionError("no raylet")

    fake = SimpleNamespace(
        _private=SimpleNamespace(node=SimpleNamespace(Node=Node), utils=utils), init=failing_init
    )
    with pytest.raises(ConnectionError):
        embedded_ray.start(fake, 1)
    assert Node().start_api_server() == "original"
    assert utils.get_dashboard_dependency_error() is None


def test_the_node_wait_leaves_surprises_to_rays_own_lookup():
    """A GCS client that cannot be made (another Ray) ends the quick wait at once: Ray's own
    lookup then waits and reports as it always did."""

    def no_client(**_):
        raise TypeError("not this Ray's GcsClient")

    services = SimpleNamespace(GcsClient=no_client)
    started = time.monotonic()
    embedded_ray._wait_for_node(services, "127.0.0.1:1", "00" * 28)
    assert time.monotonic() - started < 1


def test_the_node_wait_polls_until_the_node_is_listed():
    answers = iter([{}, {}, {"node": "alive"}])
    calls = []

    class Client:
        def __init__(self, address):
            calls.append(address)

        def get_all_node_info(self, timeout, node_selectors, state_filter):
            calls.append((node_selectors, state_filter))
            return next(answers)

    selector = SimpleNamespace(NodeSelector=lambda node_id: ("selector", node_id))
    services = SimpleNamespace(
        GcsClient=Client,
        GetAllNodeInfoRequest=selector,
        NodeID=SimpleNamespace(from_hex=lambda h: SimpleNamespace(binary=lambda: h.encode())),
        GcsNodeInfo=SimpleNamespace(GcsNodeState=SimpleNamespace(ALIVE="ALIVE")),
    )
    embedded_ray._wait_for_node(services, "gcs:1", "ab")
    assert calls[0] == "gcs:1"
    assert calls[1:] == [([("selector", b"ab")], "ALIVE")] * 3  # polled until listed
