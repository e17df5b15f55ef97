"""Sign-in cost next to one argon2id hash, and the same work for every kind of failure (CASES C13).

    .venv/bin/python bench/login.py [--database sqlite|postgresql://...] [--count 60]

Serves the app with gunicorn (production argon2id settings), then runs rounds of
one argon2id verification in this process followed by one sign-in of each kind:
valid credentials, a wrong password, an unknown email, a disabled user. Prints
p50/p99 of each next to the hash's p50.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from argon2 import PasswordHasher

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import ADMIN_EMAIL, ADMIN_PASSWORD, app_env, flask, gunicorn, post_json, scratch_database  # noqa: E402

from admin_api.config import DEFAULTS  # noqa: E402


def hash_timer():
    """Times one argon2id verification with the configured cost, in this process."""
    hasher = PasswordHasher(time_cost=DEFAULTS["PASSWORD_HASH_TIME_COST"], memory_cost=DEFAULTS["PASSWORD_HASH_MEMORY_COST"],
                            parallelism=DEFAULTS["PASSWORD_HASH_PARALLELISM"])
    stored = hasher.hash(ADMIN_PASSWORD)

    def one() -> float:
        started = time.perf_counter()
        hasher.verify(stored, ADMIN_PASSWORD)
        return (time.perf_counter() - started) * 1000

    return one


def timed_login(port: int, body: dict, expect: int) -> float:
    started = time.perf_counter()
    status, _ = post_json(port, "/api/v1/auth/login", body)
    elapsed = (time.perf_counter() - started) * 1000
    assert status == expect, (status, body)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default="sqlite")
    parser.add_argument("--count", type=int, default=60)
    args = parser.parse_args()
    with scratch_database(args.database, "admin_api_bench_login") as url:
        # Failures would trip the throttle long before `count`: lift it for the measurement.
        env = app_env(url, LOGIN_MAX_FAILURES_PER_ACCOUNT=100000, LOGIN_MAX_FAILURES_PER_ADDRESS=100000,
                      WEB_CONCURRENCY=1, GUNICORN_THREADS=1)
        flask(env, "db", "upgrade")
        flask(env, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        flask(env, "create-admin", "--email", "disabled@example.test", "--password", ADMIN_PASSWORD)
        with gunicorn(env) as port:
            _disable(port)
            cases = {
                "valid credentials (200)": ({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}, 200),
                "wrong password (401)": ({"email": ADMIN_EMAIL, "password": "not the password"}, 401),
                "unknown email (401)": ({"email": "nobody@example.test", "password": ADMIN_PASSWORD}, 401),
                "disabled user, right password (401)": ({"email": "disabled@example.test", "password": ADMIN_PASSWORD}, 401),
            }
            for _ in range(5):  # warm up
                timed_login(port, *cases["valid credentials (200)"])
            # Interleaved rounds (a hash, then one login of each kind), so that whatever else the machine
            # does at a moment weighs on the hash and the logins alike.
            one_hash = hash_timer()
            hashes, results = [], {label: [] for label in cases}
            for _ in range(args.count):
                hashes.append(one_hash())
                for label, (body, expect) in cases.items():
                    results[label].append(timed_login(port, body, expect))
    hash_ms = statistics.median(hashes)
    print(f"one argon2id verification (t={DEFAULTS['PASSWORD_HASH_TIME_COST']}, m={DEFAULTS['PASSWORD_HASH_MEMORY_COST']} KiB, "
          f"p={DEFAULTS['PASSWORD_HASH_PARALLELISM']}): p50 {hash_ms:.1f} ms")
    for label, times in results.items():
        times.sort()
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"login, {label:<38} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  = {p50 / hash_ms:.2f} x one hash")


def _disable(port: int) -> None:
    from common import login

    token = login(port, ADMIN_EMAIL, ADMIN_PASSWORD)
    import http.client
    import json

    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/api/v1/users?q=disabled", headers={"Authorization": f"Bearer {token}"})
    user = json.loads(connection.getresponse().read())[0]
    connection.request("DELETE", f"/api/v1/users/{user['id']}", headers={"Authorization": f"Bearer {token}"})
    assert connection.getresponse().status == 204


if __name__ == "__main__":
    main()
