"""The schema the models and the revisions target: one setting, ``public`` by default.

Revisions name their objects unqualified and the models carry no schema, so both mean the
first schema of the migrating session's ``search_path``. A reader of the schema (the
validator) must name that schema itself and never follow ``current_schema()``: a
database- or role-level ``search_path`` (``ALTER DATABASE ... SET search_path = reporting,
public``, or the default ``"$user", public`` with a schema named after the role) would
otherwise point it at another schema ("The Schema Search Path" in the PostgreSQL docs).
"""

from __future__ import annotations

import os

ENV_SCHEMA = "ALP_DB_SCHEMA"
DEFAULT_SCHEMA = "public"


def target_schema(explicit: str | None = None) -> str:
    """Option > ``ALP_DB_SCHEMA`` > ``public``."""
    return explicit or os.environ.get(ENV_SCHEMA) or DEFAULT_SCHEMA
