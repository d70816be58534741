"""``alp-db migration plan``: what each pending revision will lock and rewrite, measured.

The pending revisions run one by one, through the normal runtime, on a scratch copy of the
target's schema (scripts.migrations.scratch); a probe (scripts.migrations.lock_probe) reads
after every statement the locks the migration backend holds, the relations it rewrote, the
tables it scanned and the objects it created or dropped. Each lock is then read for what it
does to the application (scripts.migrations.lock_modes) and weighed by the size of the live
relation on the target (``pg_class.reltuples``, ``pg_total_relation_size``). Nothing on the
target changes; the scratch copy is dropped whatever happens.

A statement is *blocking* when, on a relation that holds rows on the target, the revision's
transaction holds a lock that blocks writes while the statement does work that grows with
the data (a rewrite or a full scan): a metadata-only change under ACCESS EXCLUSIVE is brief
(and the runtime's lock retries keep it from queueing traffic), a rewrite is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from scripts.db.target import resolve_url, session
from scripts.db.urls import redact
from scripts.errors import AlpDbError
from scripts.migrations import lock_modes
from scripts.migrations.lock_probe import Observation, probing
from scripts.migrations.plan_sql import autocommit_locks

# Live sizes of every table and index of the target (partitioned parents: their whole tree).
LIVE_SIZES_SQL = """
SELECT n.nspname || '.' || c.relname,
       CASE WHEN c.relkind IN ('p', 'I')
            THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)
                  FROM pg_partition_tree(c.oid) t)
            ELSE pg_total_relation_size(c.oid) END,
       CASE WHEN c.relkind IN ('p', 'I')
            THEN (SELECT coalesce(sum(greatest(k.reltuples, 0)), 0)
                  FROM pg_partition_tree(c.oid) t JOIN pg_class k ON k.oid = t.relid)
            ELSE c.reltuples END,
       c.relkind::text
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'i', 'I', 'm')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
"""
TABLE_KINDS = frozenset({"r", "p", "m"})
# Weaker locks than this conflict with no statement of the application (lock_modes): not shown.
WEAKEST_REPORTED = lock_modes.STRENGTH["ShareUpdateExclusiveLock"]


@dataclass(frozen=True)
class LiveSize:
    bytes: int
    rows: float  # reltuples: an estimate; -1 (never analysed) counts as unknown

    @property
    def holds_rows(self) -> bool:
        # reltuples is -1 before the first ANALYZE (PostgreSQL 14+); then trust the size:
        # an empty heap with its indexes stays within a few pages
        return self.rows > 0 or (self.rows < 0 and self.bytes > 64 * 1024)


@dataclass(frozen=True)
class LockTaken:
    relation: str
    kind: str  # table, index, ...
    mode: str  # SQL name: ACCESS EXCLUSIVE
    effect: str  # "blocks reads and writes until COMMIT"
    blocks_writes: bool
    measured: bool  # read from pg_locks (False: documented lock of an autocommit statement)


@dataclass(frozen=True)
class StatementPlan:
    sql: str
    autocommit: bool
    duration_ms: float  # on the empty scratch schema
    locks: list[LockTaken]
    rewritten: list[str]
    scanned: list[str]
    created: list[str]
    dropped: list[str]
    risks: list[str]  # one line each, for the DBA
    blocking: bool


@dataclass(frozen=True)
class RevisionPlan:
    revision: str
    description: str  # the docstring's first paragraph
    statements: list[StatementPlan]
    error: str | None = None
    docstring: str = ""  # all of it: what the developer says it locks

    @property
    def blocking(self) -> bool:
        return any(s.blocking for s in self.statements)


@dataclass(frozen=True)
class MigrationPlan:
    target: str  # redacted URL
    current: str | None
    to: str
    scratch: str  # where the measurement ran
    revisions: list[RevisionPlan] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(r.blocking for r in self.revisions)

    @property
    def failed(self) -> bool:
        return any(r.error for r in self.revisions)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocking"] = self.blocking
        for revision, plan in zip(data["revisions"], self.revisions, strict=True):
            revision["blocking"] = plan.blocking
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MigrationPlan:
        """The inverse of :meth:`as_json` (the derived ``blocking`` fields are recomputed)."""
        revisions = []
        for rev in data["revisions"]:
            statements = []
            for st in rev["statements"]:
                fields = {k: v for k, v in st.items() if k != "locks"}
                statements.append(StatementPlan(locks=[LockTaken(**lock) for lock in st["locks"]], **fields))
            fields = {k: v for k, v in rev.items() if k not in ("statements", "blocking")}
            revisions.append(RevisionPlan(statements=statements, **fields))
        fields = {k: v for k, v in data.items() if k not in ("revisions", "blocking")}
        return cls(revisions=revisions, **fields)


_KINDS = {
    "r": "table",
    "p": "partitioned table",
    "i": "index",
    "I": "partitioned index",
    "m": "view",
    "S": "sequence",
}


def _current_heads(conn: Connection) -> list[str]:
    if conn.scalar(text("SELECT to_regclass('alembic_version')")) is None:
        return []
    return list(conn.scalars(text("SELECT version_num FROM alembic_version ORDER BY 1")))


def _live_sizes(conn: Connection) -> dict[str, LiveSize]:
    return {
        name: LiveSize(int(size), float(rows)) for name, size, rows, _ in conn.execute(text(LIVE_SIZES_SQL))
    }


def pending_revisions(config: Any, heads: list[str], to: str) -> list[Any]:
    """The scripts between the target's heads and ``to``, oldest first."""
    from scripts.migrations.api import script_directory

    script = script_directory(config)
    lower = tuple(heads) if heads else "base"
    return list(reversed(list(script.iterate_revisions(to, lower))))


