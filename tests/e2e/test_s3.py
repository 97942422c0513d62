"""Input and output on an S3-compatible store (moto's server on loopback): same bytes as a local
run, no rename on the store (files written in place, the manifest published last), and resume."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml
from typer.testing import CliRunner

from curate.cli import app
from tests.conftest import REPO, read_ids, words, write_corpus

pytestmark = pytest.mark.ray
cli = CliRunner()
BUCKET = "curate-test"

STEPS = [
    {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 6}},
    {"use": "tests.doubles:TextDedup", "id": "dedup"},
]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1, its bucket, and the AWS_* variables pointing at it."""
    pytest.importorskip("moto", reason="needs moto[server] (pip install -e '.[dev]')")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    out = open(log, "wb")  # noqa: SIM115 - closed in teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",  # never look for cloud credentials
        "CURATE_TEST_S3": endpoint,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        deadline = time.time() + 30
        while True:
            try:
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.3)
        yield {"endpoint": endpoint, "log": log}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        out.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _fs() -> pafs.FileSystem:
    host = os.environ["CURATE_TEST_S3"].split("://", 1)[1]
    return pafs.S3FileSystem(endpoint_override=host, scheme="http", region="us-east-1")


def _upload(folder: Path, prefix: str) -> str:
    fs = _fs()
    for p in sorted(folder.glob("*.parquet")):
        with fs.open_output_stream(f"{BUCKET}/{prefix}/{p.name}") as f:
            f.write(p.read_bytes())
    return f"s3://{BUCKET}/{prefix}"


def _s3_files(uri: str) -> dict[str, bytes]:
    """The kept and rejected objects the manifests publish, by their canonical names; and no
    other object in data/ or rejected/ (a failed attempt's keys are gone)."""
    import json
    import re

    fs = _fs()
    root = uri[len("s3://") :]
    found = {}
    published = set()
    for info in fs.get_file_info(pafs.FileSelector(f"{root}/_manifest", allow_not_found=True)):
        name = info.path.rsplit("/", 1)[-1]
        if not re.fullmatch(r"s\d+-part-\d{5}\.json", name):
            continue
        with fs.open_input_stream(info.path) as f:
            manifest = json.loads(f.read())
        kinds = ["rejected"] + (["data"] if manifest["final"] else [])
        for kind in kinds:
            if kind not in manifest["files"]:  # a unit writes no file it would leave empty
                continue
            key = manifest["files"][kind][len("s3://") :]
            published.add(key)
            with fs.open_input_stream(key) as f:
                found[re.sub(r"\.a[0-9a-f]{12}", "", key[len(root) + 1 :])] = f.read()
    for sub in ("data", "rejected"):
        for info in fs.get_file_info(pafs.FileSelector(f"{root}/{sub}", allow_not_found=True)):
            assert info.path in published, f"{info.path} is not named by any manifest"
    return found


def _local_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def _config(tmp_path: Path, inp: str, out: str, **extra) -> Path:
    data = {
        "input": {"path": inp, "id_column": "id", "batch_size": 4, "unit_rows": 6},
        "output": {"path": out},
        "steps": STEPS,
        **extra,
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _corpus(tmp_path: Path) -> Path:
    texts = [[words(4 + (i * 7 + s) % 9, i + s) for i in range(12)] for s in range(3)]
    texts[2][4] = texts[0][1]
    return write_corpus(tmp_path / "in", texts, row_group_size=3)


def test_s3_input_and_output_match_a_local_run_and_resume(s3, tmp_path):
    local_in = _corpus(tmp_path)
    inp = _upload(local_in, "raw")
    out = f"s3://{BUCKET}/curated/v1"
    conf = _config(tmp_path, inp, out)
    conf.write_text(conf.read_text().replace("output:", "output:\n  keep_intermediate: true"))
    result = cli.invoke(app, ["run", str(conf), "--executor", "local", "--quiet"])
    assert result.exit_code == 0, result.output
    ref = tmp_path / "ref"
    result = cli.invoke(
        app,
        ["run", str(conf), "--executor", "local", "--quiet", "--input", str(local_in)]
        + ["--output", str(ref)],
    )
    assert result.exit_code == 0, result.output
    assert _s3_files(out) == _local_files(ref)
    assert len(_local_files(ref)) >= 12

    # No rename on the store: no temporary object was ever written, nothing was copied.
    puts = [line for line in s3["log"].read_text().splitlines() if '"PUT ' in line]
    assert puts and not [line for line in puts if ".tmp" in line]

    # Resume trusts only manifests: as if the run died while unit 2 was written (an object of
    # its attempt there but half written, no manifest), the rerun redoes that unit alone, drops
    # the dead attempt's object, and the output is the same.
    fs = _fs()
    root = out[len("s3://") :]
    fs.delete_file(f"{root}/_manifest/s1-part-00002.json")
    with fs.open_output_stream(f"{root}/data/part-00002.a0123456789ab.parquet") as f:
        f.write(b"PAR1 half written")
    result = cli.invoke(app, ["run", str(conf), "--executor", "local"])
    assert result.exit_code == 0, result.output
    assert "resumed from a previous run" in result.output
    assert _s3_files(out) == _local_files(ref)
    kept = sorted(_s3_files(out))
    assert kept == sorted(_local_files(ref))
    assert sorted(read_ids(ref / "data") + read_ids(ref / "rejected")) == sorted(read_ids(local_in))


def test_s3_endpoint_from_the_config_on_ray(s3, tmp_path):
    """Ray workers get the endpoint from the config (storage.s3_endpoint_url); a fresh embedded
    Ray in a subprocess, so its workers see this test's credentials and nothing else."""
    local_in = _corpus(tmp_path)
    inp = _upload(local_in, "raw-ray")
    out = f"s3://{BUCKET}/curated/ray"
    conf = _config(tmp_path, inp, out, storage={"s3_endpoint_url": s3["endpoint"]})
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "RAY_ADDRESS")}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--quiet", "--workers", "2"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = tmp_path / "ref"
    result = cli.invoke(
        app,
        ["run", str(conf), "--executor", "local", "--quiet", "--input", str(local_in)]
        + ["--output", str(ref)],
    )
    assert result.exit_code == 0, result.output
    assert _s3_files(out) == _local_files(ref)
