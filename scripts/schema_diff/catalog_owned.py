"""The catalog reader, second half: what revisions own and the models cannot express.

Triggers, functions (with their SECURITY, SET and volatility attributes), views, extensions,
other schemas, privileges, owners, row-level security and policies, and indexes the server
marks INVALID. As in catalog.py, one query per kind of object for the whole namespace.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from scripts.schema_diff.states import (
    CatalogState,
    FunctionState,
    PartitionIndexState,
    PolicyState,
    TriggerState,
)

# pg_proc.provolatile ("pg_proc" in the System Catalogs chapter).
VOLATILITY = {"i": "IMMUTABLE", "s": "STABLE", "v": "VOLATILE"}
# pg_policy.polcmd
POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}

# Internal triggers implement foreign keys; clones on partitions follow their parent's.
TRIGGERS_SQL = """
SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled <> 'D'
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = :ns AND NOT t.tgisinternal AND NOT c.relispartition
ORDER BY c.relname, t.tgname
"""

# A clone (tgparentid, PG 13+) disabled on one partition only: the parent's rule silently
# stops holding for that partition's rows ("ALTER TABLE ... DISABLE TRIGGER").
DISABLED_CLONES_SQL = """
SELECT c.relname, t.tgname, pc.relname
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_trigger pt ON pt.oid = t.tgparentid
JOIN pg_class pc ON pc.oid = pt.tgrelid
WHERE c.relnamespace = :ns AND c.relispartition AND t.tgenabled = 'D' AND pt.tgenabled <> 'D'
ORDER BY c.relname, t.tgname
"""

# Functions that belong to an extension are the extension's business (deptype 'e').
FUNCTIONS_SQL = """
SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid),
       l.lanname, p.prosrc, p.prosecdef, p.proconfig, p.provolatile
FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
WHERE p.pronamespace = :ns
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY p.proname
"""

VIEWS_SQL = """
SELECT c.relname, pg_get_viewdef(c.oid)
FROM pg_class c
WHERE c.relnamespace = :ns AND c.relkind IN ('v', 'm')
ORDER BY c.relname
"""

EXTENSIONS_SQL = """
SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
ORDER BY e.extname
"""

# Every schema but the target, the system's and the extensions' own, with its relations.
SCHEMAS_SQL = """
SELECT n.nspname, array_remove(array_agg(c.relname::text ORDER BY c.relname), NULL)
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
     AND NOT c.relispartition
WHERE n.oid <> :ns AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
GROUP BY n.nspname
ORDER BY n.nspname
"""

# Invalid indexes: a failed CREATE INDEX CONCURRENTLY, or a partitioned index one partition
# has no attached copy of ("CREATE INDEX": "Partitioned indexes"; "ALTER INDEX ... ATTACH").
INVALID_INDEXES_SQL = """
SELECT c.relname, ic.relname,
       ARRAY(SELECT p.relname::text FROM pg_inherits pi JOIN pg_class p ON p.oid = pi.inhrelid
             WHERE pi.inhparent = c.oid AND NOT EXISTS (
                 SELECT 1 FROM pg_inherits ii JOIN pg_index x ON x.indexrelid = ii.inhrelid
                 WHERE ii.inhparent = ic.oid AND x.indrelid = p.oid)
             ORDER BY 1),
       ARRAY(SELECT xc.relname::text FROM pg_inherits pi JOIN pg_index x ON x.indrelid = pi.inhrelid
             JOIN pg_class xc ON xc.oid = x.indexrelid
             WHERE pi.inhparent = c.oid AND NOT xc.relispartition ORDER BY 1)
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = :ns AND NOT c.relispartition AND NOT i.indisvalid
ORDER BY c.relname, ic.relname
"""

# The migrating role owns alembic_version; without it (never migrated), the schema's owner,
# where that is pg_database_owner (public since PostgreSQL 15) the database's owner.
MIGRATING_ROLE_SQL = """
SELECT coalesce(
    (SELECT relowner FROM pg_class WHERE relnamespace = :ns AND relname = 'alembic_version'),
    (SELECT CASE WHEN r.rolname = 'pg_database_owner'
                 THEN (SELECT datdba FROM pg_database WHERE datname = current_database())
                 ELSE n.nspowner END
     FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.oid = :ns))
"""

# Owners other than the migrating role; partitions and indexes follow their table.
OWNERS_SQL = """
SELECT c.relname, pg_get_userbyid(c.relowner) FROM pg_class c
WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
  AND c.relowner <> :owner
