"""Sign-in cost next to one argon2id hash, and the same work for every kind of failure (CASES C13).

    .venv/bin/python bench/login.py [--database sqlite|postgresql://...] [--count 60]

Serves the app with gunicorn (production argon2id settings), then signs in
sequentially: valid credentials, a wrong password, an unknown email, a disabled
user. Prints p50/p99 of each next to one argon2id verification in this process.
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


def one_hash_ms(count: int) -> float:
    hasher = PasswordHasher(time_cost=DEFAULTS["PASSWORD_HASH_TIME_COST"], memory_cost=DEFAULTS["PASSWORD_HASH_MEMORY_COST"],
                            parallelism=DEFAULTS["PASSWORD_HASH_PARALLELISM"])
    stored = hasher.hash(ADMIN_PASSWORD)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        hasher.verify(stored, ADMIN_PASSWORD)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def timed_logins(port: int, body: dict, count: int, expect: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status, _ = post_json(port, "/api/v1/auth/login", body)
        times.append((time.perf_counter() - started) * 1000)
        assert status == expect, (status, body)
    return sorted(times)


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
            timed_logins(port, cases["valid credentials (200)"][0], 5, 200)  # warm up
            results = {label: timed_logins(port, body, args.count, expect) for label, (body, expect) in cases.items()}
    hash_ms = one_hash_ms(args.count)
    print(f"one argon2id verification (t={DEFAULTS['PASSWORD_HASH_TIME_COST']}, m={DEFAULTS['PASSWORD_HASH_MEMORY_COST']} KiB, "
          f"p={DEFAULTS['PASSWORD_HASH_PARALLELISM']}): p50 {hash_ms:.1f} ms")
    for label, times in results.items():
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
