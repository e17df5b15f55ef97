"""Configuration: defaults < instance/config.py < environment < create_app's mapping; production refuses bad secrets."""
import logging

import pytest

from admin_api import create_app
from admin_api.config import DEV_SECRET, validate_config

GOOD = "a-production-secret-that-is-long-enough-0123456789"


@pytest.fixture
def instance(tmp_path, monkeypatch):
    """An empty instance folder of our own, and no stray settings from the test runner's environment."""
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    for key in ("APP_ENV", "SECRET_KEY", "JWT_SECRET_KEY", "DATABASE_URL", "JWT_ACCESS_TOKEN_EXPIRES", "CORS_ORIGINS",
                "UPLOAD_FOLDER"):
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_layers_override_in_order(instance, monkeypatch):
    (instance / "config.py").write_text("JWT_ACCESS_TOKEN_EXPIRES = 600\nCORS_ORIGINS = ['https://console.example']\n"
                                        "LOGIN_FAILURE_WINDOW = 60\n")
    monkeypatch.setenv("JWT_ACCESS_TOKEN_EXPIRES", "300")
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example, https://b.example")
    app = create_app({"LOGIN_FAILURE_WINDOW": 30})
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == 300  # environment beats instance/config.py
    assert app.config["CORS_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert app.config["LOGIN_FAILURE_WINDOW"] == 30  # the mapping beats everything
    assert app.config["LOGIN_MAX_FAILURES_PER_ACCOUNT"] == 5  # untouched default
    sources = app.config["CONFIG_SOURCES"]
    assert (sources["JWT_ACCESS_TOKEN_EXPIRES"], sources["LOGIN_FAILURE_WINDOW"], sources["LOGIN_MAX_FAILURES_PER_ACCOUNT"]) \
        == ("environment", "override", "default")


def test_instance_file_beats_defaults(instance):
    (instance / "config.py").write_text("JWT_ACCESS_TOKEN_EXPIRES = 600\n")
    app = create_app()
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"] == 600 and app.config["CONFIG_SOURCES"]["JWT_ACCESS_TOKEN_EXPIRES"] == "instance"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance / 'admin_api.db'}"
    assert app.config["UPLOAD_FOLDER"] == str(instance / "uploads" / "photos")


def test_the_default_database_file_is_private_to_its_owner(instance):
    create_app()
    database = instance / "admin_api.db"
    assert database.exists() and database.stat().st_mode & 0o777 == 0o600


def test_postgres_urls_use_psycopg_3(instance):
    app = create_app({"DATABASE_URL": "postgres://u:p@db.example/admin"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example/admin"


def test_a_malformed_environment_value_stops_start_up_in_one_line(instance, monkeypatch):
    monkeypatch.setenv("JWT_ACCESS_TOKEN_EXPIRES", "fifteen minutes")
    with pytest.raises(SystemExit) as stopped:
        create_app()
    assert str(stopped.value) == "config: JWT_ACCESS_TOKEN_EXPIRES must be int, got 'fifteen minutes'"


@pytest.mark.parametrize("secrets", [
    {},  # the built-in development secrets
    {"SECRET_KEY": GOOD},
    {"JWT_SECRET_KEY": GOOD},
    {"SECRET_KEY": GOOD, "JWT_SECRET_KEY": "short"},
])
def test_production_refuses_to_start_with_a_default_or_short_secret(instance, secrets):
    with pytest.raises(SystemExit) as stopped:
        create_app({"APP_ENV": "production", **secrets})
    message = str(stopped.value)
    assert message.startswith("refusing to start: ") and "SECRET_KEY" in message
    assert GOOD not in message and DEV_SECRET not in message  # never print a secret


def test_production_starts_with_real_secrets(instance):
    app = create_app({"APP_ENV": "production", "SECRET_KEY": GOOD, "JWT_SECRET_KEY": GOOD[::-1]})
    assert app.config["APP_ENV"] == "production" and not app.config["TESTING"]


def test_development_never_signs_with_the_public_default_secret(instance):
    """Secrets nobody set are random ones kept in the instance folder (0600), the same for every worker."""
    app = create_app()
    secret, jwt_secret = app.config["SECRET_KEY"], app.config["JWT_SECRET_KEY"]
    assert DEV_SECRET not in (secret, jwt_secret) and len(secret) >= 32 and secret != jwt_secret
    assert app.config["CONFIG_SOURCES"]["JWT_SECRET_KEY"] == "generated"
    stored = instance / "generated_secrets.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    again = create_app()  # another worker, or the next start
    assert (again.config["SECRET_KEY"], again.config["JWT_SECRET_KEY"]) == (secret, jwt_secret)
    assert "SECRET_KEY" not in {p.key for p in validate_config(app.config)}


def test_a_set_secret_is_used_as_is(instance, monkeypatch):
    monkeypatch.setenv("JWT_SECRET_KEY", GOOD)
    app = create_app()
    assert app.config["JWT_SECRET_KEY"] == GOOD and app.config["CONFIG_SOURCES"]["JWT_SECRET_KEY"] == "environment"


def test_development_logs_its_config_problems_at_start(instance, caplog):
    logger = logging.getLogger("admin_api")  # it does not propagate to the root logger: hook it directly
    logger.addHandler(caplog.handler)
    try:
        create_app({"SECRET_KEY": "short", "LOG_LEVEL": "WARNING"})
    finally:
        logger.removeHandler(caplog.handler)
    assert any(r.name == "admin_api.config" and "SECRET_KEY" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("overrides, key", [
    ({"JWT_ACCESS_TOKEN_EXPIRES": 10}, "JWT_ACCESS_TOKEN_EXPIRES"),
    ({"JWT_REFRESH_TOKEN_EXPIRES": 60, "JWT_ACCESS_TOKEN_EXPIRES": 900}, "JWT_REFRESH_TOKEN_EXPIRES"),
    ({"CORS_ORIGINS": ["*"]}, "CORS_ORIGINS"),
    ({"APP_ENV": "staging"}, "APP_ENV"),
    ({"RESET_TOKEN_TTL": 0}, "RESET_TOKEN_TTL"), ({"RESET_TOKEN_TTL": 30 * 24 * 3600}, "RESET_TOKEN_TTL"),
    ({"INVITATION_TTL": 30}, "INVITATION_TTL"), ({"INVITATION_TTL": 365 * 24 * 3600}, "INVITATION_TTL"),
])
def test_broken_settings_are_reported(instance, overrides, key):
    app = create_app({"SECRET_KEY": GOOD, "JWT_SECRET_KEY": GOOD, **overrides})
    assert key in {p.key for p in validate_config(app.config)}


def test_an_unwritable_uploads_folder_is_reported(instance, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    app = create_app({"SECRET_KEY": GOOD, "JWT_SECRET_KEY": GOOD, "UPLOAD_FOLDER": str(blocker / "photos")})
    assert [p.severity for p in validate_config(app.config) if p.key == "UPLOAD_FOLDER"] == ["error"]
