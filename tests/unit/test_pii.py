"""`pii`: each kind of personal data is redacted, look-alikes are not."""

from __future__ import annotations

import pyarrow as pa
import pytest

from curate_filters.pii import PII, iban_valid, luhn_valid

pytest.importorskip("phonenumbers")


def redact(texts, **params):
    step = PII(PII.Params(**params))
    step.setup()
    return step.map(pa.table({"text": pa.array(texts, pa.string())}))


@pytest.mark.parametrize(
    "text, expected, kind",
    [
        ("Write to jane.doe+news@mail.example.co.uk today.", "Write to <EMAIL> today.", "email"),
        ("The server at 93.184.216.34 answered.", "The server at <IP_ADDRESS> answered.", "ip"),
        ("Reach 2001:4860:4860::8888 over IPv6.", "Reach <IP_ADDRESS> over IPv6.", "ip"),
        ("Call (415) 555-0132 after nine.", "Call <PHONE> after nine.", "phone"),
        ("Or +44 20 7946 0958 in London.", "Or <PHONE> in London.", "phone"),
        ("Card 4111 1111 1111 1111 expired.", "Card <CARD> expired.", "card"),
        ("Pay to GB82 WEST 1234 5698 7654 32 now.", "Pay to <IBAN> now.", "iban"),
        ("IBAN DE89370400440532013000 please.", "IBAN <IBAN> please.", "iban"),
        ("To DE89 3704 0044 0532 0130 00 A 1985 fund.", "To <IBAN> A 1985 fund.", "iban"),
    ],
)
def test_each_kind_is_replaced_by_its_placeholder(text, expected, kind):
    result = redact([text])
    assert result.text.to_pylist() == [expected]
    assert result.scores[kind].to_pylist() == [1]
    assert result.changes.to_pylist() == [1]


@pytest.mark.parametrize(
    "text",
    [
        "A private host 192.168.1.20 and loopback 127.0.0.1.",
        "Python 3.11.2 was released on 2023-02-08.",
        "ISBN 978-3-16-148410-0 and the year 1066.",
        "Card-like 4111 1111 1111 1112 fails the Luhn check.",
        "GB82 WEST 1234 5698 7654 33 has a bad checksum.",
        "The population was 1,234,567 in 2010.",
        "Use a::b in C++ and std::vector<int>.",
    ],
)
def test_look_alikes_are_left_alone(text):
    result = redact([text])
    assert result.text.to_pylist() == [text]
    assert result.changes.to_pylist() == [0]


def test_hash_mode_is_stable_and_salted():
    texts = ["mail a@example.org", "again a@example.org", "other b@example.org"]
    first = redact(texts, replace_with="hash", salt="s1").text.to_pylist()
    assert first[0].split()[-1] == first[1].split()[-1] != first[2].split()[-1]
    assert first[0].startswith("mail <EMAIL:") and "a@example" not in first[0]
    other_salt = redact(texts, replace_with="hash", salt="s2").text.to_pylist()
    assert other_salt[0] != first[0]


def test_counts_per_kind_and_only_chosen_kinds():
    text = "x@example.org, y@example.org and 93.184.216.34"
    result = redact([text, "nothing here"])
    assert result.scores["email"].to_pylist() == [2, 0]
    assert result.scores["ip"].to_pylist() == [1, 0]
    only_ip = redact([text], kinds=["ip"])
    assert only_ip.text.to_pylist() == ["x@example.org, y@example.org and <IP_ADDRESS>"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Phone: 001-379-911-9952x808.", "Phone: <PHONE>."),  # dialled from abroad
        ("The office number is 4743218300.", "The office number is <PHONE>."),  # announced
        ("Its frequency is 9192631770 Hz.", "Its frequency is 9192631770 Hz."),  # bare, unannounced
        ("The DNS server 8.8.8.8 answers.", "The DNS server <IP_ADDRESS> answers."),
        ("See section 4.8.3.1 for details.", "See section 4.8.3.1 for details."),
        ("Netmask 255.255.255.0 is common.", "Netmask 255.255.255.0 is common."),
        ("It was built 1300-1375 by monks.", "It was built 1300-1375 by monks."),
        ("The row reads 16 16 16 16 16 here.", "The row reads 16 16 16 16 16 here."),
        ("See issuecomment-2147483647 there.", "See issuecomment-2147483647 there."),
        ("Cells 0x110000 and 2.4.26/2.6.3.", "Cells 0x110000 and 2.4.26/2.6.3."),
        ("Read it (ISBN 0-201-61641-6).", "Read it (ISBN 0-201-61641-6)."),
    ],
)
def test_context_decides_ambiguous_numbers(text, expected):
    assert redact([text]).text.to_pylist() == [expected]


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82WEST12345698765433")
