"""Compare what the revisions own (recorded in owned_objects.py) with the live database:
functions and their attributes, triggers, views, default partitions, extensions, other
schemas, privileges, owners, row-level security and policies, invalid indexes."""

from __future__ import annotations

from collections.abc import Iterator

from scripts.findings import Finding, Severity
from scripts.schema_diff.compare import ABSENT, FIX_NOT_RECORDED, finding, q
from scripts.schema_diff.owned import OwnedObjects
from scripts.schema_diff.states import CatalogState, FunctionState

# Aspects a deployment may manage outside the revisions (--ignore): see README.
IGNORABLE = frozenset({"privileges", "owner"})
RESTORE = "re-create it as {source} does, in a new revision"
FIX_RECORD = (
    "; if a revision made this change, record it: alp-db record-owned > scripts/schema_diff/owned_objects.py"
)


def compare_owned(
    owned: OwnedObjects,
    actual: CatalogState,
    views: dict[str, str],
    ignore: frozenset[str] = frozenset(),
) -> Iterator[Finding]:
    """Everything the revisions create that models cannot express, against what they recorded."""
    yield from compare_functions(owned, actual)
    yield from compare_triggers(owned, actual)
    yield from compare_views(owned, actual, views)
    yield from compare_default_partitions(owned, actual)
    yield from compare_scope(owned, actual)
    yield from compare_row_security(owned, actual)
    if "privileges" not in ignore:
        yield from compare_privileges(owned, actual)
    if "owner" not in ignore:
        yield from compare_owners(owned, actual)
    yield from invalid_indexes(actual)


def function_fix(key: str, want: FunctionState, have: FunctionState) -> str:
    """ALTER FUNCTION puts SECURITY, volatility and SET back in one statement ("ALTER FUNCTION")."""
    clauses = []
    if want.security_definer != have.security_definer:
        clauses.append("SECURITY DEFINER" if want.security_definer else "SECURITY INVOKER")
    if want.volatility != have.volatility:
        clauses.append(want.volatility)
    if want.config != have.config:
        clauses.append("RESET ALL")
        clauses += [f"SET {c.split('=', 1)[0]} = {c.split('=', 1)[1]}" for c in want.config]
    name = f"{q(want.name)}({want.arguments})"
    return f"ALTER FUNCTION {name} {' '.join(clauses)}" + FIX_RECORD


