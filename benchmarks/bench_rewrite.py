"""Issue 14's steps: docs/s on bench_100k against same-run baselines, PII and decontamination
recall / false positives.

Run: python benchmarks/bench_rewrite.py [--shared ../shared/data] [--docs 100000]
Needs faker (the dev extra) for the PII recall part. One process, one core for every figure.

Throughput, each step as the runner calls it (batches of 2,048 rows, no output writing, the
same for step and baseline):
- c4_lines vs the `c4_quality` filter: the same line rules, scored only; the ratio is what
  rewriting costs.
- pii vs the same redaction applied to every document (no Arrow regex screening first): the
  outputs must be identical; the ratio is what the screening buys.
- decontaminate vs a plain Python loop (regex normalisation, a set of 13-gram tuples).
- url_filter vs a plain loop (urllib.parse + suffix lookups + re.split), on URLs from the
  near_dup set repeated to the corpus size (bench_100k has no URLs).
- line_dedup vs exact_dedup, both driven as the runner would (signatures per batch, `decide`
  in process through the same shuffle), line_dedup also rewriting every batch.

Quality:
- PII recall: Faker values (emails, en_US phones, cards of every issuer, IBANs of 6 countries
  with and without spaces, public IPv4, global IPv6) put one per document into a sentence
  inside a real Wikipedia lead; found = the value is gone from the output. False positives:
  documents of ../shared/data/high_quality with any redaction (an upper bound: PEP author
  emails are real PII), by kind and source.
- Decontamination: 1,000 Wikipedia leads as the eval set; 2,000 bench_100k documents get a
  passage (verbatim, re-wrapped, lower-cased, re-punctuated, or a 40-60% part of at least 20
  words); recall = injected documents dropped; false positives = other bench_100k documents
  dropped (unrelated text), and held-out Wikipedia leads dropped (same domain).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._compare import needs_shared  # noqa: E402
from benchmarks._drive import in_process_map, write_sidecars  # noqa: E402
from curate.io import ROW_ID  # noqa: E402
from curate_filters.c4_lines import C4Lines  # noqa: E402
from curate_filters.decontaminate import Decontaminate  # noqa: E402
from curate_filters.dedup.exact import ExactDedup  # noqa: E402
from curate_filters.dedup.line_dedup import LineDedup  # noqa: E402
from curate_filters.heuristics import C4Quality  # noqa: E402
from curate_filters.pii import PII  # noqa: E402
from curate_filters.url_filter import URLFilter, read_list  # noqa: E402

BATCH = 2048


def batches(table: pa.Table):
    return [table.slice(i, BATCH) for i in range(0, table.num_rows, BATCH)]


def rate(fn, table: pa.Table) -> tuple[float, list]:
    start = time.perf_counter()
    out = [fn(b) for b in batches(table)]
    return table.num_rows / (time.perf_counter() - start), out


def line(name: str, step_rate: float, base_name: str, base_rate: float) -> None:
    print(
        f"  {name:<14} {step_rate:>9,.0f} docs/s   {base_name:<34} {base_rate:>9,.0f} docs/s"
        f"   ratio {step_rate / base_rate:5.2f}x"
    )


# ----------------------------------------------------------------------------- throughput
def bench_c4(corpus: pa.Table) -> None:
    mapper, filt = C4Lines(), C4Quality()
    r_map, _ = rate(mapper.map, corpus)
    r_filter, _ = rate(filt.score, corpus)
    line("c4_lines", r_map, "c4_quality (score only)", r_filter)


def bench_pii(corpus: pa.Table) -> None:
    step = PII()
    step.setup()
    r_step, out = rate(step.map, corpus)

    def every_doc(batch: pa.Table) -> list[str]:
        return [step.redact(t)[0] for t in batch["text"].to_pylist()]

    r_base, base = rate(every_doc, corpus)
    ours = [t for r in out for t in r.text.to_pylist()]
    assert ours == [t for b in base for t in b], "screening changed the output"
    changed = sum(int(np.count_nonzero(np.asarray(r.changes))) for r in out)
    line("pii", r_step, "redact() on every doc", r_base)
    print(f"  {'':<14} identical output; {changed:,} of {corpus.num_rows:,} documents redacted")


_WORD = re.compile(r"[^\W_]+")


def naive_grams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(max(len(words) - n + 1, 1))} if words else set()


def bench_decontaminate(corpus: pa.Table, eval_path: str, eval_texts: list[str]) -> None:
    step = Decontaminate(Decontaminate.Params(eval_sets=[eval_path]))
    start = time.perf_counter()
    step.setup()
    setup_s = time.perf_counter() - start
    r_step, out = rate(step.score, corpus)
    index = set().union(*(naive_grams(t, 13) for t in eval_texts))

    def loop(batch: pa.Table) -> list[bool]:
        return [bool(naive_grams(t, 13) & index) for t in batch["text"].to_pylist()]

    r_base, base = rate(loop, corpus)
    ours = np.concatenate([np.asarray(step.keep(s)) == 0 for s in out])
    theirs = np.concatenate([np.asarray(b) for b in base])
    line("decontaminate", r_step, "python set of 13-gram tuples", r_base)
    print(
        f"  {'':<14} index of {len(step._hashes):,} n-grams built in {setup_s:.2f}s; "
        f"flags {int(ours.sum())} vs loop {int(theirs.sum())}, agree on "
        f"{(ours == theirs).mean():.4%} of documents"
    )


def bench_url(shared: Path, n: int) -> None:
    urls = pq.read_table(shared / "near_dup" / "synthetic_web_neardups.parquet", columns=["url"])
    urls = urls["url"].combine_chunks().drop_null()
    take = np.arange(n) % len(urls)
    # Every 50th URL gets a blocked host or a banned word, so both paths are exercised.
    values = urls.take(pa.array(take)).to_pylist()
    for i in range(0, n, 100):
        values[i] = f"https://cdn{i}.pornhub.com/v/{i}"
        if i + 50 < n:
            values[i + 50] = f"https://example{i}.org/free-porn-{i}.html"
    table = pa.table({"url": pa.array(values, pa.string())})
    step = URLFilter()
    step.setup()
    r_step, out = rate(lambda b: step.keep(step.score(b)), table)
    domains = set(read_list(step.params.domain_lists[0]))
    banned = set(read_list(step.params.word_lists[0]))

    def loop(batch: pa.Table) -> list[bool]:
        keep = []
        for url in batch["url"].to_pylist():
            host = (
                urllib.parse.urlsplit(url if "//" in url else "//" + url).hostname or ""
            ).lower()
            labels = host.split(".")
            blocked = any(".".join(labels[k:]) in domains for k in range(len(labels)))
            blocked = blocked or any(w in banned for w in re.split(r"[^a-z0-9]+", url.lower()))
            keep.append(not blocked)
        return keep

    r_base, base = rate(loop, table)
    ours = np.concatenate([np.asarray(k) for k in out])
    theirs = np.concatenate([np.asarray(b) for b in base])
    line("url_filter", r_step, "urlsplit + suffix set, per URL", r_base)
    agree = (ours == theirs).mean()
    print(f"  {'':<14} drops {int((~ours).sum()):,}; agrees with the loop on {agree:.4%}")


def bench_line_dedup(tables: list[pa.Table]) -> None:
    n = sum(t.num_rows for t in tables)
    results = {}
    for name, step in (("line_dedup", LineDedup()), ("exact_dedup", ExactDedup())):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            sidecars = [write_sidecars(step, i, t, f"{tmp}/sc", 4096) for i, t in enumerate(tables)]
            decision = step.decide(sidecars, in_process_map, f"{tmp}/work")
            if name == "line_dedup":  # the next segment's rewrite, batch by batch
                changed = lines = 0
                for i, t in enumerate(tables):
                    rows = pa.array((i << 40) + np.arange(t.num_rows), pa.int64())
                    t = t.append_column(ROW_ID, rows)
                    for b in batches(t):
                        changes = np.asarray(step.rewrite(b, decision).changes)
                        changed += int(np.count_nonzero(changes))
                        lines += int(changes.sum())
                extra = f"{changed:,} documents lose {lines:,} repeated lines"
            else:
                extra = f"{int(pc.sum(decision['drop']).as_py() or 0):,} duplicates dropped"
            results[name] = (n / (time.perf_counter() - start), extra)
    line(
        "line_dedup",
        results["line_dedup"][0],
        "exact_dedup (same shuffle)",
        results["exact_dedup"][0],
    )
    print(f"  {'':<14} {results['line_dedup'][1]}; exact_dedup: {results['exact_dedup'][1]}")


# ----------------------------------------------------------------------------- PII quality
def pii_values(fake, kind: str, rng: random.Random) -> str:
    import ipaddress

    if kind == "email":
        return fake.email() if rng.random() < 0.5 else fake.company_email()
    if kind == "phone":
        return fake.phone_number()
    if kind == "card":
        return fake.credit_card_number()
    if kind == "iban":
        from faker import Faker

        value = Faker(rng.choice(["de_DE", "fr_FR", "nl_NL", "es_ES", "it_IT", "en_GB"])).iban()
        return (
            " ".join(value[i : i + 4] for i in range(0, len(value), 4))
            if rng.random() < 0.5
            else value
        )
    if kind == "ipv4":
        return fake.ipv4_public()
    while True:
        value = fake.ipv6()
        if ipaddress.ip_address(value).is_global:
            return value


TEMPLATES = {
    "email": ["Contact {} for details.", "Send your comments to {}.", "({})"],
    "phone": ["Call {} for tickets.", "The office number is {}.", "Phone: {}.", "reach us at {}"],
    "card": ["Card number {} was charged.", "Paid with {}.", "cc {}"],
    "iban": ["Transfer to {} today.", "IBAN: {}.", "Account {}"],
    "ipv4": ["The request came from {}.", "Server {} is down.", "ip={}"],
    "ipv6": ["Connect to {} over IPv6.", "Address {} responded.", "[{}]"],
}


def bench_pii_quality(shared: Path, n: int = 3000) -> None:
    try:
        from faker import Faker
    except ImportError:
        print("  (faker is not installed: pip install -e '.[dev]' for the PII recall figures)")
        return
    fake = Faker("en_US")
    fake.seed_instance(14)
    Faker.seed(14)
    rng = random.Random(14)
    hosts = pq.read_table(shared / "high_quality" / "wikipedia_vital_summaries_en.parquet")
    hosts = hosts["text"].to_pylist()[:n]
    kinds = list(TEMPLATES)
    texts, injected = [], []
    for i, host in enumerate(hosts):
        kind = kinds[i % len(kinds)]
        value = pii_values(fake, kind, rng)
        sentence = rng.choice(TEMPLATES[kind]).format(value)
        cut = host.find(". ", len(host) // 2)
        cut = cut + 2 if cut > 0 else len(host)
        texts.append(host[:cut] + sentence + " " + host[cut:])
        injected.append((kind, value))
    step = PII()
    step.setup()
    out = step.map(pa.table({"text": texts})).text.to_pylist()
    found: dict[str, list[bool]] = {}
    missed = []
    for (kind, value), text in zip(injected, out, strict=True):
        ok = value not in text
        found.setdefault(kind, []).append(ok)
        if not ok:
            missed.append((kind, value))
    total = sum(sum(v) for v in found.values()) / len(injected)
    per_kind = ", ".join(f"{k} {np.mean(v):.3f}" for k, v in found.items())
    print(f"  PII recall {total:.4f} on {len(injected):,} injected values ({per_kind})")
    print(f"  missed (first 8): {missed[:8]}")
    docs = 0
    flagged: dict[str, int] = {}
    by_source: dict[str, tuple[int, int]] = {}
    examples = []
    for path in sorted((shared / "high_quality").glob("*.parquet")):
        table = pq.read_table(path, columns=["text"])
        result = step.map(table)
        counts = {k: np.asarray(v) for k, v in result.scores.items()}
        any_hit = np.asarray(result.changes) > 0
        docs += table.num_rows
        by_source[path.stem] = (int(any_hit.sum()), table.num_rows)
        for kind, c in counts.items():
            flagged[kind] = flagged.get(kind, 0) + int((c > 0).sum())
        non_email = (counts["iban"] + counts["card"] + counts["ip"] + counts["phone"]) > 0
        flagged["docs_non_email"] = flagged.get("docs_non_email", 0) + int(non_email.sum())
        for i in np.flatnonzero(counts["email"] > 0):
            spans = [sp for sp in step.redact(table["text"][int(i)].as_py())[1] if sp[2] == "email"]
            placeholder = all(re.search(r"@example\.(com|org|net)$", sp[3]) for sp in spans)
            flagged["docs_email_example_domains_only"] = (
                flagged.get("docs_email_example_domains_only", 0) + placeholder
            )
        for i in np.flatnonzero(non_email)[:3]:
            text, spans = step.redact(table["text"][int(i)].as_py())
            examples += [(path.stem, s[2], s[3]) for s in spans[:2]]
    hit_docs = sum(h for h, _ in by_source.values())
    print(
        f"  high_quality: {hit_docs} of {docs:,} documents ({hit_docs / docs:.3%}) have a "
        f"redaction; documents per kind: {flagged}"
    )
    ne = flagged["docs_non_email"]
    print(f"  documents with a non-email redaction: {ne} ({ne / docs:.3%})")
    print("  per source (docs with a redaction / docs): " + json.dumps(by_source))
    print(f"  non-email redactions (examples): {examples[:12]}")


# ----------------------------------------------------------------------------- decontamination
def rewrap(words: list[str], rng: random.Random) -> str:
    out, i = [], 0
    while i < len(words):
        k = rng.randint(4, 12)
        out.append(" ".join(words[i : i + k]))
        i += k
    return "\n".join(out)


def variant(item: str, kind: str, rng: random.Random) -> str:
    words = item.split()
    if kind == "verbatim":
        return item
    if kind == "rewrapped":
        return rewrap(words, rng)
    if kind == "lowercased":
        return item.lower()
    if kind == "repunctuated":
        return re.sub(r"[,.;:()\"']", lambda m: rng.choice([" ", " - ", "", " ; "]), item).upper()
    size = max(20, int(len(words) * rng.uniform(0.4, 0.6)))
    start = rng.randint(0, max(0, len(words) - size))
    return " ".join(words[start : start + size])


def bench_decontamination_quality(corpus: pa.Table, shared: Path, eval_path: str, items) -> None:
    rng = random.Random(14)
    kinds = ["verbatim", "rewrapped", "lowercased", "repunctuated", "partial"]
    texts = corpus["text"].to_pylist()
    n_inject = 2000
    chosen = rng.sample(range(len(texts)), n_inject)
    kind_of = {}
    for j, row in enumerate(chosen):
        item = items[rng.randrange(len(items))]
        if len(item.split()) < 20:
            item = items[0]
        kind = kinds[j % len(kinds)]
        doc = texts[row]
        cut = doc.find("\n", len(doc) // 2)
        cut = cut if cut > 0 else len(doc)
        texts[row] = doc[:cut] + "\n" + variant(item, kind, rng) + "\n" + doc[cut:]
        kind_of[row] = kind
    step = Decontaminate(Decontaminate.Params(eval_sets=[eval_path]))
    step.setup()
    table = pa.table({"text": texts})
    dropped = np.concatenate([~np.asarray(step.keep(step.score(b))) for b in batches(table)])
    injected = np.zeros(len(texts), bool)
    injected[chosen] = True
    recall = dropped[injected].mean()
    per_kind = {k: np.mean([dropped[r] for r, v in kind_of.items() if v == k]) for k in kinds}
    fp = int(dropped[~injected].sum())
    print(
        f"  recall {recall:.4f} on {n_inject:,} injected passages "
        f"({', '.join(f'{k} {v:.3f}' for k, v in per_kind.items())})"
    )
    print(
        f"  false positives on bench_100k: {fp} of {int((~injected).sum()):,} "
        f"({fp / max(1, (~injected).sum()):.2e})"
    )
    wiki = pq.read_table(shared / "high_quality" / "wikipedia_vital_summaries_en.parquet")
    held_out = wiki.slice(len(items))
    dropped = np.concatenate([~np.asarray(step.keep(step.score(b))) for b in batches(held_out)])
    print(
        f"  false positives on {held_out.num_rows:,} held-out Wikipedia leads (same domain): "
        f"{int(dropped.sum())} ({dropped.mean():.2e})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--docs", type=int, default=100_000)
    args = parser.parse_args()
    needs_shared(
        args.shared / "bench_100k",
        args.shared / "high_quality",
        args.shared / "near_dup",
        why="PII and contamination recall are measured on its labelled sets",
    )
    shards = sorted((args.shared / "bench_100k").glob("shard_*.parquet"))
    tables = [pq.read_table(s, columns=["id", "text"]) for s in shards]
    corpus = pa.concat_tables(tables).slice(0, args.docs)
    tables = [t for t in (corpus.slice(i, 10_000) for i in range(0, args.docs, 10_000))]
    wiki = pq.read_table(args.shared / "high_quality" / "wikipedia_vital_summaries_en.parquet")
    items = wiki["text"].to_pylist()[:1000]
    with tempfile.TemporaryDirectory() as tmp:
        eval_path = f"{tmp}/eval.jsonl"
        Path(eval_path).write_text(
            "\n".join(json.dumps({"id": f"w{i}", "text": t}) for i, t in enumerate(items)) + "\n"
        )
        print(f"throughput on {corpus.num_rows:,} bench_100k documents (one core, shared machine)")
        bench_c4(corpus)
        bench_pii(corpus)
        bench_decontaminate(corpus, eval_path, items)
        bench_url(args.shared, corpus.num_rows)
        bench_line_dedup(tables)
        print("PII quality")
        bench_pii_quality(args.shared)
        print("decontamination quality")
        bench_decontamination_quality(corpus, args.shared, eval_path, items)


if __name__ == "__main__":
    main()
