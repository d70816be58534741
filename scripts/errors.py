"""The errors a user can cause: each carries one line saying what went wrong and what to do."""

from __future__ import annotations


class AlpDbError(Exception):
    """A problem the user can fix. ``str()`` is one line: the problem, then the hint."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class ConfigError(AlpDbError):
    """A malformed setting: URL, option, environment variable."""


class DatabaseUnreachable(AlpDbError):
    """The server could not be reached or refused the login."""


class LoginRefused(AlpDbError):
    """The server answered but refused the login or has no such database: a setting to fix,
    not an outage to wait out."""


class PermissionDenied(AlpDbError):
    """The role lacks a privilege the operation needs."""


class ConnectionLost(AlpDbError):
    """The session ended mid-operation: the server restarted or terminated it, or the network broke."""


class LockTimeout(AlpDbError):
    """A lock could not be taken within the configured time."""


class MigrationFailed(AlpDbError):
    """A revision raised; its transaction was rolled back."""


class UnknownRevision(AlpDbError):
    """A revision id that the versions directory does not contain."""


class ChecksumMismatch(AlpDbError):
    """An applied revision's file changed after it was applied."""


class DevDatabaseError(AlpDbError):
    """The local development cluster could not be initialised, started or stopped."""


class LintUnavailable(AlpDbError):
    """The SQL linter (squawk) is missing or could not read a revision's SQL."""


class BackupFailed(AlpDbError):
    """pg_dump is missing, refused, or could not write the backup file."""


class ProductionDatabase(AlpDbError):
    """The target looks like production and --force was not given."""


class AlreadySeeded(AlpDbError):
    """The target already holds seed data and --replace was not given."""


class SeedFailed(AlpDbError):
    """Generated rows broke a rule the database enforces; nothing was loaded."""


class ReferencingData(AlpDbError):
    """``seed --replace`` would empty a table that references seeded ones and holds other rows."""


class HealthCheckFailed(AlpDbError):
    """The database could not be checked (exit 2)."""


class UnknownTable(AlpDbError):
    """A table name that the database's catalog does not know."""


class PartitionError(AlpDbError):
    """A partition operation that could not be done as asked; nothing of it was kept."""


class NotPartitioned(PartitionError):
    """A table that is not range-partitioned on one time column, where partitions were asked for."""


class PartitionOverlap(PartitionError):
    """A partition range that collides with an existing partition of another shape or name."""


class DataMigrationError(AlpDbError):
    """A batched data migration cannot run: unknown table or key, unusable SET/WHERE, a clash."""


class CannotCheck(AlpDbError):
    """validate-schema could not read the schema, so nothing can be said about drift."""


class CannotNormalise(CannotCheck):
    """The server refused to build one of the models' expressions (validate-schema)."""


class PlanFailed(AlpDbError):
    """``migration plan`` could not build or use its scratch copy; the target is unchanged."""
