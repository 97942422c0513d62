"""The `pii` mapper: redact emails, public IPs, phone numbers, payment cards and IBANs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash
from pydantic import Field

from curate.filter import Params, Resources
from curate.mapper import Mapper, MapResult
from curate_filters import _textstats as ts

# Kinds in priority order: where two detections overlap, the earlier kind wins (an IBAN's
# digits are not also a phone number).
KINDS = ("email", "iban", "card", "ip", "phone")
PLACEHOLDERS = {
    "email": "EMAIL",
    "iban": "IBAN",
    "card": "CARD",
    "ip": "IP_ADDRESS",
    "phone": "PHONE",
}

# RE2 patterns (pyarrow) that find the rows worth a closer look; every row they miss has none.
_CANDIDATE = {
    "email": r"[A-Za-z0-9._%+-]@[A-Za-z0-9-]+\.",
    "iban": r"[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}",
    "card": r"[0-9](?:[ -]?[0-9]){11,18}",
    "ip": r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    "phone": r"[0-9](?:[\s().-]*[0-9]){6,}",
}
# Per kind, an RE2 pattern every text its finder can redact contains: a wider net than the
# candidates above (Python's \d and \s are Unicode), so a finder is skipped on the rows its gate
# misses, with no change in what is redacted. The finders are Python regexes (and phonenumbers),
# most of this step's time, while a gate is one RE2 pass over the candidate rows.
_PY_SPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_GATES = {
    # _EMAIL: a char of [A-Za-z0-9._%+-], '@', a label of [A-Za-z0-9-], '.'
    "email": _CANDIDATE["email"],
    # _IBAN: two capitals, two digits, 11 more [A-Z0-9] each maybe after one space
    "iban": r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11}",
    # _CARD: 12 Unicode digits, each maybe after a space or a dash
    "card": r"\p{Nd}(?:[ -]?\p{Nd}){11}",
    # _IPV4: d.d.d.d with Unicode digits; _IPV6's lookahead: two colons with hex or dots between
    "ip": r"\p{Nd}\.\p{Nd}{1,3}\.\p{Nd}{1,3}\.\p{Nd}|:[0-9A-Fa-f.]*:",
    # _phone_plausible: 7 Unicode digits apart only by Python's \s and ( ) . -
    "phone": rf"\p{{Nd}}(?:[{_PY_SPACE}().-]*\p{{Nd}}){{6}}",
}

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}(?![A-Za-z0-9])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){11,18}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\d|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*:)[0-9A-Fa-f:]{2,39}(?:\.\d+){0,3}(?![\w:])"
)
_IP_WORDS = re.compile(r"(?i)\b(ip|ipv4|address|addr|dns|server|host|gateway|router)\b")
# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners,
# Maestro, UnionPay): a Luhn-valid digit run outside them is more likely an id or a number.
_CARD_PREFIX = re.compile(r"4|5|2[2-7]|3|6|1800|2131")

Span = tuple[int, int, str, str]  # start, end, kind, matched text


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a digit string (payment card numbers)."""
    values = np.frombuffer(digits.encode(), np.uint8) - 48
    doubled = values[::-1].copy()
    doubled[1::2] *= 2
    doubled[doubled > 9] -= 9
    return int(doubled.sum()) % 10 == 0


# IBAN length per country (ISO 13616 registry): lets a match end where the IBAN ends when
# the text goes on with capitals or digits ("DE89 3704 0044 0532 0130 00 A 1985 ...").
IBAN_LENGTHS = {
    entry[:2]: int(entry[2:])
    for entry in """
    NO15 BE16 DK18 FI18 FO18 GL18 NL18 MK19 SI19 AT20 BA20 EE20 KZ20 LT20 LU20 XK20 CH21 HR21
    LI21 LV21 BG22 BH22 CR22 DE22 GB22 GE22 IE22 ME22 RS22 VA22 AE23 GI23 IL23 IQ23 TL23 AD24
    CZ24 ES24 MD24 PK24 RO24 SA24 SE24 SK24 TN24 VG24 PT25 ST25 IS26 TR26 FR27 GR27 IT27 MC27
    MR27 SM27 AL28 AZ28 CY28 DO28 GT28 HU28 LB28 PL28 SV28 BR29 EG29 PS29 QA29 UA29 JO30 KW30
    MU30 MT31 SC31 LC32
    """.split()
}


def _iban_spans(text: str) -> Iterator[Span]:
    for m in _IBAN.finditer(text):
        value = m.group()
        length = IBAN_LENGTHS.get(value[:2])
        if length is not None:  # cut after `length` characters that are not spaces
            chars = [i for i, ch in enumerate(value) if ch != " "]
            if len(chars) < length:
                continue
            value = value[: chars[length - 1] + 1]
        if iban_valid(value):
            yield m.start(), m.start() + len(value), "iban", value


