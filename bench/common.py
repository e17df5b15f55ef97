"""Shared by the benchmarks: a scratch database, the flask CLI, a gunicorn server."""
from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ADMIN_EMAIL = "bench-admin@example.test"
ADMIN_PASSWORD = "bench-admin-password-2026"
DEMO_PASSWORD = "demo-password-2026"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def scratch_database(kind: str, name: str):
    """Yield the URL of a new, empty database ('sqlite' or a postgresql:// URL); drop it afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/{name}.db"
        return
    import psycopg

    base = kind
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = base.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scratch_folder() -> str:
    """A temporary folder, removed when the benchmark ends."""
    path = tempfile.mkdtemp(prefix="bench-uploads-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def app_env(database_url: str, **extra) -> dict:
    env = dict(os.environ)
    env.update(
        FLASK_APP="wsgi",
        APP_ENV="development",
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_urlsafe(32),
        JWT_SECRET_KEY=secrets.token_urlsafe(32),
        JWT_ACCESS_TOKEN_EXPIRES="3600",
        UPLOAD_FOLDER=_scratch_folder(),
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def flask(env: dict, *args: str) -> float:
    """Run a flask command; return its wall time in seconds."""
    started = time.perf_counter()
    subprocess.run([str(BIN / "flask"), *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


@contextlib.contextmanager
def gunicorn(env: dict, app: str = "wsgi:app"):
    """Serve `app` with the project's gunicorn.conf.py on a free port; yield the port."""
    port = free_port()
    env = {**env, "PORT": str(port)}
    log = open(os.devnull, "w")
    proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", app], cwd=ROOT, env=env,
                            stdout=log, stderr=log)
    try:
        for _ in range(200):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not start")
        time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def post_json(port: int, path: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, (json.loads(data) if data else {})


def login(port: int, email: str, password: str) -> str:
    status, body = post_json(port, "/api/v1/auth/login", {"email": email, "password": password})
    if status != 200:
        raise RuntimeError(f"login failed: {status} {body}")
    return body["access_token"]


def analyze(database_url: str) -> None:
    """Planner statistics and visibility map as autovacuum would keep them in production (after bulk inserts)."""
    if database_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
