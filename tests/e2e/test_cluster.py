"""A real two-node Ray cluster on loopback: `ray job submit` of `curate run`, shipped models and
plugins, a missing plugin, and the second node removed mid-run.

The cluster is two `ray start --block` process groups (own temp dirs, ports, token and
resources), stopped by killing those groups, never by `ray stop` (which would stop every Ray on
the machine). Ray would advertise this machine's network address; the loopback-only settings
(`RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` everywhere, the second node's address pinned) keep every
socket on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, assert_accounted, read_ids, words, write_corpus

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent
RAY = BIN / "ray"
MODELS = REPO / "examples" / "quickstart" / "models"
QUICKSTART = REPO / "examples" / "quickstart" / "data"

# A second node on this machine must advertise 127.0.0.1; Ray's own check refuses that unless
# told this is a one-machine cluster, which in turn refuses worker nodes: pin both.
NODE_LAUNCHER = textwrap.dedent(
    """
    import sys
    from ray._private import ray_constants, services
    ray_constants.ENABLE_RAY_CLUSTER = True
    services.get_node_ip_address = lambda address=None: "127.0.0.1"
    from ray.scripts.scripts import main
    sys.argv = ["ray", *sys.argv[1:]]
    main()
    """
)

PROBE = textwrap.dedent(
    '''
    """Test plugins shipped to the workers in the job's working_dir."""
    import json, os, tempfile, time
    import pyarrow as pa, pyarrow.compute as pc
    from pydantic import Field
    from curate.filter import Filter, ModelPath, Params

    class ModelProbe(Filter):
        """Records which model path each worker opened; drops nothing."""
        class Params(Params):
            model: ModelPath = Field(description="any file")
            report: str = Field("", description="folder for one JSON per worker")
            sleep: float = Field(0.0, description="seconds per batch")
        def setup(self):
            with open(self.params.model, "rb") as f:
                digest = __import__("hashlib").sha256(f.read()).hexdigest()
            if self.params.report:
                import ray
                node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
                with open(os.path.join(self.params.report, f"{os.getpid()}.json"), "w") as f:
                    json.dump({"node": node, "path": self.params.model, "sha256": digest,
                               "tmp": tempfile.gettempdir()}, f)
        def score(self, batch):
            if batch.num_rows and self.params.sleep:
                time.sleep(self.params.sleep)
            return {"len": pc.utf8_length(self.text(batch)).cast(pa.int64())}
        def keep(self, scores):
            return pc.greater(scores["len"], 0)
    '''
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """Head + one worker node, each a `ray start --block` process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port, self.dash = _free_port(), _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dashboard = f"http://127.0.0.1:{self.dash}"
        self.node_tmp = root / "node2-tmp"  # the worker node's TMPDIR: its model cache
        self.node_tmp.mkdir()
        self.env = {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3",
            "RAY_ADDRESS": "",
        }
        self.procs: list[subprocess.Popen] = []

    def _start(self, argv: list[str], log: str, env: dict[str, str]) -> subprocess.Popen:
        out = open(self.root / log, "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def _common(self, temp: str, cpus: int) -> list[str]:
        lo = 20000 + (self.port % 200) * 100  # worker port ranges apart per node
        base = lo + (50 if temp.endswith("n") else 0)
        return [
            "--node-ip-address=127.0.0.1",
            f"--num-cpus={cpus}",
            f"--temp-dir={self.root / temp}",
            "--object-store-memory=150000000",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--min-worker-port={base}",
            f"--max-worker-port={base + 49}",
            "--disable-usage-stats",
            "--block",
        ]

    def start(self) -> None:
        self._start(
            [
                str(RAY),
                "start",
                "--head",
                f"--port={self.port}",
                "--dashboard-host=127.0.0.1",
                f"--dashboard-port={self.dash}",
                f"--ray-client-server-port={_free_port()}",
                *self._common("h", 2),
            ],
            "head.log",
            self.env,
        )
        self._wait_nodes(1, 120)
        self._start(
            [
                sys.executable,
                "-c",
                NODE_LAUNCHER,
                "start",
                f"--address={self.address}",
                '--resources={"node2": 1}',
                *self._common("n", 1),
            ],
            "node.log",
            {**self.env, "TMPDIR": str(self.node_tmp)},
        )
        self._wait_nodes(2, 120)

    def nodes(self) -> list[dict]:
        req = urllib.request.Request(
            f"{self.dashboard}/api/v0/nodes",
            headers={"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"},
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)["data"]["result"]["result"]

    def _wait_nodes(self, n: int, timeout: float) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in self.procs:
                assert proc.poll() is None, f"a ray node exited; see {self.root}/*.log"
            try:
                if sum(x["state"] == "ALIVE" for x in self.nodes()) >= n:
                    return
            except OSError:
                pass
            time.sleep(1)
        raise AssertionError(f"{n} Ray nodes not alive after {timeout}s; see {self.root}/*.log")

    def kill_node(self) -> None:
        os.killpg(self.procs[1].pid, signal.SIGKILL)
        self.procs[1].wait()

    def submit(self, workdir: Path, *args: str, timeout: float = 240) -> subprocess.Popen:
        return subprocess.Popen(
            [
                str(RAY),
                "job",
                "submit",
                f"--address={self.dashboard}",
                f"--working-dir={workdir}",
                "--",
                *args,
            ],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.time() + 10
        for proc in reversed(self.procs):
            try:
                proc.wait(max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pass
            try:  # raylets and workers left in the group after the grace period
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    if not RAY.exists():
        pytest.skip(f"the ray CLI is not installed next to {sys.executable}")
    # Unix socket paths under the temp dir must stay short.
    root = Path(tempfile.mkdtemp(prefix="cur-", dir="/tmp"))
    c = Cluster(root)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)


def _job(cluster: Cluster, workdir: Path, *args: str, timeout: float = 300) -> tuple[int, str]:
    proc = cluster.submit(workdir, *args)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"job did not end in {timeout}s:\n{out[-3000:]}") from None
    return proc.returncode, out


def _local(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(workdir), "RAY_ADDRESS": ""}
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", *args, "--quiet", "--executor", "local"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def _workdir(tmp: Path, steps: list[dict], inp: Path, out: Path, plugin: bool = True) -> Path:
    wd = tmp / "job"
    (wd / "models").mkdir(parents=True)
    (wd / "models" / "probe.bin").write_bytes(os.urandom(1 << 16))
    if plugin:
        (wd / "probe.py").write_text(PROBE)
    config = {
        "input": {"path": str(inp), "id_column": "id", "batch_size": 64},
        "output": {"path": str(out)},
        "steps": steps,
    }
    (wd / "pipeline.yaml").write_text(yaml.safe_dump(config))
    return wd


def test_submitted_job_equals_local_run_and_workers_use_shipped_models(cluster, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    steps = [
        {
            "use": "fasttext_langid",
            "id": "lang",
            "params": {"model": str(MODELS / "lid.ftz"), "languages": ["en"], "min_score": 0.5},
        },
        {"use": "gopher_quality"},
        {
            "use": "fasttext_quality",
            "id": "quality",
            "params": {"model": str(MODELS / "quality.ftz"), "label": "hq", "min_prob": 0.2},
        },
        {
            "use": "perplexity",
            "id": "ppl",
            "params": {"backend": "kenlm", "model": str(MODELS / "lm.binary")},
        },
        # A plugin that lives only in the job's working_dir, with a model given by a path
        # relative to it: the workers get both from Ray, not from this disk's layout.
        {
            "use": "probe:ModelProbe",
            "id": "probe",
            "params": {"model": "models/probe.bin", "report": str(reports)},
        },
        {"use": "minhash", "params": {"num_perm": 112, "bands": 14, "rows": 8, "ngram": 5}},
    ]
    out = tmp_path / "cluster-out"
    wd = _workdir(tmp_path, steps, QUICKSTART, out)
    code, log = _job(
        cluster, wd, "curate", "run", "pipeline.yaml", "--ray-address", "auto", "--workers", "2"
    )
    assert code == 0, log[-4000:]
    assert "succeeded" in log
    ref = _local(wd, "pipeline.yaml", "--output", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert files(out) == files(tmp_path / "ref")
    assert_accounted(read_ids(QUICKSTART), out)

    digest = hashlib.sha256((wd / "models" / "probe.bin").read_bytes()).hexdigest()
    seen = [json.loads(p.read_text()) for p in reports.glob("*.json")]
    cluster_seen = [s for s in seen if s["node"]]  # the local reference run records no node
    assert len({s["node"] for s in cluster_seen}) == 2, seen  # both nodes ran units
    for s in cluster_seen:
        # The worker opened the copy materialised from the object store and verified by sha256,
        # in its own node's temp folder, not the driver's path.
        assert s["sha256"] == digest
        assert Path(s["path"]).parent.name == digest
        assert Path(s["path"]).parent.parent.name == "curate-models"
        assert s["path"].startswith(s["tmp"])
    assert any(s["tmp"] == str(cluster.node_tmp) for s in cluster_seen)


def test_a_worker_without_the_plugin_fails_with_a_clear_error(cluster, tmp_path):
    plugdir = tmp_path / "driver-only"
    plugdir.mkdir()
    (plugdir / "probe.py").write_text(PROBE)
    steps = [{"use": "probe:ModelProbe", "id": "probe", "params": {"model": "models/probe.bin"}}]
    inp = write_corpus(tmp_path / "in", [[words(8, i) for i in range(6)]])
    wd = _workdir(tmp_path, steps, inp, tmp_path / "out", plugin=False)
    # The driver can import the plugin; the workers (only the working_dir) cannot.
    code, log = _job(
        cluster,
        wd,
        "env",
        f"PYTHONPATH={plugdir}",
        "curate",
        "run",
        "pipeline.yaml",
        "--ray-address",
        "auto",
        timeout=180,
    )
    assert code != 0
    flat = " ".join(log.split())
    assert "step 'probe'" in flat and "cannot be imported on a Ray worker" in flat, log[-3000:]
    assert "runtime_env" in flat
    assert not (tmp_path / "out" / "data").exists() or not list(
        (tmp_path / "out" / "data").iterdir()
    )


def test_second_node_removed_mid_run_gives_identical_output(cluster, tmp_path):
    """Runs last in this module: the cluster has one node afterwards."""
    shards = [[words(6 + (i * 5 + s) % 7, i + s) for i in range(8)] for s in range(8)]
    inp = write_corpus(tmp_path / "in", shards, row_group_size=4)
    steps = [
        {"use": "probe:ModelProbe", "id": "slow", "params": {"model": "models/probe.bin"}},
        {"use": "exact_dedup"},
    ]
    out = tmp_path / "out"
    wd = _workdir(tmp_path, steps, inp, out)
    config = yaml.safe_load((wd / "pipeline.yaml").read_text())
    config["input"]["batch_size"] = 2
    config["steps"][0]["params"]["sleep"] = 0.4
    (wd / "pipeline.yaml").write_text(yaml.safe_dump(config))
    proc = cluster.submit(
        wd, "curate", "run", "pipeline.yaml", "--ray-address", "auto", "--workers", "2"
    )
    try:
        deadline = time.time() + 180
        while time.time() < deadline and not list((out / "_manifest").glob("s0-*.json")):
            assert proc.poll() is None, proc.stdout.read()[-3000:]
            time.sleep(0.2)
        assert len(list((out / "_manifest").glob("s0-*.json"))) < 8
        cluster.kill_node()  # its actor dies mid-unit; Ray restarts it on the head
        log, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log[-4000:]
    alive = [n for n in cluster.nodes() if n["state"] == "ALIVE"]
    assert len(alive) == 1
    ref = _local(wd, "pipeline.yaml", "--output", str(tmp_path / "ref"))
    assert ref.returncode == 0, ref.stderr
    assert files(out) == files(tmp_path / "ref")
    assert_accounted(read_ids(inp), out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["total"]["consistent"]
