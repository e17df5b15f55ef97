"""Settings: defaults < instance/config.py < environment < the mapping passed to create_app.

`validate_config()` lists insecure or broken settings; it feeds `/config/errors`
and stops start-up when a problem is fatal (severity "error" in production).
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass

DEV_SECRET = "dev-insecure-secret-change-me-before-production"

# Every setting with its default. The type of the default says how an
# environment variable of the same name is parsed.
DEFAULTS: dict[str, object] = {
    "APP_ENV": "development",  # development | testing | production
    "SECRET_KEY": DEV_SECRET,
    "JWT_SECRET_KEY": DEV_SECRET,
    "DATABASE_URL": "",  # empty: SQLite file in instance/
    "JWT_ACCESS_TOKEN_EXPIRES": 900,  # seconds
    "JWT_REFRESH_TOKEN_EXPIRES": 14 * 24 * 3600,
    "JWT_ISSUER": "admin_api",
    "JWT_AUDIENCE": "admin_api",
    "CORS_ORIGINS": ["http://localhost:3000", "http://localhost:5173"],
    "UPLOAD_FOLDER": "",  # empty: instance/uploads/photos
    "MAX_CONTENT_LENGTH": 5 * 1024 * 1024 + 64 * 1024,  # a 5 MiB photo plus multipart overhead
    "PHOTO_MAX_BYTES": 5 * 1024 * 1024,  # one uploaded photo file (more: 413)
    "PHOTO_MAX_PIXELS": 40_000_000,  # width x height of an uploaded photo (more: 422, a decompression bomb)
    "LOGIN_MAX_FAILURES_PER_ACCOUNT": 5,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 20,
    "LOGIN_FAILURE_WINDOW": 900,  # seconds
    "PASSWORD_HASH_TIME_COST": 3,
    "PASSWORD_HASH_MEMORY_COST": 65536,  # KiB
    "PASSWORD_HASH_PARALLELISM": 4,
    "RESET_TOKEN_TTL": 3600,  # seconds a password reset token works
    "INVITATION_TTL": 7 * 24 * 3600,  # seconds an invitation can be accepted
    "PROXY_FIX_HOPS": 0,  # trusted reverse proxies in front of gunicorn
    "COUNT_ESTIMATE_THRESHOLD": 100_000,  # rows above which unfiltered totals are estimated
    "LOG_LEVEL": "INFO",
}

SECRET_KEYS = {"SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL"}


def parse_env_value(default: object, raw: str) -> object:
    """Parse an environment string into the type of the setting's default."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def load_config(app, overrides: dict | None) -> None:
    """Fill app.config in layers and remember where each value came from."""
    sources: dict[str, str] = {}
    for key, value in DEFAULTS.items():
        app.config[key] = value
        sources[key] = "default"
    before = dict(app.config)
    app.config.from_pyfile("config.py", silent=True)
    for key, value in app.config.items():
        if key not in before or before[key] is not value:
            sources[key] = "instance"
    for key, default in DEFAULTS.items():
        if key in os.environ:
            try:
                app.config[key] = parse_env_value(default, os.environ[key])
            except ValueError:
                raise SystemExit(f"config: {key} must be {type(default).__name__}, got {os.environ[key]!r}")
            sources[key] = "environment"
    for key, value in (overrides or {}).items():
        app.config[key] = value
        sources[key] = "override"
    use_generated_secrets(app, sources)
    app.config["CONFIG_SOURCES"] = sources
    derive_settings(app)


GENERATED_SECRETS_FILE = "generated_secrets.json"


def use_generated_secrets(app, sources: dict[str, str]) -> None:
    """Outside production, secrets nobody set are random ones kept in the instance folder, never the built-in one.

    The built-in value is public (it is in this file): tokens signed with it
    could be forged by anyone. Production refuses to start without real ones
    (several servers must share them, so none may be made up on the spot).
    """
    if app.config["APP_ENV"] == "production":
        return
    unset = [key for key in ("SECRET_KEY", "JWT_SECRET_KEY") if app.config[key] == DEV_SECRET]
    if not unset:
        return
    generated = _instance_secrets(os.path.join(app.instance_path, GENERATED_SECRETS_FILE))
    for key in unset:
        app.config[key] = generated[key]
        sources[key] = "generated"


