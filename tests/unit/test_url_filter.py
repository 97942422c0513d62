"""`url_filter`: blocked domains (with subdomains) and banned URL words; the reason names both."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate.io import InputError
from curate_filters.url_filter import URLFilter


def run(urls, **params):
    step = URLFilter(URLFilter.Params(**params))
    step.setup()
    scores = step.score(pa.table({"url": pa.array(urls, pa.string())}))
    return scores, step.keep(scores).to_pylist()


def test_blocked_domains_and_their_subdomains():
    scores, keep = run(
        [
            "https://www.pornhub.com/view?x=1",
            "http://fr.xhamster.com:8080/",
            "xvideos.com/path",
            "https://notpornhub.com/",  # a different domain that merely ends alike
            "https://example.org/pornhub.com",  # the domain in the path is not the host
        ]
    )
    assert keep == [False, False, False, True, False]
    assert scores["entry"].to_pylist()[:3] == ["pornhub.com", "xhamster.com", "xvideos.com"]
    assert scores["list"].to_pylist()[0] == "url_blocklist.txt"
    # The last one is caught by its words, not its host.
    assert scores["list"].to_pylist()[4] == "url_banned_words.txt"


def test_banned_words_match_whole_url_words_only():
    scores, keep = run(
        ["https://example.org/free-porn/", "https://www.sussex.ac.uk/essex", "https://a.org/XXX"]
    )
    assert keep == [False, True, False]
    assert scores["entry"].to_pylist() == ["porn", None, "xxx"]


def test_own_lists_and_null_urls(tmp_path):
    (tmp_path / "mine.txt").write_text("# my list\nbad.example\n")
    scores, keep = run(
        ["https://shop.bad.example/", None, "https://good.example/"],
        domain_lists=[str(tmp_path / "mine.txt")],
        word_lists=[],
    )
    assert keep == [False, True, True]
    assert scores["list"].to_pylist() == ["mine.txt", None, None]


def test_a_missing_url_column_names_the_param():
    step = URLFilter()
    step.setup()
    with pytest.raises(InputError, match="no URL column 'url'.*params.url_column"):
        step.score(pa.table({"text": ["x"]}))
