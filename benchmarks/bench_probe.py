"""Seconds the setup probe adds to a run of the quickstart pipeline (3 models), cold and cached.

Baseline, measured in the same run: setting the same steps up in this process (what every
executor pays anyway), and a whole `curate run --executor local` of the quickstart. The probe is
timed with an empty cache (cold: one forked child per model step) and again with the cache it
wrote (cached: no child at all). Run from the repository root: python benchmarks/bench_probe.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIPELINE = REPO / "examples" / "quickstart" / "pipeline.yaml"


def _bound():
    from curate import runner
    from curate.config import load
    from curate.process import bind_steps

    os.chdir(REPO)
    config = runner._resolve_paths(load(PIPELINE))
    steps = bind_steps(config)
    return config, steps, runner._models(steps)


def _in_process_setup(config, steps, models) -> float:
    t0 = time.perf_counter()
    for step in steps:
        if step.sid in models:
            step.build(config.input.text_column).setup()
    return time.perf_counter() - t0


def main(repeats: int = 5) -> None:
    from curate import probe

    config, steps, models = _bound()
    text = config.input.text_column
    cold, cached, setup = [], [], []
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        for _ in range(repeats):
            probe.cache_path().unlink(missing_ok=True)
            cold.append(probe.check_setup(steps, text, models))
            cached.append(probe.check_setup(steps, text, models))
            setup.append(_in_process_setup(config, steps, models))
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "curate.cli",
                    "run",
                    str(PIPELINE),
                    "--executor",
                    "local",
                    "--output",
                    out,
                    "--overwrite",
                    "-q",
                ],
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                capture_output=True,
            )
            whole = time.perf_counter() - t0
    assert done.returncode == 0, done.stderr.decode()
    med = statistics.median
    print(f"model steps probed: {', '.join(models)} ({len(models)} models), {repeats} repeats")
    print(f"in-process setup of those steps (baseline): {med(setup):.3f}s")
    print(f"probe, cold cache:   {med(cold):.3f}s  ({med(cold) / med(setup):.1f}x the setup)")
    print(f"probe, cached:       {med(cached) * 1000:.2f}ms ({med(cached) / med(setup):.4f}x)")
    print(
        f"whole quickstart run --executor local (probe cached): {whole:.1f}s; a cold probe "
        f"would add {med(cold) / whole:.1%} of it"
    )


if __name__ == "__main__":
    main()
