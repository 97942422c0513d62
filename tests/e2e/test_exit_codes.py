"""Exit-code discipline through the real `curate` entry point: 0 done, 2 a problem named in one
sentence (no traceback unless --debug), 130/143 when interrupted, with the line that says how to
resume; user text is never read as rich markup; JUnit XML stays valid (issue 10, item 7)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from curate import cli, exits
from curate_tools.check import Report, Result, junit_xml
from tests.conftest import REPO, assert_accounted, read_ids, words, write_corpus

INTERRUPTED = "interrupted: rerun the same command to resume"


def _corpus(tmp_path: Path, shards: int = 3, rows: int = 8) -> Path:
    texts = [
        [words(6 + i % 4, i + 11 * s) + f" doc{s}x{i}" for i in range(rows)] for s in range(shards)
    ]
    return write_corpus(tmp_path / "in", texts, row_group_size=4)


def _config(tmp_path: Path, steps: list[dict] | None = None, **output) -> Path:
    data = {
        "input": {"path": str(_corpus(tmp_path)), "id_column": "id", "batch_size": 4},
        "output": {"path": str(tmp_path / "out"), **output},
        "steps": steps or [{"use": "tests.doubles:MinWords", "id": "words"}],
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def curate(*args: str, cwd: Path = REPO, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "curate.cli", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""},
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )


def assert_one_sentence(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    # Progress lines ("[curate] connecting to Ray at ...") may come first; the error is last.
    lines = [line for line in done.stderr.splitlines() if not line.startswith("[curate] ")]
    message = " ".join(" ".join(lines).split())  # rich may wrap a long line
    assert message.startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_failed_expectation_is_exit_1_and_a_passing_run_exit_0(tmp_path):
    conf = _config(tmp_path)
    expect = tmp_path / "expect.yaml"
    expect.write_text("min_documents: 1000000\n")
    assert curate("check", str(conf), "--expect", str(expect)).returncode == 1
    expect.write_text("min_documents: 1\n")
    assert curate("check", str(conf), "--expect", str(expect)).returncode == 0
    assert curate("run", str(conf), "--executor", "local", "-q").returncode == 0


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_unreachable_ray_address_is_a_sentence_in_seconds(tmp_path, address):
    t0 = time.perf_counter()
    done = curate("run", str(_config(tmp_path)), "--ray-address", address)
    assert_one_sentence(done, f"cannot reach the Ray cluster at {address}", "--ray-address")
    assert time.perf_counter() - t0 < 60  # ray.init alone retried for minutes


def test_a_set_value_that_is_not_yaml_is_a_sentence(tmp_path):
    done = curate("run", str(_config(tmp_path)), "--set", "x=[1")
    assert_one_sentence(done, "--set x=[1: the value is not valid YAML")


def test_a_config_that_is_not_utf8_is_a_sentence(tmp_path):
    conf = tmp_path / "latin1.yaml"
    conf.write_bytes("input: {path: caf\u00e9}\n".encode("latin-1"))
    assert_one_sentence(curate("run", str(conf)), f"{conf}: not UTF-8 text", "save the config as")


def test_an_unknown_compression_names_the_codecs(tmp_path):
    done = curate("run", str(_config(tmp_path, compression="zip")))
    assert_one_sentence(done, "output.compression", "unknown compression 'zip'", "zstd", "none")
    assert not (tmp_path / "out").exists()


def test_the_known_compressions_are_accepted(tmp_path):
    done = curate("run", str(_config(tmp_path, compression="NONE")), "--executor", "local", "-q")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "flag, fragment",
    [
        (["--progress", "fancy"], "--progress fancy: choose one of auto, live, plain"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_bad_option_values_exit_2(tmp_path, flag, fragment):
    done = curate("run", str(_config(tmp_path)), *flag)
    assert done.returncode == 2, done.stderr
    assert fragment in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_user_text_is_never_rich_markup(tmp_path):
    """A path holding `[/x]` crashed the error printer (a closing tag with no opening one)."""
    weird = tmp_path / "corpus [/x] [bold]"
    done = curate("run", str(_config(tmp_path)), "--input", str(weird), "--executor", "local")
    message = assert_one_sentence(done)
    assert str(weird) in message


def test_a_bug_is_one_line_and_debug_adds_the_traceback(tmp_path, monkeypatch, capsys):
    from curate import runner

    def bug(*args, **kwargs):
        raise ZeroDivisionError("division by zero in the runner")

    monkeypatch.setattr(runner, "run", bug)
    conf = str(_config(tmp_path))
    for argv, traceback in ((["run", conf], False), (["--debug", "run", conf], True)):
        monkeypatch.setattr(sys, "argv", ["curate", *argv])
        exits.set_debug(False)
        with pytest.raises(SystemExit) as info:
            cli.main()
        err = capsys.readouterr().err
        assert info.value.code == 2
        assert "error: internal error: ZeroDivisionError: division by zero in the runner" in err
        assert ("Traceback" in err) == traceback
        assert ("rerun with --debug" in err) != traceback
    exits.set_debug(False)


def test_junit_xml_strips_control_characters_xml_forbids():
    report = Report(
        status="error",
        results=[
            Result(
                kind="keep_rate",
                name="step \x01q\x1b[31m",
                passed=False,
                observed="0.1\x00",
                expected=">= 0.5",
                message="kept \x07 too few",
            )
        ],
        error="bad \x0c form feed",
    )
    text = junit_xml(report)
    root = ET.fromstring(text.encode("utf-8"))  # raised "not well-formed" before
    case = root.find("testsuite/testcase")
    assert case.get("name") == "step \ufffdq\ufffd[31m"
    assert "\ufffd too few" in case.find("failure").get("message")


# ------------------------------------------------------------------- interrupted mid-run
def _slow_config(tmp_path: Path) -> tuple[Path, Path]:
    started = tmp_path / "started"
    steps = [
        {"use": "tests.doubles:MinWords", "id": "words", "params": {"min_words": 7}},
        {
            "use": "tests.crash_doubles:SlowWords",
            "id": "slow",
            "params": {"seconds": 0.4, "started": str(started)},
        },
    ]
    conf = _config(tmp_path, steps)
    data = yaml.safe_load(conf.read_text())
    data["input"]["unit_rows"] = 4  # many small units: the run is interrupted between some
    conf.write_text(yaml.safe_dump(data))
    return conf, started


def _interrupt(conf: Path, started: Path, sig: int, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.Popen(
        [sys.executable, "-m", "curate.cli", "run", str(conf), "--progress", "plain", *extra],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "RAY_ADDRESS": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started.exists(), proc.communicate(timeout=60)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_local_run_says_how_to_resume_and_does(tmp_path, sig, code):
    conf, started = _slow_config(tmp_path)
    done = _interrupt(conf, started, sig, "--executor", "local")
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
    resumed = curate("run", str(conf), "--executor", "local", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert_accounted(read_ids(tmp_path / "in"), tmp_path / "out")


@pytest.mark.ray
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_ray_run_exits_130_or_143_and_shuts_ray_down(tmp_path, sig, code):
    """On its own embedded Ray (one worker): Ray's SIGTERM handler must not turn it into exit 1."""
    conf, started = _slow_config(tmp_path)
    done = _interrupt(conf, started, sig, "--workers", "1")
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines()[-1] == INTERRUPTED
    assert "Traceback" not in done.stderr
