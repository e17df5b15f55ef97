"""The Cedar engine: the platform schema, the built-in role policies, live policy sets, evaluate()."""
from admin_api.policy.evaluator import BUILTIN, SCHEMA_TEXT, Bundle, Decision, Registered, evaluate, schema  # noqa: F401
