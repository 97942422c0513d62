"""A dry run's arithmetic: time, disk and memory per step from shard footers, and what won't fit."""

from __future__ import annotations

from dataclasses import dataclass, field

# Documents per second on one core, per plugin, from benchmarks/ on a 2-core machine over
# bench_100k (1,400-character median documents); scaled by text size below. Unknown plugins
# get DEFAULT_RATE. They are estimates: `curate plan` says so.
RATES: dict[str, float] = {
    "gopher_quality": 2500.0,
    "gopher_repetition": 1500.0,
    "c4_quality": 4000.0,
    "fineweb_quality": 4000.0,
    "fasttext_quality": 6000.0,
    "fasttext_langid": 8000.0,
    "perplexity": 2000.0,
    "minhash": 2500.0,
    "exact_dedup": 50000.0,
}
DEFAULT_RATE = 2000.0
REFERENCE_DOC_BYTES = 1400.0
# Bytes a global step keeps per surviving row: sidecar on disk and driver memory while deciding.
SIDECAR_BYTES = {
    "minhash": lambda p: 16 + 8 * int(p.get("bands") or 14),
    "exact_dedup": lambda p: 32,
}
KEYS_PER_ROW = {"minhash": lambda p: int(p.get("bands") or 14), "exact_dedup": lambda p: 1}


def dedup_driver_bytes(plugin: str, rows: int, params: dict) -> int:
    """The dedup driver's memory: a piece index of ~32 B per (work file, partition), for files
    of 2M keys and partitions of 4M keys (at most 1024), plus 64 MiB; never per duplicate."""
    keys = rows * KEYS_PER_ROW.get(plugin, lambda p: 1)(params)
    files = -(-keys // 2_000_000)
    partitions = min(1024, max(1, -(-keys // 4_000_000)))
    return 64 * 2**20 + files * partitions * 32


WORKER_BASE_BYTES = 300 * 2**20  # a Ray worker with pyarrow and the plugins imported


@dataclass(frozen=True)
class ShardFooter:
    """What a Parquet footer says about one shard."""

    uri: str
    rows: int
    file_bytes: int
    text_bytes: int  # uncompressed size of the text column


@dataclass
class StepEstimate:
    sid: str
    plugin: str
    seconds: float
    sidecar_bytes: int = 0
    driver_bytes: int = 0


@dataclass
class Plan:
    rows: int
    input_bytes: int
    cores: int
    steps: list[StepEstimate]
    output_bytes: int
    worker_bytes: int
    warnings: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def disk_bytes(self) -> int:
        return self.output_bytes + sum(s.sidecar_bytes for s in self.steps)

    @property
    def driver_bytes(self) -> int:
        return max((s.driver_bytes for s in self.steps), default=0)


def read_footer(uri: str, text_column: str) -> ShardFooter:
    """Row count, file size and text bytes of one Parquet shard, from its footer only."""
    import pyarrow.parquet as pq

    from curate.io import filesystem

    fs, path = filesystem(uri)
    size = fs.get_file_info(path).size or 0
    meta = pq.ParquetFile(fs.open_input_file(path)).metadata
    text = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            col = group.column(c)
            if col.path_in_schema == text_column:
                text += col.total_uncompressed_size
    return ShardFooter(uri, meta.num_rows, size, text)


def estimate(
    footers: list[ShardFooter],
    steps: list[tuple[str, str, dict]],
    cores: int,
    model_bytes: int = 0,
    batch_size: int = 2048,
    rates: dict[str, float] | None = None,
) -> Plan:
    """Per step: seconds on `cores` workers, sidecar disk and driver memory; output disk and
    worker memory. `steps` are (step id, plugin name, params). Every row is assumed to reach
    every step (an upper bound: filters only remove)."""
    rates = {**RATES, **(rates or {})}
    rows = sum(f.rows for f in footers)
    text = sum(f.text_bytes for f in footers)
    mean_doc = text / rows if rows else REFERENCE_DOC_BYTES
    scale = max(mean_doc / REFERENCE_DOC_BYTES, 0.05)
    cores = max(cores, 1)
    out: list[StepEstimate] = []
    score_columns = 0
    for sid, plugin, params in steps:
        rate = rates.get(plugin, DEFAULT_RATE) / scale
        est = StepEstimate(sid, plugin, rows / (rate * cores) if rows else 0.0)
        if plugin in SIDECAR_BYTES:
            est.sidecar_bytes = rows * SIDECAR_BYTES[plugin](params)
            est.driver_bytes = dedup_driver_bytes(plugin, rows, params)
        out.append(est)
        score_columns += 2
    input_bytes = sum(f.file_bytes for f in footers)
    # Kept + rejected hold every input row once, plus its scores (~8 bytes each, compressed
    # well); segment files between global steps hold the input once more while running.
    globals_ = sum(1 for _, p, _ in steps if p in SIDECAR_BYTES)
    output = int(input_bytes * (1 + globals_) + rows * score_columns * 4)
    worker = WORKER_BASE_BYTES + model_bytes + int(batch_size * mean_doc * 6)
    return Plan(rows, input_bytes, cores, out, output, worker)


def check_fit(plan: Plan, free_disk: int | None, free_memory: int | None) -> list[str]:
    """Warnings for a run that would not fit the disk or the memory it has."""
    warnings = []
    if free_disk is not None and plan.disk_bytes > free_disk:
        warnings.append(
            f"output and sidecars need about {human(plan.disk_bytes)} but the output's disk "
            f"has {human(free_disk)} free"
        )
    if free_memory is not None:
        need = plan.driver_bytes + plan.cores * plan.worker_bytes
        if need > free_memory:
            warnings.append(
                f"the dedup driver ({human(plan.driver_bytes)}) and {plan.cores} workers "
                f"({human(plan.worker_bytes)} each) need about {human(need)} but "
                f"{human(free_memory)} is available; use fewer workers or more memory"
            )
    return warnings


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