def iban_valid(candidate: str) -> bool:
    """ISO 13616 check: move the first four characters to the end, letters to numbers, mod 97."""
    compact = candidate.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _public_ip(candidate: str) -> bool:
    if ":" in candidate:  # an IPv6 in prose has digits and 3+ groups ("d::" is C++, not an IP)
        groups = [g for g in candidate.split(":") if g]
        if len(groups) < 3 or not any(ch.isdigit() for ch in candidate):
            return False
    try:
        return ipaddress.ip_address(candidate).is_global
    except ValueError:
        return False


class PIIParams(Params):
    """Parameters of the `pii` step."""

    kinds: list[Literal["email", "iban", "card", "ip", "phone"]] = Field(
        list(KINDS), description="What to redact."
    )
    replace_with: Literal["placeholder", "hash"] = Field(
        "placeholder",
        description="placeholder: <EMAIL>; hash: <EMAIL:xxh64 of salt + value>, so equal "
        "values stay equal without being readable.",
    )
    salt: str = Field("", description="Salt for replace_with: hash (keep it secret).")
    phone_regions: list[str] = Field(
        ["US"], description="Regions whose national phone formats are recognised (+CC always)."
    )
    phone_leniency: Literal["possible", "valid"] = Field(
        "possible",
        description="possible: a plausible length for the region (phonenumbers); valid: the "
        "number must also be in an assigned range.",
    )


class PII(Mapper):
    """Redact personal data: emails, public IPv4/IPv6 addresses, phone numbers (phonenumbers),
    payment cards (issuer prefix + Luhn) and IBANs (mod-97 checksum).

    Rows are first screened with Arrow regex kernels; only rows that may hold PII are scanned
    in Python. Scores: the count of each kind redacted in the row.
    """

    Params = PIIParams
    resources = Resources(cpus=1.0, batch_size=2048)

    def setup(self) -> None:
        self._phonenumbers()

    def _phonenumbers(self):  # noqa: ANN202 - optional dependency
        try:
            import phonenumbers
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("pip install 'curate[pii]' to use the pii step") from exc
        return phonenumbers

    def _finders(self) -> dict[str, Callable[[str], Iterator[Span]]]:
        return {
            "email": lambda t: _regex_spans(_EMAIL, t, "email", lambda s: True),
            "iban": _iban_spans,
            "card": lambda t: _regex_spans(_CARD, t, "card", _card_valid),
            "ip": self._ips,
            "phone": self._phones,
        }

    def _ips(self, text: str) -> Iterator[Span]:
        for span in _regex_spans(_IPV4, text, "ip", _public_ip):
            # 4.8.3.1 is more often a section or version number than an address: say so first.
            small = all(len(octet) == 1 for octet in span[3].split("."))
            if not small or _IP_WORDS.search(text[max(0, span[0] - 30) : span[0]]):
                yield span
        yield from _regex_spans(_IPV6, text, "ip", _public_ip)

    def _phones(self, text: str) -> Iterator[Span]:
        pn = self._phonenumbers()
        # "001-555-..." dials out of many countries into North America; phonenumbers reads
        # "+1-555-...". Same length, so offsets still point into `text`.
        dialled = _DIAL_001.sub(r" +1\1", text)
        for region in self.params.phone_regions:
            for m in pn.PhoneNumberMatcher(dialled, region, leniency=pn.Leniency.POSSIBLE):
                start = m.start - 1 if text.startswith("001", m.start - 1) else m.start
                if _phone_plausible(pn, text, start, m, region) and (
                    self.params.phone_leniency == "possible" or pn.is_valid_number(m.number)
                ):
                    yield start, m.end, "phone", text[start : m.end]

    def _replacement(self, span: Span) -> str:
        label = PLACEHOLDERS[span[2]]
        if self.params.replace_with == "hash":
            digest = xxhash.xxh64_hexdigest((self.params.salt + span[3]).encode())
            return f"<{label}:{digest}>"
        return f"<{label}>"

    def redact(self, text: str, skip: frozenset[str] = frozenset()) -> tuple[str, list[Span]]:
        """One text with its PII replaced, and the spans replaced (in text order).

        `skip` names kinds known to have no match in `text` (their finders are not run).
        """
        finders = self._finders()
        kinds = [kind for kind in KINDS if kind in self.params.kinds and kind not in skip]
        spans = [s for kind in kinds for s in finders[kind](text)]
        chosen: list[Span] = []
        taken = np.zeros(len(text) + 1, bool)
        for span in spans:  # priority order: the first kind to claim a character keeps it
            if not taken[span[0] : span[1]].any():
                taken[span[0] : span[1]] = True
                chosen.append(span)
        chosen.sort()
        out, pos = [], 0
        for span in chosen:
            out += [text[pos : span[0]], self._replacement(span)]
            pos = span[1]
        out.append(text[pos:])
        return "".join(out), chosen

    def map(self, batch: pa.Table) -> MapResult:
        text = ts.as_text(self.text(batch))
        n = len(text)
        kinds = [k for k in KINDS if k in self.params.kinds]
        candidate = np.zeros(n, bool)
        for kind in kinds:
            candidate |= np.asarray(pc.match_substring_regex(text, _CANDIDATE[kind]), bool)
        counts = {k: np.zeros(n, np.int64) for k in KINDS}
        rows = np.flatnonzero(candidate)
        candidates = text.take(pa.array(rows, pa.int64()))
        missed = {
            kind: ~np.asarray(pc.match_substring_regex(candidates, _GATES[kind]), bool)
            for kind in kinds
        }
        new_texts = candidates.to_pylist()
        removed: list[list[str]] = [[] for _ in range(n)]
        for i, row in enumerate(rows):
            skip = frozenset(kind for kind in kinds if missed[kind][i])
            new_texts[i], spans = self.redact(new_texts[i], skip)
            for span in spans:
                counts[span[2]][row] += 1
            removed[row] = [s[3] for s in spans]
        changes = sum(counts.values())
        changed = np.flatnonzero(changes > 0)
        out = text
        if len(changed):
            position = {int(r): i for i, r in enumerate(rows)}
            redacted = pa.array([new_texts[position[int(r)]] for r in changed], pa.string())
            mask = np.zeros(n, bool)
            mask[changed] = True
            out = pc.replace_with_mask(text, pa.array(mask), redacted)
        return MapResult(
            text=out,
            changes=pa.array(changes),
            scores={k: pa.array(counts[k].astype(np.int32)) for k in KINDS},
            removed=pa.array(removed, pa.list_(pa.string())) if self.record_changes else None,
        )


