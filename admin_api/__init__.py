"""admin_api: the administration back end of a multi-tenant SaaS platform."""
from __future__ import annotations

import logging
import os
from pathlib import Path

from flask import Blueprint as FlaskBlueprint
from flask import Flask, send_from_directory
from sqlalchemy import event
from swagger_ui_bundle import swagger_ui_path
from werkzeug.middleware.proxy_fix import ProxyFix

from admin_api.config import load_config, validate_config
from admin_api.core import transactions
from admin_api.extensions import api, cors, db, jwt, migrate

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LIST_EXPOSED_HEADERS = ["X-Total-Count", "X-Total-Count-Estimated", "X-Pagination", "ETag",
                        "Content-Disposition", "X-Request-ID"]

API_DESCRIPTION = """Administration API of the platform: tenants, users, profiles, invitations, feature flags,
Cedar policies, audit events.

* **Auth**: `POST /api/v1/auth/login`, then *Authorize* with the `access_token` (Bearer).
* **Errors** are JSON `{code, status, message, errors?}`; `errors` maps a field to its messages.
* **Lists** take `page` (from 1), `page_size` (1-100, default 25) and `sort` (a documented field, `-` for
  descending); unknown query arguments are refused with 422. Totals are in `X-Total-Count` and `X-Pagination`;
  on very large unfiltered lists the total may be the database's estimate, flagged by
  `X-Total-Count-Estimated: true`.
* **Tenancy**: another tenant's resources answer 404, exactly like missing ones.
* **Concurrency**: single resources carry an `ETag`; writes honour `If-Match` (412 when stale) and work without it.
* **Deletes are soft**: users are disabled, tenants marked deleted; both come back with `POST .../restore`.
  Disabling a user, resetting its password or deleting its tenant revokes all its tokens at once;
  every change writes one audit event.
* **Uploads** are `multipart/form-data`; bodies above the server's limit are refused with 413 before being read.
"""


def create_app(config: dict | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, errors, logging, CLI."""
    instance_path = os.environ.get("INSTANCE_PATH") or str(PROJECT_ROOT / "instance")  # config.py, SQLite, uploads
    app = Flask(__name__, static_folder=None, instance_path=instance_path, instance_relative_config=True)
    load_config(app, config)
    refuse_fatal_config(app)
    register_extensions(app)
    register_blueprints(app)
    register_error_handlers(app)
    register_logging(app)
    log_config_problems(app)
    register_commands(app)
    return app


def refuse_fatal_config(app: Flask) -> None:
    problems = validate_config(app.config)
    fatal = [p for p in problems if p.severity == "error"]
    if fatal and app.config["APP_ENV"] == "production":
        raise SystemExit("refusing to start: " + "; ".join(f"{p.key}: {p.message}" for p in fatal))


def log_config_problems(app: Flask) -> None:
    """Every insecure or broken setting, logged once at start-up (not in tests)."""
    if not app.config["TESTING"]:
        for problem in validate_config(app.config):
            logging.getLogger("admin_api.config").warning("config %s: %s", problem.key, problem.message)


def _api_settings(app: Flask) -> None:
    app.config.update(
        API_TITLE="admin_api",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",  # served by this server: no CDN
        # validatorUrl None: Swagger UI would otherwise load a badge from validator.swagger.io, sending it our spec URL.
        OPENAPI_SWAGGER_UI_CONFIG={"persistAuthorization": True, "displayRequestDuration": True, "validatorUrl": None},
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            "security": [{"bearerAuth": []}],
            "components": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        },
        JWT_ACCESS_TOKEN_EXPIRES=app.config["JWT_ACCESS_TOKEN_EXPIRES"],
        JWT_REFRESH_TOKEN_EXPIRES=app.config["JWT_REFRESH_TOKEN_EXPIRES"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_ENCODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=app.config["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=app.config["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=app.config["JWT_AUDIENCE"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(app.config["SQLALCHEMY_DATABASE_URI"]),
    )


def _engine_options(url: str) -> dict:
    # hide_parameters: a database error never writes bound values (a password hash, a token hash) to the log.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    # pool_pre_ping: a connection the database dropped (restart, failover, a proxy, pg_terminate_backend) is
    # replaced before a request uses it. One round trip per request; skipping it for connections used less
    # than a second ago cost a 500 on the next request after each such drop.
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 10, "hide_parameters": True}


def _unicode_lower(text):
    return text.lower() if isinstance(text, str) else text


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """Foreign keys on (SQLite ignores them otherwise); WAL so several workers can share the file.

    lower() is Python's: SQLite's folds only ASCII, so "Über" would not match "über" as it does on PostgreSQL.
    """
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def register_extensions(app: Flask) -> None:
    _api_settings(app)
    if app.config["PROXY_FIX_HOPS"]:
        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    db.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    transactions.install(app)
    migrate.init_app(app, db, directory=str(PROJECT_ROOT / "migrations"))
    jwt.init_app(app)
    from admin_api.core.api import ErrorSchema

    api.ERROR_SCHEMA = ErrorSchema  # our error body, extra top-level fields included (flask-smorest's omits them)
    api.init_app(app)
    cors.init_app(
        app,
        resources={r"/api/*": {"origins": app.config["CORS_ORIGINS"]}},
        expose_headers=LIST_EXPOSED_HEADERS,
        allow_headers=["Authorization", "Content-Type", "If-Match", "If-None-Match", "X-Request-ID"],
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        supports_credentials=False,
        max_age=600,
    )
    from admin_api.core.security import register_jwt_callbacks

    register_jwt_callbacks()


def register_blueprints(app: Flask) -> None:
    from admin_api import audit, auth, feature_flags, health, invitations, policies, profiles, tenants, users
    from admin_api.core.api import document_common_errors

    areas = (health, auth, tenants, users, profiles, invitations, feature_flags, policies, audit)
    for area in areas:
        api.register_blueprint(area.blp)
    app.register_blueprint(swagger_assets())
    document_common_errors(api)


def swagger_assets() -> FlaskBlueprint:
    """Swagger UI's JS and CSS, from the swagger_ui_bundle package."""
    assets = FlaskBlueprint("swagger_assets", __name__)

    @assets.get("/api/docs/assets/<path:filename>")
    def swagger_asset(filename):
        return send_from_directory(swagger_ui_path, filename, max_age=3600)

    return assets


def register_error_handlers(app: Flask) -> None:
    from admin_api.core.errors import register_error_handlers as register

    register(app)


def register_logging(app: Flask) -> None:
    from admin_api.core.http import register_http_conventions
    from admin_api.core.requestlog import register_request_log

    register_request_log(app)
    register_http_conventions(app)


def register_commands(app: Flask) -> None:
    from admin_api.cli import register

    register(app)
