"""One GPU step in the quickstart pipeline: the actor layout and the run time of a pool per
resource class (unit actors + a GPU pool) against the old layout (every actor runs every step
and so reserves the GPU step's GPU), on the same local Ray, alternating, in one run.

Run: python benchmarks/bench_gpu_pool.py [--repeat 3] [--rounds 3] [--gpus 1] [--lm-cpus 1]
Needs torch + transformers (pip install -e '.[torch]'): the GPU step is the `perplexity` step's
hf backend with a small GPT-2 built from the sample (curate.testing.tiny_causal_lm), run on the
CPU with `resources: {gpus: 1}`; the GPU is Ray's logical one, so what is measured is the layout,
not a GPU. The corpus is the shipped sample (examples/quickstart/data) linked `--repeat` times
under new names. Each run is timed whole (actors started, models loaded, output written); Ray
starts once, outside the timings. Kept and rejected files must be byte-identical across layouts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from unittest import mock

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "quickstart" / "data"


def corpus(folder: Path, repeat: int) -> Path:
    folder.mkdir(parents=True)
    for r in range(repeat):
        for shard in sorted(SAMPLE.glob("*.parquet")):
            os.symlink(shard, folder / f"r{r}-{shard.name}")
    return folder


def pipeline(inp: Path, model: str, lm_cpus: float) -> dict:
    data = yaml.safe_load((REPO / "examples" / "quickstart" / "pipeline.yaml").read_text())
    data["input"]["path"] = str(inp)
    data["input"]["id_column"] = None  # the sample's ids repeat across the linked copies
    for step in data["steps"]:
        for key, value in step.get("params", {}).items():
            if isinstance(value, str) and value.startswith("examples/"):
                step["params"][key] = str(REPO / value)
    lm = {
        "use": "perplexity",
        "id": "lm",
        "resources": {"gpus": 1, "cpus": lm_cpus},
        "params": {"backend": "hf", "model": model, "device": "cpu", "max_tokens": 256},
    }
    data["steps"].insert(len(data["steps"]) - 1, lm)  # before minhash, after the filters
    data["executor"] = "ray"
    return data


def files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for sub in ("data", "rejected")
        for p in sorted((out / sub).glob("*.parquet"))
    }


def run_once(data: dict, out: Path, layout: str, gpus: int) -> tuple[float, dict]:
    from curate import config as cfg
    from curate import runner, stages

    # The old layout fits as many workers as there are GPUs (each reserves one): what its
    # users had to pass as --workers.
    ray = {"workers": gpus} if layout == "old" else {}
    config = cfg.load(base={**data, "output": {"path": str(out)}, "ray": ray})
    t0 = time.perf_counter()
    if layout == "old":  # no pool of its own: the GPU step stays in every actor's chain
        with mock.patch.object(stages, "offloaded", lambda steps, reused=None: []):
            result = runner.run(config, progress="quiet")
    else:
        result = runner.run(config, progress="quiet")
    return time.perf_counter() - t0, result.stats["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of the 904-doc sample")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--gpus", type=int, default=1, help="Ray's logical GPUs")
    parser.add_argument(
        "--lm-cpus",
        type=float,
        default=1.0,
        help="CPUs the GPU step's actor reserves (its declared 1; on a real GPU it needs little)",
    )
    args = parser.parse_args()

    import pyarrow.parquet as pq
    import ray

    from curate.testing import tiny_causal_lm

    work = Path(tempfile.mkdtemp(prefix="bench-gpu-pool-"))
    inp = corpus(work / "in", args.repeat)
    texts = pq.read_table(SAMPLE, columns=["text"]).column("text").to_pylist()
    model = tiny_causal_lm(work / "lm", texts, n_positions=256, n_embd=64)
    data = pipeline(inp, model, args.lm_cpus)
    docs = 904 * args.repeat
    ray.init(num_cpus=args.cpus, num_gpus=args.gpus, include_dashboard=False, log_to_driver=False)
    times: dict[str, list[float]] = {"old": [], "pools": []}
    layouts: dict[str, dict] = {}
    outputs: dict[str, dict[str, bytes]] = {}
    for r in range(args.rounds):
        for layout in ("old", "pools") if r % 2 == 0 else ("pools", "old"):
            out = work / f"out-{layout}-{r}"
            seconds, total = run_once(data, out, layout, args.gpus)
            times[layout].append(seconds)
            layouts[layout] = total.get("actors", {})
            got = files(out)
            assert outputs.setdefault(layout, got) == got, f"{layout}: output changed between runs"
            print(f"round {r} {layout:5s}: {seconds:6.1f} s  {docs / seconds:7.0f} docs/s  "
                  f"actors {json.dumps(layouts[layout])}", flush=True)  # fmt: skip
    assert outputs["old"] == outputs["pools"], "the two layouts wrote different bytes"
    old, new = statistics.median(times["old"]), statistics.median(times["pools"])
    print(
        f"\n{docs} documents, Ray with {args.cpus} CPUs and {args.gpus} logical GPUs; "
        f"the GPU step reserves {args.lm_cpus:g} CPU + 1 GPU"
    )
    print(f"old layout (every actor reserves a GPU): {json.dumps(layouts['old'])}")
    print(f"pool per resource class:                 {json.dumps(layouts['pools'])}")
    print(f"median of {args.rounds}: old {old:.1f} s ({docs / old:.0f} docs/s), "
          f"pools {new:.1f} s ({docs / new:.0f} docs/s): {old / new:.2f}x; "
          "kept + rejected bytes identical")  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