def plan_migrations(
    database_url: str | URL | None = None,
    to: str = "head",
    *,
    progress: Callable[[str], None] | None = None,
) -> MigrationPlan:
    """Measure what each revision between the target's current one and ``to`` locks."""
    from scripts.migrations.api import alembic_config, migrate
    from scripts.migrations.scratch import scratch_copy

    url = resolve_url(database_url)
    with session(url) as conn:
        heads = _current_heads(conn)
        sizes = _live_sizes(conn)
    config = alembic_config(url)
    pending = pending_revisions(config, heads, to)
    plan = MigrationPlan(target=redact(url), current=",".join(heads) or None, to=to, scratch="none needed")
    if not pending:
        return plan
    with scratch_copy(url) as scratch, probing(scratch.url.database or "") as probe:
        plan = MigrationPlan(plan.target, plan.current, to, scratch.where)
        for script in pending:
            if progress is not None:
                progress(f"measuring {script.revision} on the {scratch.where}")
            error = None
            try:
                migrate(scratch.url, script.revision)
            except AlpDbError as exc:
                error = str(exc)
            statements = interpret(probe.take(), sizes)
            plan.revisions.append(
                RevisionPlan(script.revision, script.doc or "", statements, error, script.longdoc or "")
            )
            if error:
                break
    return plan


def _migration_pid(observations: list[Observation]) -> int | None:
    """The backend that ran the revision: the one that wrote alembic_version."""
    return next((o.pid for o in observations if o.bookkeeping), None)


def interpret(observations: list[Observation], sizes: dict[str, LiveSize]) -> list[StatementPlan]:
    """Turn one revision's observations into statements a DBA reads."""
    pid = _migration_pid(observations)
    mine = [o for o in observations if o.pid == pid or pid is None]
    if not mine:
        return []
    existing = mine[0].before.relations  # the relations the target has (the revision did not make)
    statements = []
    held: dict[int, str] = {}  # relation -> mode, in the revision's transaction so far
    for obs in mine:
        if obs.bookkeeping or obs.compiled_select or _is_runtime_setup(obs):
            continue
        if obs.autocommit:
            held = {}
        new_locks = sorted(obs.after.locks - obs.before.locks)
        for oid, mode in obs.after.locks:
            if oid in existing and lock_modes.STRENGTH.get(mode, -1) > lock_modes.STRENGTH.get(
                held.get(oid, ""), -1
            ):
                held[oid] = mode
        statements.append(_statement(obs, existing, new_locks, held, sizes))
    return statements


def _is_runtime_setup(obs: Observation) -> bool:
    """The runtime's own reads and session settings: no lock worth reporting, no change."""
    from scripts.migrations.plan_sql import is_read_or_setting

    return is_read_or_setting(obs.sql) and obs.after.relations == obs.before.relations


