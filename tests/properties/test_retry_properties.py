"""Transient storage errors: which exceptions are retried, the backoff schedule, the bounds."""

from __future__ import annotations

import errno
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate import io, retry

TRANSIENT = sorted(retry.TRANSIENT_ERRNOS)
PERMANENT = sorted(retry.PERMANENT_ERRNOS)
STORE_WORDS = [
    "AWS Error SLOW_DOWN during GetObject operation: 503 Slow Down",
    "When reading information for key 'a/b': AWS Error SERVICE_UNAVAILABLE (HTTP status 503)",
    "AWS Error NETWORK_CONNECTION during HeadObject operation: curlCode: 28, Timeout was reached",
    "An error occurred (Throttling) when calling the GetObject operation: Rate exceeded",
    "Connection reset by peer",
    "Read timed out",
    "HTTP 429 Too Many Requests",
]


class ReadTimeoutError(Exception):
    """Named like botocore's: transient by its class, whatever it says."""


@given(st.sampled_from(TRANSIENT), st.text(max_size=30))
def test_an_oserror_with_a_network_errno_is_transient(code, text):
    assert retry.is_transient(OSError(code, text))


@given(st.sampled_from(PERMANENT), st.sampled_from(STORE_WORDS))
def test_a_refusal_errno_is_never_transient_whatever_it_says(code, text):
    # ENOENT, EACCES, ENOSPC...: the store understood and said no; a retry cannot help.
    assert not retry.is_transient(OSError(code, text))


@given(st.sampled_from(STORE_WORDS), st.text(max_size=20))
def test_a_store_that_throttles_or_hiccups_is_transient(words, noise):
    assert retry.is_transient(OSError(f"{noise} {words}"))


@given(
    st.sampled_from(STORE_WORDS),
    st.sampled_from([ValueError, KeyError, RuntimeError, TypeError, io.InputError]),
)
def test_only_storage_exceptions_are_transient_however_they_are_worded(words, cls):
    # Bad input or a failing step that mentions "timeout" is still not retried.
    assert not retry.is_transient(cls(words))


def test_network_exception_classes_are_transient_and_exhaustion_is_final():
    assert retry.is_transient(ReadTimeoutError("boom"))
    assert retry.is_transient(TimeoutError()) and retry.is_transient(ConnectionResetError())
    assert not retry.is_transient(FileNotFoundError(errno.ENOENT, "503 in the name"))
    assert not retry.is_transient(retry.RetriesExhausted("x: 503 Slow Down"))


@given(
    st.integers(1, 12),
    st.text(max_size=20),
    st.floats(0.001, 2.0),
    st.floats(0.01, 60.0),
)
def test_backoff_is_capped_exponential_with_jitter_and_reproducible(failures, key, base, cap):
    policy = retry.Policy(attempts=5, base_s=base, cap_s=cap)
    ceiling = min(cap, base * 2 ** (failures - 1))
    delay = policy.delay(failures, key)
    assert 0.5 * ceiling <= delay <= ceiling
    assert delay == policy.delay(failures, key)  # the same call waits the same on every run


@given(st.integers(1, 11), st.text(max_size=10))
def test_the_ceiling_never_shrinks_from_one_failure_to_the_next(failures, key):
    policy = retry.Policy(base_s=0.1, cap_s=5.0)
    # Worst case of the next wait >= best case of this one's ceiling half: waits grow or cap.
    assert policy.delay(failures + 1, key) >= 0.5 * min(5.0, 0.1 * 2 ** (failures - 1))


@settings(max_examples=60)
@given(st.integers(0, 8), st.integers(1, 6))
def test_call_retries_transient_errors_up_to_the_attempts_and_no_more(fails, attempts):
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) <= fails:
            raise OSError(errno.ECONNRESET, "reset")
        return "ok"

    policy = retry.Policy(attempts=attempts, base_s=0.01, cap_s=0.05)
    if fails < attempts:
        assert retry.call(flaky, "unit x", policy, sleep=waits.append) == "ok"
        assert len(calls) == fails + 1
    else:
        with pytest.raises(retry.RetriesExhausted, match=r"^unit x: storage kept failing after"):
            retry.call(flaky, "unit x", policy, sleep=waits.append)
        assert len(calls) == attempts
    assert len(waits) == len(calls) - 1 and all(0 < w <= 0.05 for w in waits)


@given(st.sampled_from([ValueError("bad row"), io.InputError("f.parquet: no text column")]))
def test_a_non_transient_error_is_raised_at_once_as_itself(error):
    calls = []

    def broken():
        calls.append(1)
        raise error

    with pytest.raises(type(error)):
        retry.call(broken, "unit x", retry.Policy(attempts=5), sleep=lambda s: None)
    assert calls == [1]


@settings(max_examples=30)
@given(st.lists(st.integers(0, 1000), max_size=60), st.integers(1, 8))
def test_map_io_keeps_input_order_whatever_finishes_first(items, threads):
    def slow_echo(x):
        time.sleep((x % 3) / 2000)  # later items often finish first
        return (x, threading.current_thread().name)

    out = io.map_io(slow_echo, items, threads=threads)
    assert [x for x, _ in out] == items


@settings(max_examples=20)
@given(st.lists(st.booleans(), min_size=2, max_size=30))
def test_map_io_raises_the_first_failure_in_input_order(bad):
    def check(i):
        if bad[i]:
            time.sleep((len(bad) - i) / 5000)  # the earliest bad item finishes last
            raise ValueError(f"item {i}")
        return i

    if not any(bad):
        assert io.map_io(check, range(len(bad))) == list(range(len(bad)))
        return
    with pytest.raises(ValueError, match=f"^item {bad.index(True)}$"):
        io.map_io(check, range(len(bad)))