UNION ALL
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', pg_get_userbyid(p.proowner)
FROM pg_proc p WHERE p.pronamespace = :ns AND p.proowner <> :owner
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
"""

# Only objects whose ACL is not the owner-only default are read ("Privileges", Table 5.2);
# the owner is named OWNER so a record holds across deployments with other role names. The
# schema's own ACL is left out: its default differs between server versions (PostgreSQL 15
# revoked CREATE from PUBLIC), so a recorded value would not hold across them.
PRIVILEGES_SQL = """
WITH acl AS (
    SELECT c.relname AS object, c.relowner AS owner, c.relacl AS acl FROM pg_class c
    WHERE c.relnamespace = :ns AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
      AND c.relacl IS NOT NULL
      AND c.relacl <> acldefault(CASE c.relkind WHEN 'S' THEN 's'::"char" ELSE 'r'::"char" END, c.relowner)
    UNION ALL
    SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.proowner, p.proacl
    FROM pg_proc p WHERE p.pronamespace = :ns AND p.proacl IS NOT NULL
      AND p.proacl <> acldefault('f', p.proowner)

)
SELECT acl.object,
       array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = acl.owner THEN 'OWNER'
                      ELSE pg_get_userbyid(a.grantee) END
                 || ':' || a.privilege_type || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
                )
FROM acl CROSS JOIN LATERAL aclexplode(acl.acl) a
GROUP BY acl.object
ORDER BY acl.object
"""

ROW_SECURITY_SQL = """
SELECT c.relname, CASE WHEN c.relforcerowsecurity THEN 'FORCED' ELSE 'ENABLED' END
FROM pg_class c
WHERE c.relnamespace = :ns AND (c.relrowsecurity OR c.relforcerowsecurity) AND NOT c.relispartition
ORDER BY c.relname
"""

POLICIES_SQL = """
SELECT c.relname, p.polname, p.polpermissive, p.polcmd,
       ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END FROM unnest(p.polroles) r
             ORDER BY 1),
       pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = :ns
ORDER BY c.relname, p.polname
"""


def policy_definition(
    permissive: bool, command: str, roles: list[str], using: str | None, check: str | None
) -> str:
    text_ = f"AS {'PERMISSIVE' if permissive else 'RESTRICTIVE'} FOR {POLICY_COMMANDS[command]}"
    text_ += f" TO {', '.join(roles)}"
    if using:
        text_ += f" USING ({using})"
    if check:
        text_ += f" WITH CHECK ({check})"
    return text_


def read_owned(conn: Connection, namespace: int, state: CatalogState) -> None:
    params = {"ns": namespace}
    for table, name, definition, enabled in conn.execute(text(TRIGGERS_SQL), params):
        state.triggers[f"{table}.{name}"] = TriggerState(table, name, definition, enabled)
    for partition, name, parent in conn.execute(text(DISABLED_CLONES_SQL), params):
        state.disabled_clones[f"{partition}.{name}"] = parent
    for name, args, result, language, body, secdef, config, volatility in conn.execute(
        text(FUNCTIONS_SQL), params
    ):
        state.functions[f"{name}({args})"] = FunctionState(
            name, args, result, language, body, bool(secdef), tuple(config or ()), VOLATILITY[volatility]
        )
    for name, definition in conn.execute(text(VIEWS_SQL), params):
        state.views[name] = definition
    state.extensions = dict(conn.execute(text(EXTENSIONS_SQL)).all())
    for name, relations in conn.execute(text(SCHEMAS_SQL), params):
        state.schemas[name] = tuple(relations)
    for table, index, missing, unattached in conn.execute(text(INVALID_INDEXES_SQL), params):
        state.invalid_indexes[f"{table}.{index}"] = PartitionIndexState(
            table, index, tuple(missing), tuple(unattached)
        )
    read_security(conn, namespace, state)


def read_security(conn: Connection, namespace: int, state: CatalogState) -> None:
    params = {"ns": namespace}
    security = state.security
    owner_oid = conn.scalar(text(MIGRATING_ROLE_SQL), params)
    security.owner = str(conn.scalar(text("SELECT pg_get_userbyid(:o)"), {"o": owner_oid}))
    security.owners = dict(conn.execute(text(OWNERS_SQL), {**params, "owner": owner_oid}).all())
    for name, privileges in conn.execute(text(PRIVILEGES_SQL), params):
        security.privileges[name] = tuple(sorted(privileges))
    security.row_security = dict(conn.execute(text(ROW_SECURITY_SQL), params).all())
    for table, name, permissive, command, roles, using, check in conn.execute(text(POLICIES_SQL), params):
        security.policies[f"{table}.{name}"] = PolicyState(
            table, name, policy_definition(permissive, command, roles, using, check)
        )
