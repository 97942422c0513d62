"""Transient storage errors (an object store's 503, a timeout, a reset connection) retried with
capped exponential backoff; everything else fails at once."""

from __future__ import annotations

import errno
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# errnos a retry can cure: the network or the store was briefly unavailable.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.ETIMEDOUT,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ECONNREFUSED,
        errno.EAGAIN,
        errno.EPIPE,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.EHOSTUNREACH,
    }
)
# What pyarrow's S3/GCS layers, fsspec and botocore say when a store throttles or hiccups.
TRANSIENT_TEXT = re.compile(
    r"\b(?:500|502|503|504|429)\b|slow ?down|throttl|too many requests|service ?unavailable"
    r"|internal ?error|request ?timeout|timed? ?out|timeout|connection (?:reset|aborted|closed)"
    r"|reset by peer|broken pipe|temporarily unavailable|try again|network_connection"
    r"|curl error|unable to connect",
    re.IGNORECASE,
)
# botocore / urllib3 / aiohttp exception classes that are transient whatever their message says.
TRANSIENT_CLASSES = frozenset(
    {
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "ConnectionClosedError",
        "EndpointConnectionError",
        "ProtocolError",
        "ResponseStreamingError",
        "IncompleteReadError",
        "ServerDisconnectedError",
        "ClientConnectionError",
        "ClientPayloadError",
    }
)
# errnos that say the request was understood and refused: retrying cannot help.
PERMANENT_ERRNOS = frozenset(
    {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EISDIR, errno.ENOTDIR}
)


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a storage hiccup worth retrying (not bad input, not a failing step).

    Only OSError (pyarrow's filesystems raise it for S3/GCS errors, with the HTTP status in the
    text), TimeoutError/ConnectionError (both OSError) and the network exception classes of
    botocore, urllib3 and aiohttp qualify; a ValueError that merely mentions "timeout" does not.
    """
    if isinstance(exc, RetriesExhausted):  # already retried: an outer retry must not repeat it
        return False
    if type(exc).__name__ in TRANSIENT_CLASSES:
        return True
    if not isinstance(exc, OSError):
        return False
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    if exc.errno in PERMANENT_ERRNOS:
        return False
    if isinstance(exc, TimeoutError | ConnectionError) or exc.errno in TRANSIENT_ERRNOS:
        return True
    return bool(TRANSIENT_TEXT.search(str(exc)))


@dataclass(frozen=True)
class Policy:
    """How often and how patiently to retry: `attempts` tries in all, waits from `base_s`
    doubling up to `cap_s`, each scaled by a jitter in [0.5, 1) so retrying clients spread out."""

    attempts: int = 5
    base_s: float = 0.2
    cap_s: float = 10.0

    def delay(self, failures: int, key: str = "") -> float:
        """Seconds to wait after the `failures`-th failure (1-based) of the call named `key`.

        Jitter comes from a generator seeded by (key, failures): the schedule is reproducible
        for one call and differs between calls, so a run's retries do not move in lockstep."""
        ceiling = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        jitter = random.Random(f"{key}#{failures}").uniform(0.5, 1.0)
        return ceiling * jitter


class RetriesExhausted(OSError):
    """A transient error outlived every attempt; the message names what and the last error.

    An OSError, so every caller that reports storage errors as a sentence reports this one."""


NO_RETRY = Policy(attempts=1)


def call(
    fn: Callable[[], T],
    what: str,
    policy: Policy = Policy(),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried on transient errors up to `policy.attempts` times in all.

    A non-transient error is raised at once, as itself. When every attempt failed on a
    transient one, RetriesExhausted says which `what` (a unit, a file) and the last error.
    """
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if attempt == policy.attempts:
                raise RetriesExhausted(
                    f"{what}: storage kept failing after {policy.attempts} attempts "
                    f"({type(exc).__name__}: {exc}); the units finished so far are kept: "
                    "rerun the same command to resume (storage.retries sets the attempts)"
                ) from exc
            sleep(policy.delay(attempt, what))
    raise AssertionError("unreachable")  # attempts >= 1


def unit(
    process: Callable[[int, Any, Any], T], seg: int, work: Any, decision: Any, attempts: int
) -> T:
    """`process(seg, work, decision)` for one work unit, retried whole on a transient error.

    Safe because a unit's files are atomic (temporaries or attempt-unique keys, removed on
    abort, published by its manifest last): a failed attempt leaves nothing a retry duplicates.
    """
    return call(
        lambda: process(seg, work, decision),
        f"work unit {work.name} ({work.describe()})",
        Policy(attempts=attempts),
    )
