"""How a request's transaction ends when the view did not end it: a read that went well commits.

Services commit their writes themselves; whatever is left open at the end of a
request is rolled back, as before, unless the request was a GET or HEAD that
answered below 400 and wrote nothing. That one commits instead: for a
transaction that wrote nothing, COMMIT and ROLLBACK do the same, but psycopg
forgets every prepared statement of the connection on ROLLBACK, so PostgreSQL
would plan each query of each request afresh (about a tenth of a list request's
CPU; see bench/list_users.py).

"Wrote nothing" is decided from the statements sent in the transaction: any
statement other than a SELECT counts as a write, and then the rollback stands.
"""
from __future__ import annotations

import logging

from flask import Flask, g, request
from sqlalchemy import event

from admin_api.extensions import db

log = logging.getLogger("admin_api.db")

_WROTE = "admin_api.wrote"  # key in the connection's info: a non-SELECT statement ran in this transaction
_READ_WENT_WELL = "_read_went_well"
READ_METHODS = ("GET", "HEAD")


def install(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    event.listen(engine, "begin", _transaction_begins)
    event.listen(engine, "before_cursor_execute", _statement_sent)
    app.after_request(_note_a_read_that_went_well)
    # Registered after db.init_app: teardown functions run in reverse order, so this runs before the
    # session is removed (which rolls back whatever is still open).
    app.teardown_appcontext(_commit_a_read_that_went_well)


def _transaction_begins(connection) -> None:
    connection.info[_WROTE] = False


def _statement_sent(connection, _cursor, statement: str, _parameters, _context, _executemany) -> None:
    if not statement.lstrip()[:6].upper() == "SELECT":
        connection.info[_WROTE] = True


def _note_a_read_that_went_well(response):
    if request.method in READ_METHODS and response.status_code < 400:
        setattr(g, _READ_WENT_WELL, True)
    return response


def _commit_a_read_that_went_well(error) -> None:
    if error is not None or not g.pop(_READ_WENT_WELL, False) or not db.session.registry.has():
        return
    session = db.session()
    if not session.in_transaction() or session.new or session.dirty or session.deleted:
        return  # nothing open, or ORM changes not flushed yet: writes, which the rollback undoes
    if session.connection().info.get(_WROTE, True):
        return
    try:
        session.commit()
    except Exception:  # noqa: BLE001 - the answer is already made; the rollback that follows is harmless
        log.warning("ending a read transaction with COMMIT failed; rolling back", exc_info=True)
        session.rollback()
