"""Extensions, created unbound; create_app binds them. Imports nothing from the areas."""
import threading
import time

from flask import current_app
from flask_cors import CORS
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Named constraints, so Alembic batch migrations on SQLite can address them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class RememberingJWTManager(JWTManager):
    """flask-jwt-extended's manager, remembering the tokens whose signature and claims it already checked.

    A session sends the same token on every request, and parsing it three times and checking its HMAC
    again was a tenth of a list request's work. A remembered token is the very same string, so nothing
    about it can have changed but the clock, and an expired one is decoded afresh (and refused).
    Revocation is not remembered here: the user lookup reads it from the database on every request.
    """

    MAX_REMEMBERED = 10_000  # tokens per worker (about 2 KiB each); the oldest is forgotten first

    def init_app(self, app, add_context_processor: bool = False) -> None:
        super().init_app(app, add_context_processor)
        app.extensions["verified_tokens"] = ({}, threading.Lock())  # per app: each app has its own key

    def _decode_jwt_from_config(self, encoded_token: str, csrf_value=None, allow_expired: bool = False) -> dict:
        if allow_expired or csrf_value:
            return super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        remembered, lock = current_app.extensions["verified_tokens"]
        payload = remembered.get(encoded_token)
        if payload is not None and time.time() < payload["exp"]:
            return dict(payload)
        payload = super()._decode_jwt_from_config(encoded_token, csrf_value, allow_expired)
        if isinstance(payload.get("exp"), (int, float)):
            with lock:
                if len(remembered) >= self.MAX_REMEMBERED:
                    del remembered[next(iter(remembered))]
                remembered[encoded_token] = dict(payload)
        return payload


db = SQLAlchemy(model_class=Base)
migrate = Migrate(render_as_batch=True)
jwt = RememberingJWTManager()
api = Api()
cors = CORS()
