"""The `url_filter` filter: drop documents whose URL has a blocked domain or a banned word."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from curate.filter import Filter, Params, Resources
from curate.io import InputError
from curate.models import sha256_path

DATA = Path(__file__).parent / "data"
DEFAULT_DOMAINS = str(DATA / "url_blocklist.txt")
DEFAULT_WORDS = str(DATA / "url_banned_words.txt")
# The host of a URL, with or without a scheme, without user info or port.
_HOST = r"^(?:[A-Za-z][A-Za-z0-9+.\-]*://)?(?:[^@/?#]*@)?(?P<host>[^/:?#]*)"


def read_list(path: str) -> list[str]:
    """Entries of a list file: one a line, lower-cased; blank lines and '#' comments skipped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [x.strip().lower() for x in lines if x.strip() and not x.lstrip().startswith("#")]


class URLFilterParams(Params):
    """Parameters of the `url_filter` step."""

    url_column: str = Field("url", description="Column holding each document's URL.")
    domain_lists: list[str] = Field(
        [DEFAULT_DOMAINS],
        description="Files of blocked domains, one a line; a domain blocks its subdomains. "
        "Default: curate's small list (filters/data/url_blocklist.txt).",
    )
    word_lists: list[str] = Field(
        [DEFAULT_WORDS],
        description="Files of banned URL words, one a line, matched against the runs of "
        "letters and digits of the lower-cased URL. Default: filters/data/url_banned_words.txt.",
    )

    @field_validator("domain_lists", "word_lists")
    @classmethod
    def _files_exist(cls, paths: list[str]) -> list[str]:
        for path in paths:
            if not Path(path).is_file():
                raise ValueError(f"list file {path} is not a file")
        return [os.path.abspath(p) for p in paths]


class URLFilter(Filter):
    """Drop documents by URL: blocked domains (and their subdomains), then banned URL words.

    Scores: `list` (the file name of the list that matched) and `entry` (the domain or word),
    both null for kept rows. A row with no URL (null) is kept.
    """

    Params = URLFilterParams
    resources = Resources(cpus=1.0, batch_size=8192)

    def references(self, owner: str) -> dict[str, str]:
        """The list files' sha256: a list edited between attempts is a different run."""
        return {
            path: sha256_path(path)
            for path in list(self.params.domain_lists) + list(self.params.word_lists)
        }

    def setup(self) -> None:
        # First list wins for an entry on several lists, so the reason is stable.
        self._domains: dict[str, str] = {}
        for path in self.params.domain_lists:
            for entry in read_list(path):
                self._domains.setdefault(entry.removeprefix("www."), Path(path).name)
        self._words: dict[str, str] = {}
        for path in self.params.word_lists:
            for entry in read_list(path):
                self._words.setdefault(entry, Path(path).name)

    def _urls(self, batch: pa.Table) -> pa.Array:
        column = self.params.url_column
        if column not in batch.schema.names:  # bad input, not a bug: the CLI says so, exit 2
            raise InputError(
                f"url_filter: no URL column '{column}' (columns: "
                f"{', '.join(n for n in batch.schema.names if not n.startswith('__curate'))}); "
                "set the step's params.url_column"
            )
        urls = batch.column(column)
        urls = urls.combine_chunks() if urls.num_chunks else pa.array([], pa.string())
        return pc.utf8_lower(pc.cast(urls, pa.string()))

    def _domain_hits(self, urls: pa.Array) -> np.ndarray:
        """Per row, the blocked domain its host is (or is a subdomain of), else None."""
        hosts = pc.struct_field(pc.extract_regex(urls, _HOST), "host")
        hosts = pc.utf8_rtrim(pc.fill_null(hosts, ""), ".")
        encoded = pc.dictionary_encode(hosts)
        matches = []
        for host in encoded.dictionary.to_pylist():  # one lookup per distinct host
            labels = host.split(".")
            suffixes = (".".join(labels[k:]) for k in range(len(labels)))
            matches.append(next((s for s in suffixes if s in self._domains), None))
        index = encoded.indices.to_numpy(zero_copy_only=False)
        return np.asarray(matches + [None], dtype=object)[index]

    def score(self, batch: pa.Table) -> dict[str, pa.Array]:
        urls = self._urls(batch)
        n = len(urls)
        entry = np.full(n, None, dtype=object)
        source = np.full(n, None, dtype=object)
        domains = self._domain_hits(urls)
        for i, domain in enumerate(domains):
            if domain is not None:
                entry[i], source[i] = domain, self._domains[domain]
        words = pc.split_pattern_regex(pc.fill_null(urls, ""), r"[^\p{L}\p{N}]+")
        flat = pc.list_flatten(words)
        parent = pc.list_parent_indices(words).to_numpy(zero_copy_only=False)
        hit = np.asarray(pc.is_in(flat, value_set=pa.array(list(self._words), pa.string())), bool)
        rows, first = np.unique(parent[hit], return_index=True)
        hit_words = flat.filter(pa.array(hit)).take(pa.array(first, pa.int64())).to_pylist()
        for row, word in zip(rows, hit_words, strict=True):
            if entry[row] is None:  # a blocked domain is the stronger reason
                entry[row], source[row] = word, self._words[word]
        return {
            "list": pa.array(source.tolist(), pa.string()),
            "entry": pa.array(entry.tolist(), pa.string()),
        }

    def keep(self, scores: dict[str, pa.Array]) -> pa.BooleanArray:
        return pc.is_null(scores["entry"])
