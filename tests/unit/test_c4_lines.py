"""`c4_lines`: C4's line cleaning rewrites the page; the page rules reject it."""

from __future__ import annotations

import pyarrow as pa

from curate_filters.c4_lines import C4Lines

GOOD = [
    "The committee met on Tuesday to discuss the budget.",
    "Several members raised concerns about the road repairs.",
    "The mayor promised a full report by the end of the month.",
    "Residents will be able to comment at the next meeting.",
    "A decision is expected before the winter begins.",
]


def run(texts, **params):
    step = C4Lines(C4Lines.Params(**params))
    step.setup()
    result = step.map(pa.table({"text": pa.array(texts, pa.string())}))
    return step, result


def test_menu_javascript_policy_and_unpunctuated_lines_are_removed():
    page = "\n".join(
        [
            "Home About Contact",  # no terminal punctuation
            GOOD[0],
            "Please enable JavaScript to view the comments.",
            GOOD[1],
            "This site uses cookies to improve your experience.",
            "Ok.",  # fewer than three words
            GOOD[2],
            "Read more...",  # an ellipsis is not a sentence end
        ]
    )
    _, result = run([page])
    assert result.text.to_pylist() == ["\n".join(GOOD[:3])]
    assert result.scores["lines_removed"].to_pylist() == [5]
    assert result.changes.to_pylist() == [5]


def test_citation_marks_are_removed_and_lines_stripped():
    _, result = run(["  The river floods every spring[1].  \n" + "\n".join(GOOD[1:])])
    assert result.text.to_pylist()[0].splitlines()[0] == "The river floods every spring."
    assert result.changes.to_pylist() == [1]  # one line edited, none removed


def test_a_clean_page_is_unchanged_and_counts_no_change():
    step, result = run(["\n".join(GOOD)])
    assert result.text.to_pylist() == ["\n".join(GOOD)]
    assert result.changes.to_pylist() == [0]
    assert step.keep(step.score(pa.table({"text": ["\n".join(GOOD)]}))).to_pylist() == [True]


def test_page_rules_reject_lorem_ipsum_curly_brackets_and_short_pages():
    pages = [
        "\n".join([*GOOD, "Lorem ipsum dolor sit amet, consectetur."]),
        "\n".join([*GOOD, "The function returns {a: 1} to the caller."]),
        "\n".join(GOOD[:2]),
    ]
    step, result = run(pages)
    assert result.scores["rule"].to_pylist() == [
        "lorem_ipsum",
        "curly_bracket",
        "too_few_sentences",
    ]
    scores = step.score(pa.table({"text": pages}))
    assert step.keep(scores).to_pylist() == [False, False, False]
    relaxed, _ = run(pages, page_rules=False)
    assert relaxed.keep(relaxed.score(pa.table({"text": pages}))).to_pylist() == [True] * 3


def test_record_changes_lists_the_removed_lines():
    step = C4Lines()
    step.record_changes = True
    result = step.map(pa.table({"text": ["Home About\n" + "\n".join(GOOD)]}))
    assert result.removed.to_pylist() == [["Home About"]]
