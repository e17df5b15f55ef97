"""The Cedar evaluator: the platform schema, the built-in role policies, evaluate()."""
from admin_api.policy.evaluator import SCHEMA_TEXT, Decision, evaluate, schema  # noqa: F401