def _qualified(name: str, existing: dict[int, tuple[str, str, int]]) -> str:
    """``plan_child`` -> ``public.plan_child`` when exactly one schema has it."""
    if "." in name:
        return name
    matches = [qualified for qualified, _, _ in existing.values() if qualified.split(".", 1)[1] == name]
    return matches[0] if len(matches) == 1 else name


def _name(existing: dict[int, tuple[str, str, int]], oid: int) -> tuple[str, str]:
    name, relkind, _ = existing[oid]
    return name, _KINDS.get(relkind, relkind)


def _statement(
    obs: Observation,
    existing: dict[int, tuple[str, str, int]],
    new_locks: list[tuple[int, str]],
    held: dict[int, str],
    sizes: dict[str, LiveSize],
) -> StatementPlan:
    before, after = obs.before, obs.after
    rewritten = sorted(
        existing[oid][0]
        for oid, (_, _, node) in before.relations.items()
        if oid in after.relations and after.relations[oid][2] != node and node != 0
    )
    scanned = sorted(
        existing[oid][0]
        for oid, count in after.scans.items()
        if oid in existing and count > before.scans.get(oid, 0)
    )
    created = sorted(
        [name for oid, (name, _, _) in after.relations.items() if oid not in before.relations]
        + [name for oid, name in after.constraints.items() if oid not in before.constraints]
    )
    dropped = sorted(
        [name for oid, (name, _, _) in before.relations.items() if oid not in after.relations]
        + [name for oid, name in before.constraints.items() if oid not in after.constraints]
    )
    locks: list[LockTaken] = []
    if obs.autocommit:
        for relation, mode in autocommit_locks(obs.sql):
            relation = _qualified(relation, existing)
            effect = lock_modes.impact(mode)
            locks.append(
                LockTaken(
                    relation, "table", lock_modes.sql_name(mode), effect.text, effect.blocks_writes, False
                )
            )
    for oid, mode in new_locks:
        if oid not in existing or lock_modes.STRENGTH.get(mode, 0) < WEAKEST_REPORTED:
            continue  # made by this revision (nobody else sees it yet), or harmless
        name, kind = _name(existing, oid)
        effect = lock_modes.impact(mode)
        locks.append(
            LockTaken(
                name,
                kind,
                lock_modes.sql_name(mode),
                effect.text + " until COMMIT",
                effect.blocks_writes,
                True,
            )
        )
    risks, blocking = _risks(obs, existing, held, rewritten, scanned, sizes)
    return StatementPlan(
        sql=" ".join(obs.sql.split())[:500],
        autocommit=obs.autocommit,
        duration_ms=round(obs.duration_s * 1000, 1),
        locks=locks,
        rewritten=rewritten,
        scanned=scanned,
        created=created,
        dropped=dropped,
        risks=risks,
        blocking=blocking,
    )


def _risks(
    obs: Observation,
    existing: dict[int, tuple[str, str, int]],
    held: dict[int, str],
    rewritten: list[str],
    scanned: list[str],
    sizes: dict[str, LiveSize],
) -> tuple[list[str], bool]:
    """One line per rewrite or full scan of a relation that holds rows on the target, saying
    which write-blocking locks the transaction holds meanwhile; blocking when there are any."""
    empty = LiveSize(0, 0)
    work = [(name, "rewrites") for name in rewritten]
    work += [(name, "scans") for name in scanned if name not in rewritten]
    heavy = [(name, verb) for name, verb in work if sizes.get(name, empty).holds_rows]
    blockers = []
    if not obs.autocommit:
        for oid, mode in sorted(held.items(), key=lambda item: existing[item[0]][0]):
            name, relkind, _ = existing[oid]
            effect = lock_modes.impact(mode)
            if relkind in TABLE_KINDS and effect.blocks_writes and sizes.get(name, empty).holds_rows:
                blockers.append(f"{lock_modes.sql_name(mode)} on {name} ({effect.text})")
    risks = []
    for name, verb in heavy:
        size = sizes[name].bytes
        line = f"{verb} {name} ({lock_modes.human_size(size)} on the target): expect"
        line += f" {lock_modes.expected_duration(size)}"
        line += f" holding {'; '.join(blockers)}" if blockers else ", while reads and writes go on"
        risks.append(line)
    return risks, bool(heavy and blockers)