def _instance_secrets(path: str) -> dict[str, str]:
    """Read the instance's generated secrets, making them the first time (atomically: workers start together)."""
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fresh = {key: secrets.token_urlsafe(48) for key in ("SECRET_KEY", "JWT_SECRET_KEY")}
        temporary = f"{path}.{os.getpid()}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(fresh, handle)
        try:
            os.link(temporary, path)  # fails if another process got there first: then theirs wins
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    with open(path) as handle:
        return json.load(handle)


def derive_settings(app) -> None:
    """Turn our settings into the names the extensions read."""
    config = app.config
    os.makedirs(app.instance_path, exist_ok=True)
    if not config["DATABASE_URL"]:
        path = os.path.join(app.instance_path, "admin_api.db")
        # It holds password hashes: made readable by its owner only (SQLite gives its WAL files the same mode).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        config["DATABASE_URL"] = "sqlite:///" + path
    config["SQLALCHEMY_DATABASE_URI"] = normalize_database_url(config["DATABASE_URL"])
    if not config["UPLOAD_FOLDER"]:
        config["UPLOAD_FOLDER"] = os.path.join(app.instance_path, "uploads", "photos")
    config["TESTING"] = config["APP_ENV"] == "testing" or config.get("TESTING", False)


def normalize_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class Problem:
    key: str
    severity: str  # "error" | "warning"
    message: str


def validate_config(config) -> list[Problem]:
    """Return the insecure or broken settings; errors stop a production start."""
    problems: list[Problem] = []
    production = config["APP_ENV"] == "production"
    severity = "error" if production else "warning"
    for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
        value = config.get(key) or ""
        if value == DEV_SECRET:
            problems.append(Problem(key, severity, f"{key} is the built-in development secret; set a random value"))
        elif len(value) < 32:
            problems.append(Problem(key, severity, f"{key} is shorter than 32 characters"))
    if config["APP_ENV"] not in {"development", "testing", "production"}:
        problems.append(Problem("APP_ENV", "error", "APP_ENV must be development, testing or production"))
    if production and config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        problems.append(Problem("DATABASE_URL", "warning", "SQLite in production: use PostgreSQL"))
    if not 60 <= config["JWT_ACCESS_TOKEN_EXPIRES"] <= 24 * 3600:
        problems.append(Problem("JWT_ACCESS_TOKEN_EXPIRES", severity, "access token lifetime should be 60 s to 24 h"))
    if not 60 <= config["RESET_TOKEN_TTL"] <= 7 * 24 * 3600:
        problems.append(Problem("RESET_TOKEN_TTL", severity, "password reset tokens should live 60 s to 7 days"))
    if not 60 <= config["INVITATION_TTL"] <= 90 * 24 * 3600:
        problems.append(Problem("INVITATION_TTL", severity, "invitations should live 60 s to 90 days"))
    if config["JWT_REFRESH_TOKEN_EXPIRES"] <= config["JWT_ACCESS_TOKEN_EXPIRES"]:
        problems.append(Problem("JWT_REFRESH_TOKEN_EXPIRES", "error", "refresh tokens must outlive access tokens"))
    if "*" in config["CORS_ORIGINS"]:
        problems.append(Problem("CORS_ORIGINS", severity, "CORS '*' lets any web page call the API with a user's token"))
    if config["MAX_CONTENT_LENGTH"] < config["PHOTO_MAX_BYTES"]:
        problems.append(Problem("MAX_CONTENT_LENGTH", "warning",
                                "smaller than PHOTO_MAX_BYTES: photos near the limit are refused with 413"))
    upload = config["UPLOAD_FOLDER"]
    try:
        os.makedirs(upload, exist_ok=True)
        writable = os.access(upload, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        problems.append(Problem("UPLOAD_FOLDER", "error", f"uploads folder {upload} is not writable"))
    return problems
