"""A small closed-loop HTTP load generator (keep-alive, several processes) for the benchmarks.

Each process opens `threads` persistent connections and sends requests for
`seconds`; the result is requests/s, latency percentiles in ms, and the CPU the
server side spent per request: the machine's busy CPU time (/proc/stat) less
what the load generator and this process used. That counts gunicorn and the
database alike, and unlike requests/s it does not move with scheduling.
"""
from __future__ import annotations

import http.client
import multiprocessing
import os
import resource
import statistics
import threading
import time


def _worker(host, port, path, headers, seconds, threads, queue):
    latencies, errors = [], 0
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def loop():
        nonlocal errors
        connection = http.client.HTTPConnection(host, port, timeout=30)
        mine, bad = [], 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    bad += 1
            except (OSError, http.client.HTTPException):
                bad += 1
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=30)
                continue
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
            errors += bad

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    queue.put((latencies, errors))


def run(host: str, port: int, path: str, *, headers: dict | None = None, seconds: float = 10,
        processes: int = 2, threads: int = 4) -> dict:
    """Load `path` and return {'rps', 'p50_ms', 'p99_ms', 'requests', 'errors'}."""
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_worker, args=(host, port, path, headers or {}, seconds, threads, queue))
             for _ in range(processes)]
    busy_before, ours_before = _busy_cpu_seconds(), _our_cpu_seconds()
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - started
    server_cpu = (_busy_cpu_seconds() - busy_before) - (_our_cpu_seconds() - ours_before)
    return summary([x for lat, _ in results for x in lat], sum(e for _, e in results), elapsed, server_cpu)


def _busy_cpu_seconds() -> float:
    """CPU time the whole machine spent busy so far (user, nice, system, irq, softirq; not idle or steal)."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq = (int(n) for n in stat.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    """CPU time of this process and of its children that ended (the load generator's processes)."""
    ours = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ours.ru_utime + ours.ru_stime + children.ru_utime + children.ru_stime


def summary(latencies: list, errors: int, elapsed: float, server_cpu: float) -> dict:
    """{'rps', 'p50_ms', 'p99_ms', 'cpu_ms', 'requests', 'errors'} of requests that took `latencies` seconds in
    `elapsed`, the server spending `server_cpu` seconds of CPU on them (cpu_ms: per request)."""
    latencies = sorted(latencies)
    if not latencies:
        return {"rps": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "cpu_ms": 0.0, "requests": 0, "errors": errors,
                "latencies": [], "elapsed": elapsed, "server_cpu": server_cpu}
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "cpu_ms": server_cpu * 1000 / len(latencies),
        "requests": len(latencies),
        "errors": errors,
        "latencies": latencies,
        "elapsed": elapsed,
        "server_cpu": server_cpu,
    }


def combined(parts: list[dict]) -> dict:
    """One result from runs made one after another (their requests and their time added up)."""
    return summary([x for part in parts for x in part["latencies"]], sum(part["errors"] for part in parts),
                   sum(part["elapsed"] for part in parts), sum(part["server_cpu"] for part in parts))


def warm(host: str, port: int, path: str, headers: dict | None = None, count: int = 50) -> None:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    for _ in range(count):
        connection.request("GET", path, headers=headers or {})
        connection.getresponse().read()
    connection.close()
