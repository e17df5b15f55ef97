"""Readiness: the database answers and its migrations are at head."""
from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from admin_api.core.errors import AppError
from admin_api.extensions import db

log = logging.getLogger("admin_api.health")
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class NotReady(AppError):
    code = 503
    message = "Not ready."


@cache
def migration_heads() -> frozenset[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


def readiness() -> dict:
    try:
        current = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
    except Exception:
        db.session.rollback()
        log.warning("readiness: database unreachable or not migrated", exc_info=True)
        raise NotReady("Database unreachable or not migrated.")
    if current != set(migration_heads()):
        raise NotReady("Database schema is not at the latest migration: run `flask db upgrade`.")
    return {"status": "ok", "database": "ok", "migrations": "head"}