def compare_functions(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    for key, fn in owned.functions.items():
        have = actual.functions.get(key)
        fix = RESTORE.format(source=owned.source(fn.name))
        if have is None:
            yield finding("function", key, f"{fn.language} function returning {fn.result}", ABSENT, fix)
        elif (have.result, have.language, have.body) != (fn.result, fn.language, fn.body):
            yield finding("function", key, fn.body.strip(), have.body.strip(), fix)
        elif have.attributes() != fn.attributes():
            yield finding(
                "function attributes", key, fn.attributes(), have.attributes(), function_fix(key, fn, have)
            )
    for key in sorted(actual.functions.keys() - owned.functions.keys()):
        yield finding(
            "function",
            key,
            "(not created by any revision)",
            actual.functions[key].language + " function",
            FIX_NOT_RECORDED,
        )


def compare_triggers(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    for key, trig in owned.triggers.items():
        live_trigger = actual.triggers.get(key)
        fix = RESTORE.format(source=owned.source(trig.name))
        if live_trigger is None:
            yield finding("trigger", key, trig.definition, ABSENT, fix)
        elif live_trigger.definition != trig.definition:
            yield finding("trigger", key, trig.definition, live_trigger.definition, fix)
        elif not live_trigger.enabled:
            yield finding(
                "trigger",
                key,
                "enabled",
                "disabled",
                f"ALTER TABLE {q(trig.table)} ENABLE TRIGGER {q(trig.name)}",
            )
    for key in sorted(actual.triggers.keys() - owned.triggers.keys()):
        yield finding(
            "trigger", key, "(not created by any revision)", actual.triggers[key].definition, FIX_NOT_RECORDED
        )
    for key, parent in sorted(actual.disabled_clones.items()):
        partition, name = key.split(".", 1)
        yield finding(
            "trigger",
            key,
            f"enabled, as on {parent}: a partition's rows obey its parent's rules",
            f"disabled on partition {partition} only",
            f"ALTER TABLE {q(partition)} ENABLE TRIGGER {q(name)}",
        )


def compare_views(owned: OwnedObjects, actual: CatalogState, views: dict[str, str]) -> Iterator[Finding]:
    for name, definition in views.items():
        live_view = actual.views.get(name)
        fix = RESTORE.format(source=owned.source(name))
        if live_view is None:
            yield finding("view", name, definition.strip(), ABSENT, fix)
        elif live_view.strip() != definition.strip():
            yield finding("view", name, definition.strip(), live_view.strip(), fix)
    for name in sorted(actual.views.keys() - views.keys()):
        yield finding(
            "view", name, "(not created by any revision)", actual.views[name].strip(), FIX_NOT_RECORDED
        )


def compare_default_partitions(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    for parent, partition in owned.default_partitions.items():
        table = actual.tables.get(parent)
        if table is None:
            continue  # the missing table is reported already
        defaults = [n for n, bound in table.partitions.items() if bound == "DEFAULT"]
        if partition not in defaults:
            detached = partition in actual.tables
            yield finding(
                "default partition",
                f"{parent}.{partition}",
                f"{partition} attached as the DEFAULT partition of {parent}",
                f"{partition} exists but is detached" if detached else (", ".join(defaults) or ABSENT),
                f"ALTER TABLE {q(parent)} ATTACH PARTITION {q(partition)} DEFAULT"
                if detached
                else RESTORE.format(source=owned.source(partition)),
            )


def compare_scope(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    """Extensions and schemas beyond the target one: the database's surface, not only its tables."""
    for name, schema in sorted(actual.extensions.items()):
        if name not in owned.extensions:
            yield finding(
                "extension",
                name,
                "(not created by any revision)",
                f"extension {name} in schema {schema}",
                f"DROP EXTENSION {q(name)}, or create it in a revision" + FIX_RECORD,
            )
    for name in sorted(owned.extensions.keys() - actual.extensions.keys()):
        yield finding("extension", name, f"extension {name}", ABSENT, f"CREATE EXTENSION {q(name)}")
    for name, relations in sorted(actual.schemas.items()):
        if name in owned.schemas:
            extra = sorted(set(relations) - set(owned.schemas[name]))
            if extra:
                yield finding(
                    "schema", name, ", ".join(owned.schemas[name]), ", ".join(relations), FIX_NOT_RECORDED
                )
            continue
        # An empty schema holds no data (a "$user" schema, a search_path target): a warning.
        yield finding(
            "schema",
            name,
            "(not created by any revision)",
            f"schema {name} with {', '.join(relations)}" if relations else f"schema {name}, empty",
            f"DROP SCHEMA {q(name)}{' CASCADE' if relations else ''}, or create it in a revision"
            + FIX_RECORD,
            Severity.ERROR if relations else Severity.WARNING,
        )


def compare_row_security(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    live = actual.security
    for table in sorted(owned.row_security.keys() | live.row_security.keys()):
        want, have = owned.row_security.get(table, "DISABLED"), live.row_security.get(table, "DISABLED")
        if want != have:
            verb = {"DISABLED": "DISABLE", "ENABLED": "ENABLE", "FORCED": "FORCE"}[want]
            yield finding(
                "row-level security",
                table,
                want,
                have,
                f"ALTER TABLE {q(table)} {verb} ROW LEVEL SECURITY" + FIX_RECORD,
            )
    for key in sorted(owned.policies.keys() | live.policies.keys()):
        want_policy, have_policy = owned.policies.get(key), live.policies.get(key)
        if want_policy == have_policy:
            continue
        table, name = key.split(".", 1)
        yield finding(
            "policy",
            key,
            want_policy.definition if want_policy else "(not created by any revision)",
            have_policy.definition if have_policy else ABSENT,
            (
                f"DROP POLICY {q(name)} ON {q(table)}"
                if want_policy is None
                else RESTORE.format(source=owned.source(name))
            )
            + FIX_RECORD,
        )


def compare_privileges(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    live = actual.security.privileges
    for obj in sorted(owned.privileges.keys() | live.keys()):
        want, have = owned.privileges.get(obj, ()), live.get(obj, ())
        if want == have:
            continue
        extra = sorted(set(have) - set(want))
        fix = "; ".join(revoke(obj, grant) for grant in extra) if extra and not set(want) - set(have) else ""
        yield finding(
            "privileges",
            obj,
            ", ".join(want) or "OWNER only (the default)",
            ", ".join(have) or "OWNER only (the default)",
            (fix or "grant or revoke in a revision so the privileges are as recorded")
            + FIX_RECORD
            + "; or `--ignore privileges` if grants are managed outside the revisions",
        )


def revoke(obj: str, grant: str) -> str:
    grantee, privilege = grant.split(":", 1)
    privilege = privilege.removesuffix(" WITH GRANT OPTION")
    target = "FUNCTION " + obj if "(" in obj else q(obj)
    who = "PUBLIC" if grantee == "PUBLIC" else q(grantee)
    return f"REVOKE {privilege} ON {target} FROM {who}"


def compare_owners(owned: OwnedObjects, actual: CatalogState) -> Iterator[Finding]:
    live = actual.security
    for obj in sorted(owned.owners.keys() | live.owners.keys()):
        want, have = owned.owners.get(obj, live.owner), live.owners.get(obj, live.owner)
        if want == have:
            continue
        kind = "FUNCTION" if "(" in obj else "TABLE"
        name = obj if kind == "FUNCTION" else q(obj)
        yield finding(
            "owner",
            obj,
            f"{want} (the role that runs the migrations)" if obj not in owned.owners else want,
            have,
            f"ALTER {kind} {name} OWNER TO {q(want)}"
            + FIX_RECORD
            + "; or `--ignore owner` if owners are managed outside the revisions",
        )


def invalid_indexes(actual: CatalogState) -> Iterator[Finding]:
    """An INVALID index is used by no query; on a partitioned table, one partition lacks its copy."""
    for key, state in sorted(actual.invalid_indexes.items()):
        if state.partitions_missing:
            partition = state.partitions_missing[0]
            candidate = next(iter(state.unattached), None)
            fix = (
                f"ALTER INDEX {q(state.index)} ATTACH PARTITION {q(candidate)}"
                if candidate and len(state.partitions_missing) == 1
                else f"create the index on {', '.join(state.partitions_missing)},"
                f" then ALTER INDEX {q(state.index)} ATTACH PARTITION it"
            )
            actual_text = f"INVALID: no attached copy on {', '.join(state.partitions_missing)}"
            yield finding(
                "partition index",
                key,
                f"valid, with a copy on every partition ({partition}...)",
                actual_text,
                fix,
            )
        else:
            yield finding(
                "index",
                key,
                "valid",
                "INVALID (a failed CREATE INDEX CONCURRENTLY?)",
                f"REINDEX INDEX CONCURRENTLY {q(state.index)}",
            )
