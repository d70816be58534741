"""The schema-diff validator: the models and the revision-owned objects against the live database.

``validate_schema(url)`` returns a :class:`SchemaReport`; ``report.drift`` is true when any
finding is an error. Modules: validate (the orchestration), catalog (the live schema, a few
pg_catalog queries), model (what the MetaData says), normalise (the server normalises the
model's expressions), owned (what the revisions create that models cannot express),
compare, report.
"""

from __future__ import annotations

from scripts.errors import CannotCheck
from scripts.findings import Finding
from scripts.schema_diff.findings import SchemaReport
from scripts.schema_diff.owned import OwnedObjects
from scripts.schema_diff.validate import validate_schema

__all__ = ["CannotCheck", "Finding", "OwnedObjects", "SchemaReport", "validate_schema"]
