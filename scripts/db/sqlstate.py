"""SQLSTATE codes by name, once for the whole project (PostgreSQL Appendix A, "Error Codes").

The names come from ``psycopg2.errorcodes`` so that no module spells a five-character code.
"""

from __future__ import annotations

from psycopg2 import errorcodes
from sqlalchemy.exc import DBAPIError

DEADLOCK_DETECTED = errorcodes.DEADLOCK_DETECTED
DUPLICATE_DATABASE = errorcodes.DUPLICATE_DATABASE
DUPLICATE_OBJECT = errorcodes.DUPLICATE_OBJECT
DUPLICATE_TABLE = errorcodes.DUPLICATE_TABLE
INSUFFICIENT_PRIVILEGE = errorcodes.INSUFFICIENT_PRIVILEGE
LOCK_NOT_AVAILABLE = errorcodes.LOCK_NOT_AVAILABLE
QUERY_CANCELED = errorcodes.QUERY_CANCELED
SERIALIZATION_FAILURE = errorcodes.SERIALIZATION_FAILURE
UNDEFINED_TABLE = errorcodes.UNDEFINED_TABLE
ADMIN_SHUTDOWN = errorcodes.ADMIN_SHUTDOWN
CANNOT_CONNECT_NOW = errorcodes.CANNOT_CONNECT_NOW
CRASH_SHUTDOWN = errorcodes.CRASH_SHUTDOWN
READ_ONLY_SQL_TRANSACTION = errorcodes.READ_ONLY_SQL_TRANSACTION

# Lost a race for a lock or a snapshot: the same transaction may simply be run again.
RETRYABLE = frozenset({LOCK_NOT_AVAILABLE, DEADLOCK_DETECTED, SERIALIZATION_FAILURE})


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a driver error (wrapped by SQLAlchemy or not), else None."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(orig, "pgcode", None)


def describe(code: str | None) -> str:
    """``55P03`` -> ``lock not available``: the condition name as a person reads it."""
    if code is None:
        return "unknown error"
    return errorcodes.lookup(code).lower().replace("_", " ")


def privilege_hint(message: str, role: str | None) -> str:
    """What to do about an INSUFFICIENT_PRIVILEGE error, told apart by its message.

    ALTER, DROP, CREATE INDEX and COMMENT need ownership ("must be owner of table users"),
    and ownership is not a privilege GRANT can give: only the owner, a member of the owning
    role, or a superuser may (PostgreSQL docs, "Privileges", 5.8).
    """
    if "must be owner of" in message:
        member = f"GRANT <owning role> TO {role}" if role else "GRANT <owning role> TO <role>"
        return (
            "run it as the table's owner or a member of the owning role"
            f" ({member}); ownership is not a privilege GRANT can give"
        )
    return f"grant the privilege to role {role!r}, or run it as the schema owner"
