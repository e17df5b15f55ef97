"""GET /api/v1/users through the whole stack, at 10,000 and 1,000,000 users, next to bare Flask.

    .venv/bin/python bench/list_users.py [--database postgresql://postgres@127.0.0.1:5432/test | sqlite]
                                         [--sizes 10000,1000000] [--seconds 10] [--rounds 5]

For each size: a scratch database, migrations, `flask seed-demo --tenants 100`,
gunicorn with gunicorn.conf.py, then a closed-loop load on page 1 (platform
admin, unfiltered), a deep page, and page 1 as a tenant admin. The floor is
bench/bare_app.py (a fixed 25-item JSON list) under the same gunicorn settings;
beside each size, the same bare app running only the SQLAlchemy page query on
the seeded data.

This machine's speed drifts by tens of percent within minutes (shared cores), so
every figure is measured in --rounds slices that alternate with slices of the
floor, and each ratio is to the floor measured in between: both saw the same machine.
Beside requests/s, each line gives the CPU the server side (gunicorn and the
database) spent per request, and the floor's: the steadier measure of cost.
"""
from __future__ import annotations

import argparse
import os

from common import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DEMO_PASSWORD,
    analyze,
    app_env,
    flask,
    gunicorn,
    login,
    scratch_database,
)
from loadgen import combined, run, warm

FLOOR = "/api/v1/users"  # bench/bare_app.py: a fixed 25-item list


def paired(floor_port: int, port: int, path: str, headers: dict, seconds: float, rounds: int) -> tuple[dict, dict]:
    """`path` and the floor, loaded in alternating slices of seconds/rounds: (the target's result, the floor's)."""
    warm("127.0.0.1", floor_port, FLOOR)
    warm("127.0.0.1", port, path, headers)
    target, floor = [], []
    for _ in range(rounds):
        floor.append(run("127.0.0.1", floor_port, FLOOR, seconds=seconds / rounds))
        target.append(run("127.0.0.1", port, path, headers=headers, seconds=seconds / rounds))
    return combined(target), combined(floor)


def change(before: float, after: float) -> str:
    return f"{100 * (after / before - 1):+.1f} %"


def line(label: str, result: dict, floor: dict) -> str:
    """requests/s and latency, as a share of the floor's requests/s; server CPU per request, the floor's beside it."""
    errors = f"  {result['errors']} errors" if result["errors"] else ""
    return (f"{label:<48} {result['rps']:5.0f} req/s  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:7.2f} ms  "
            f"{100 * result['rps'] / floor['rps']:4.1f} % of {floor['rps']:4.0f} req/s  "
            f"cpu {result['cpu_ms']:5.2f} ms/req, floor {floor['cpu_ms']:4.2f} "
            f"({100 * floor['cpu_ms'] / result['cpu_ms']:4.1f} %){errors}")


def bench_size(database: str, size: int, seconds: float, rounds: int) -> dict:
    with scratch_database(database, f"admin_api_bench_{size}") as url:
        env = app_env(url, LOG_LEVEL="INFO")
        flask(env, "db", "upgrade")
        flask(env, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
        seeded = flask(env, "seed-demo", "--tenants", "100", "--users", str(size), "--prefix", "bench",
                       "--password", DEMO_PASSWORD)
        analyze(url)
        print(f"  seeded {size:,} users in 100 tenants in {seeded:.1f} s ({size / seeded:,.0f} users/s)")
        with gunicorn(env, app="bench.bare_app:app") as bare, gunicorn(env) as port:
            bare_query = paired(bare, bare, "/api/v1/users-query", {}, seconds, rounds)
            print(line(f"{size:>9,} users  bare SQLAlchemy page query, no auth", *bare_query))
            admin = {"Authorization": f"Bearer {login(port, ADMIN_EMAIL, ADMIN_PASSWORD)}"}
            tenant_admin = {"Authorization": f"Bearer {login(port, 'admin@bench-1.example.test', DEMO_PASSWORD)}"}
            deep = max(1, size // 25 // 2)
            results = {}
            for key, label, path, headers in (
                ("page1", "page 1 (platform admin)", "/api/v1/users?page=1", admin),
                ("deep", f"page {deep:,} (deep)", f"/api/v1/users?page={deep}", admin),
                ("tenant", "page 1 (tenant admin, one tenant)", "/api/v1/users?page=1", tenant_admin),
            ):
                results[key] = paired(bare, port, path, headers, seconds, rounds)
                print(line(f"{size:>9,} users  {label}", *results[key]))
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", "postgresql://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL URL (scratch databases are created beside it) or 'sqlite'")
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    print(f"database: {args.database.split('@')[-1]}; gunicorn.conf.py settings; {args.seconds:.0f} s per figure "
          f"in {args.rounds} slices, each ratio to the floor (bare Flask, fixed 25-item list) loaded in between")
    results = {size: bench_size(args.database, size, args.seconds, args.rounds) for size in sizes}
    if len(sizes) >= 2:
        (small, small_floor), (large, large_floor) = results[sizes[0]]["page1"], results[sizes[-1]]["page1"]
        print(f"page 1 at {sizes[-1]:,} vs {sizes[0]:,}: p50 {change(small['p50_ms'], large['p50_ms'])}, "
              f"req/s {change(small['rps'], large['rps'])} "
              f"(as a share of the floor {change(small['rps'] / small_floor['rps'], large['rps'] / large_floor['rps'])}), "
              f"cpu per request {change(small['cpu_ms'], large['cpu_ms'])} "
              f"(in floors {change(small['cpu_ms'] / small_floor['cpu_ms'], large['cpu_ms'] / large_floor['cpu_ms'])})")

if __name__ == "__main__":
    main()
