"""PostgreSQL URLs: parse what the platform writes, render without the password, scrub messages.

URLs are accepted as the platform writes them (``postgresql://user:pass@host:5432/db``) and
mapped to our driver, psycopg2 (SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3).
A password may hold any character: percent-encoded as RFC 3986 says, or raw — the
authority is split at its *last* ``@``, as urllib does, so ``p@ss#!%`` works too.
The password is never rendered: use :func:`redact` for anything a person or log sees.
A pure leaf: it imports nothing of the project but its errors.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from scripts.errors import ConfigError

DRIVER = "postgresql+psycopg2"
# Scheme spellings that mean PostgreSQL: libpq accepts both; all map to psycopg2.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+psycopg2"})

# URL parts and query parameters that libpq also reads from the environment
# (libpq, "Environment Variables").
LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)


def parse_url(raw: str) -> URL:
    """Parse a PostgreSQL URL into a SQLAlchemy URL for psycopg2, or raise ConfigError."""
    text = raw.strip()
    match = _SCHEME.match(text)
    if not match:
        raise ConfigError(
            "database URL is malformed (expected postgresql://user:password@host:5432/dbname)",
            "check DATABASE_URL or --database-url",
        )
    scheme = match["scheme"].lower()
    if scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"database URL scheme {scheme!r} is not PostgreSQL",
            "use postgresql://user:password@host:5432/dbname",
        )
    rest = match["rest"]
    query_start = rest.find("?", rest.rfind("@") + 1)
    authority_end = len(rest) if query_start < 0 else query_start
    at = rest.rfind("@", 0, authority_end)
    username = password = None
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        user_part, sep, password_part = userinfo.partition(":")
        username = unquote(user_part) or None
        password = unquote(password_part) if sep else None
    try:
        location = make_url(f"{DRIVER}://{rest}")
        port = location.port
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(
            "database URL is malformed (host, port or database name unreadable)",
            "check DATABASE_URL or --database-url",
        ) from exc
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"database URL port {port} is out of range", "use a port in 1-65535")
    return URL.create(
        DRIVER,
        username=username,
        password=password,
        host=location.host,
        port=port,
        database=location.database,
        query=location.query,
    )


def redact(url: URL | str) -> str:
    """The URL as a person may see it: password hidden."""
    if isinstance(url, str):
        try:
            url = parse_url(url)
        except ConfigError:
            return "<unparseable URL>"
    return url.render_as_string(hide_password=True)


def scrub(message: str, url: URL | None) -> str:
    """Remove every spelling of the URL's password from a message (driver errors included)."""
    if url is None or not url.password:
        return message
    secret = str(url.password)
    for spelling in {secret, url.render_as_string(hide_password=False)}:
        message = message.replace(spelling, "***")
    return message


def libpq_url(url: URL, *, hide_password: bool = True) -> str:
    """The URL as libpq writes it (``postgresql://user@host:port/db?key=value``), for psql,
    pg_dump, pgbench or an application's DATABASE_URL (libpq, "Connection URIs").

    Each part is percent-encoded; query values keep ``/`` readable, since libpq decodes them
    and a socket directory (``?host=/path/run``) is the usual one. :func:`parse_url` reads it back.
    """
    userinfo = ""
    if url.username:
        userinfo = quote(url.username, safe="")
        if url.password:
            userinfo += ":" + ("***" if hide_password else quote(str(url.password), safe=""))
        userinfo += "@"
    host = url.host or ""
    if ":" in host:  # an IPv6 address goes in brackets (RFC 3986)
        host = f"[{host}]"
    port = f":{url.port}" if url.port else ""
    database = "/" + quote(url.database, safe="") if url.database else ""
    query = "&".join(
        f"{quote(key, safe='')}={quote(str(value), safe='/')}"
        for key, values in url.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    )
    return f"postgresql://{userinfo}{host}{port}{database}" + (f"?{query}" if query else "")


def libpq_environment(url: URL) -> dict[str, str]:
    """PGHOST, PGPORT, PGUSER, PGDATABASE (and the libpq query parameters) for ``url``.

    Never the password: a program gets it from a password file (libpq, "The Password File").
    """
    env: dict[str, str] = {}
    if url.host:
        env["PGHOST"] = url.host
    if url.port:
        env["PGPORT"] = str(url.port)
    for key, value in url.query.items():
        if key in LIBPQ_ENV and isinstance(value, str):
            env[LIBPQ_ENV[key]] = value
    if url.username:
        env["PGUSER"] = url.username
    if url.database:
        env["PGDATABASE"] = url.database
    return env
