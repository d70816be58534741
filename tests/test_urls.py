"""URL parsing, redaction, scrubbing and libpq rendering: pure functions, table-driven."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import URL

from scripts.db.urls import DRIVER, libpq_url, parse_url, redact, scrub
from scripts.errors import ConfigError

# raw URL -> (username, password, host, port, database, query)
PARSED = [
    ("postgresql://u:p@h:5432/db", ("u", "p", "h", 5432, "db", {})),
    ("postgres://u@h/db", ("u", None, "h", None, "db", {})),
    ("postgresql+psycopg2://u:p@h/db", ("u", "p", "h", None, "db", {})),
    ("POSTGRESQL://u@h/db", ("u", None, "h", None, "db", {})),
    # raw special characters: the authority ends at the last @
    ("postgresql://u:p@ss#word%@h:1/db", ("u", "p@ss#word%", "h", 1, "db", {})),
    ("postgresql://u:a:b@h/db", ("u", "a:b", "h", None, "db", {})),
    # percent-encoded as RFC 3986 says
    ("postgresql://u%40x:p%40ss%23@h/db", ("u@x", "p@ss#", "h", None, "db", {})),
    ("postgresql://u:@h/db", ("u", "", "h", None, "db", {})),
    ("postgresql://[::1]:5433/db", (None, None, "::1", 5433, "db", {})),
    ("postgresql:///db", (None, None, None, None, "db", {})),
    ("postgresql://h", (None, None, "h", None, None, {})),
    ("  postgresql://u@h/db\n", ("u", None, "h", None, "db", {})),
    # libpq's socket form, as `alp-db dev-db url` prints it
    (
        "postgresql://postgres@/alp_dev?host=/tmp/x/run&port=5433",
        ("postgres", None, None, None, "alp_dev", {"host": "/tmp/x/run", "port": "5433"}),
    ),
    ("postgresql://u@h/db?sslmode=require", ("u", None, "h", None, "db", {"sslmode": "require"})),
    # a raw password may hold "?" (the authority ends at its last @), so an @ in a query
    # value is percent-encoded, as RFC 3986 has it
    ("postgresql://u:pa?ss@h/db", ("u", "pa?ss", "h", None, "db", {})),
    (
        "postgresql://u@h/db?application_name=a%40b",
        ("u", None, "h", None, "db", {"application_name": "a@b"}),
    ),
]


@pytest.mark.parametrize(("raw", "expected"), PARSED, ids=[raw.strip() for raw, _ in PARSED])
def test_parse_url(raw: str, expected: tuple[object, ...]) -> None:
    url = parse_url(raw)
    assert url.drivername == DRIVER
    assert (url.username, url.password, url.host, url.port, url.database, dict(url.query)) == expected


BAD = [
    ("", "malformed"),
    ("localhost:5432/db", "malformed"),
    ("postgresql//nohost", "malformed"),
    ("mysql://u:p@h/db", "not PostgreSQL"),
    ("sqlite:///x.db", "not PostgreSQL"),
    ("postgresql://u@h:0/db", "out of range"),
    ("postgresql://u@h:65536/db", "out of range"),
    ("postgresql://u@h:port/db", "malformed"),
]


@pytest.mark.parametrize(("raw", "problem"), BAD, ids=[raw or "<empty>" for raw, _ in BAD])
def test_bad_url_is_a_config_error(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as raised:
        parse_url(raw)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("postgresql://u:s3cret@h/db", "postgresql+psycopg2://u:***@h/db"),
        ("postgresql://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("not a url", "<unparseable URL>"),
    ],
)
def test_redact_never_shows_the_password(raw: str, shown: str) -> None:
    assert redact(raw) == shown


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ('password authentication failed for "p@ss#"', 'password authentication failed for "***"'),
        ("no password here", "no password here"),
        ("p@ss# and p@ss# again", "*** and *** again"),
    ],
)
def test_scrub_removes_every_spelling_of_the_password(message: str, expected: str) -> None:
    assert scrub(message, parse_url("postgresql://u:p@ss#@h/db")) == expected


def test_scrub_without_a_password_changes_nothing() -> None:
    assert scrub("anything", parse_url("postgresql://u@h/db")) == "anything"
    assert scrub("anything", None) == "anything"


LIBPQ = [
    (
        URL.create(DRIVER, username="postgres", database="alp_dev", query={"host": "/a/run", "port": "5433"}),
        "postgresql://postgres@/alp_dev?host=/a/run&port=5433",
    ),
    (
        URL.create(DRIVER, username="u", password="p@ss", host="h", port=5432, database="db"),
        "postgresql://u:***@h:5432/db",
    ),
    (URL.create(DRIVER, host="::1", database="my db"), "postgresql://[::1]/my%20db"),
    (URL.create(DRIVER, host="h"), "postgresql://h"),
    (
        URL.create(DRIVER, host="h", database="d", query={"sslmode": "verify-full"}),
        "postgresql://h/d?sslmode=verify-full",
    ),
]


@pytest.mark.parametrize(("url", "expected"), LIBPQ, ids=[expected for _, expected in LIBPQ])
def test_libpq_url(url: URL, expected: str) -> None:
    assert libpq_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [url for url, _ in LIBPQ]
    + [URL.create(DRIVER, username="a@b", password="p:@#%/ ?", host="h", port=1, database="d/b")],
)
def test_libpq_url_reads_back_as_the_same_url(url: URL) -> None:
    assert parse_url(libpq_url(url, hide_password=False)) == url
