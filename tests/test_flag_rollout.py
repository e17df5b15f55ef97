"""Flag evaluation as a pure function: the order of the rules, and a sticky, monotonic, fair rollout."""
import random
import subprocess
import sys
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from admin_api.feature_flags.evaluation import REASONS, Evaluation, bucket, evaluate_flag, in_rollout
from admin_api.feature_flags.models import FULL_ROLLOUT

keys = st.from_regex(r"[a-z][a-z0-9_.-]{1,63}", fullmatch=True)
subjects = st.uuids().map(str)
basis_points = st.integers(min_value=0, max_value=FULL_ROLLOUT)
maybe_override = st.one_of(st.none(), st.booleans())


@given(key=keys, subject=subjects, low=basis_points, high=basis_points)
def test_raising_the_percentage_only_adds_subjects(key, subject, low, high):
    low, high = sorted((low, high))
    if in_rollout(key, subject, low):
        assert in_rollout(key, subject, high)


@given(key=keys, subject=subjects)
def test_none_at_zero_everyone_at_one_hundred(key, subject):
    assert 0 <= bucket(key, subject) < FULL_ROLLOUT
    assert not in_rollout(key, subject, 0)
    assert in_rollout(key, subject, FULL_ROLLOUT)


@settings(max_examples=25, deadline=None)
@given(key=keys, percent=st.integers(min_value=0, max_value=FULL_ROLLOUT), seed=st.integers(0, 2**32))
def test_the_share_reached_is_within_two_points_of_the_percentage(key, percent, seed):
    """Over 10,000 random user ids the share in the rollout is the percentage, +/- 2 points."""
    rng = random.Random(seed)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(10_000)]
    share = 100 * sum(in_rollout(key, subject, percent) for subject in ids) / len(ids)
    assert abs(share - percent / 100) <= 2


@given(key=keys)
def test_flags_bucket_the_same_subjects_independently(key):
    """Two flags at 50 % do not reach the same half of the users (the key is part of the hash)."""
    ids = [str(uuid.UUID(int=n)) for n in range(400)]
    first = {s for s in ids if in_rollout(key, s, 5000)}
    other = {s for s in ids if in_rollout(key + "x", s, 5000)}
    assert first != other


def test_buckets_are_fixed_forever():
    """Pinned values: a release that changed the hash would move users in and out of rollouts."""
    assert bucket("new-checkout", "00000000-0000-0000-0000-000000000001") == 7810
    assert bucket("new-checkout", "00000000-0000-0000-0000-000000000002") == 5126
    assert bucket("beta.search", "6f1c2a4e-8d3b-4f5a-9c7e-1b2d3e4f5a6b") == 5472


def test_buckets_are_the_same_in_another_process():
    """Python's own hash() changes per process (PYTHONHASHSEED); ours must not."""
    code = ("from admin_api.feature_flags.evaluation import bucket; "
            "print(bucket('new-checkout', '00000000-0000-0000-0000-000000000001'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert out.stdout.strip() == str(bucket("new-checkout", "00000000-0000-0000-0000-000000000001")) == "7810"


@given(key=keys, enabled=st.booleans(), rollout=st.one_of(st.none(), basis_points), override=maybe_override,
       subject=subjects)
def test_evaluation_order(key, enabled, rollout, override, subject):
    result = evaluate_flag(key=key, enabled=enabled, rollout_basis_points=rollout, override=override, subject=subject)
    assert isinstance(result, Evaluation) and result.reason in REASONS
    if override is not None:
        assert result == (override, "tenant_override")  # wins even over a disabled flag
    elif not enabled:
        assert result == (False, "flag_disabled")
    elif rollout is not None:
        assert result == (in_rollout(key, subject, rollout), "rollout")
    else:
        assert result == (True, "default")