def _regex_spans(
    pattern: re.Pattern, text: str, kind: str, valid: Callable[[str], bool]
) -> Iterator[Span]:
    for m in pattern.finditer(text):
        if valid(m.group()):
            yield m.start(), m.end(), kind, m.group()


# Neighbours that make a digit run part of a URL, an identifier or a quantity, not a phone.
_NOT_BEFORE = set("/=#_-@.:&?")
_NOT_AFTER = set("/=#_-@°%&?")
_PHONE_WORDS = re.compile(
    r"(?i)\b(phone|tel|telephone|call|fax|mobile|cell|contact|number|no|ph|whatsapp|sms|text|"
    r"dial|reach)\b\W{0,3}(?:\S+\s+){0,3}\W*$"
)
_DIAL_001 = re.compile(r"(?<![\w+])001([-. ]?)(?=\(?\d{3})")
_ISBN = re.compile(r"(?i)\bisbn(?:-1[03])?\W*$")
# Digit patterns that are not phone numbers: dotted quads, dates and year ranges.
_NOT_PHONE = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|(?:1[0-9]|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|(?:1[0-9]|20)\d\d\s?[-–]\s?(?:(?:1[0-9]|20)?\d\d)"
)
_BARE_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
# What a written phone number is made of: digits, spaces, ( ) + - . and an extension.
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]*\d[\d\s().-]*(?:\s*(?:x|ext\.?)\s*\d+)?", re.I)


def _phone_plausible(pn: Any, text: str, start: int, match: Any, region: str) -> bool:
    """A phone match that is not part of a URL or identifier, not a quantity, date or table,
    and, when it is a bare digit run, announced by a word like 'call' or 'phone'."""
    end, raw = match.end, match.raw_string
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if before.isalnum() or before in _NOT_BEFORE or after.isalnum() or after in _NOT_AFTER:
        return False
    number = re.split(r"(?i)\s*(?:x|ext)", raw)[0]  # before any extension
    if not _PHONE_CHARS.fullmatch(raw) or sum(ch.isdigit() for ch in number) < 7:
        return False  # 2.4.26/2.6.3, (993–1997 or 0x110000: versions, years, hex
    if _NOT_PHONE.fullmatch(number.strip()) or _ISBN.search(text[max(0, start - 12) : start]):
        return False
    groups = [len(g) for g in re.findall(r"\d+", number)]
    if not raw.startswith("+") and (max(groups) < 3 or sum(g <= 2 for g in groups) > 2):
        return False  # 16 16 16 16 16, 8 8 16 8 16: a table of numbers
    if not _BARE_NUMBER.fullmatch(raw):
        return True
    if not raw.isdigit():
        return False  # 23.43603 or 1,234,567: a quantity
    # A bare digit run is a phone number only where the text says so ("call", "phone: ").
    return bool(_PHONE_WORDS.search(text[max(0, start - 30) : start]))


def _card_valid(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 12 <= len(digits) <= 19 and bool(_CARD_PREFIX.match(digits)) and luhn_valid(digits)
