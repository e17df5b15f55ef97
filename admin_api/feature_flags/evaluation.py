"""How one flag evaluates for one subject: a pure function, the same in every process and release.

Order (as LaunchDarkly's and Unleash's targeting do it, most specific first):
1. the tenant's override, when there is one, wins, even over a disabled flag (`tenant_override`);
2. a disabled flag is off (`flag_disabled`);
3. with a rollout, the subject's sticky bucket decides (`rollout`);
4. otherwise the flag is on (`default`).

The bucket is the first 8 bytes of SHA-256("<flag key>:<subject>") as a big-endian integer,
modulo 10,000; a subject is in the rollout when its bucket is below the rollout in hundredths
of a percent. The subject is the user's id, or the tenant's when no user is named, written as a
lower-case hyphenated UUID. SHA-256 rather than Python's hash(), which changes with every process;
a bucket never moves, so raising the percentage only ever adds subjects.
"""
from __future__ import annotations

import hashlib
from typing import NamedTuple

from admin_api.feature_flags.models import FULL_ROLLOUT

REASONS = ("tenant_override", "rollout", "default", "flag_disabled")


class Evaluation(NamedTuple):
    value: bool
    reason: str


def bucket(key: str, subject: str) -> int:
    """The subject's place in the flag's rollout, 0..9999 (stable: depends on nothing but its inputs)."""
    digest = hashlib.sha256(f"{key}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % FULL_ROLLOUT


def in_rollout(key: str, subject: str, basis_points: int) -> bool:
    """Whether a rollout of `basis_points` hundredths of a percent reaches the subject."""
    return bucket(key, subject) < basis_points


def evaluate_flag(*, key: str, enabled: bool, rollout_basis_points: int | None, override: bool | None,
                  subject: str) -> Evaluation:
    if override is not None:
        return Evaluation(override, "tenant_override")
    if not enabled:
        return Evaluation(False, "flag_disabled")
    if rollout_basis_points is not None:
        return Evaluation(in_rollout(key, subject, rollout_basis_points), "rollout")
    return Evaluation(True, "default")
