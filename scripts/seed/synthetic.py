"""Deterministic synthetic data that looks like a real adaptive learning platform.

Same ``seed``, same rows — ids included: every UUID is a UUIDv7 (RFC 9562) built from the
row's own time and the seeded generator, never ``gen_random_uuid()``. What is generated:

- a skill hierarchy (domain -> topic -> sub-skill) and items with 3PL IRT parameters
  (difficulty b ~ N(0, 1), discrimination a log-normal, guessing c by item type), each
  mapped to one leaf skill and sometimes a second one;
- learners with an ability theta, a country and a sign-up time (the platform grows, so
  later sign-ups are more frequent), enrolled in one or two domains; a few instructors;
- learning sessions at realistic hours, mostly in the months after signing up, and attempts
  on active items near the learner's ability whose correctness follows
  P = c + (1 - c) / (1 + exp(-a (theta - b))), spread over SEED_WINDOW (several yearly
  partitions, never the default one);
- skill_mastery rows counted from exactly those attempts.

Everything is vectorised with numpy and comes out as binary COPY streams (``scripts.seed.copy_binary``);
``scripts.seed`` loads them.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from scripts.errors import ConfigError
from scripts.seed import copy_binary as pgcopy

# -- what a seed looks like ---------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    users: int
    items: int
    attempts: int


SCALES = {
    "small": Scale(users=1_000, items=500, attempts=50_000),
    "medium": Scale(users=5_000, items=2_000, attempts=1_000_000),
    "large": Scale(users=50_000, items=10_000, attempts=10_000_000),
}
DEFAULT_SCALE = "small"
DEFAULT_SEED = 42

# A fixed window, not "the last N days": the same seed must give the same rows tomorrow.
# It spans the yearly partitions attempts_2024..attempts_2026 that revision 0001 creates.
SEED_WINDOW = (
    dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
)
# The content catalogue exists before the first learner arrives.
CATALOGUE_LEAD = dt.timedelta(days=90)
# Learners sign up at least this long before the window ends, so each has time to study.
SIGNUP_MARGIN = dt.timedelta(days=30)

# Seed learners and staff have addresses at a reserved domain (RFC 2606 reserves .example):
# no real mailbox, and a seeded database is recognisable by it.
SEED_EMAIL_DOMAIN = "seed.alp-db.example"

# domain code -> (name, topics); every topic has the same SUBSKILLS.
DOMAINS: dict[str, tuple[str, list[str]]] = {
    "math": ("Mathematics", ["Arithmetic", "Fractions", "Algebra", "Geometry", "Statistics"]),
    "read": ("Reading", ["Phonics", "Vocabulary", "Comprehension", "Inference", "Grammar"]),
    "sci": ("Science", ["Matter", "Energy", "Living Things", "Earth and Space", "Scientific Method"]),
    "code": ("Programming", ["Variables", "Control Flow", "Functions", "Data Structures", "Debugging"]),
}
SUBSKILLS = ["concepts", "procedures", "applications"]

ITEM_TYPES = ["multiple_choice", "true_false", "short_answer", "numeric"]
ITEM_TYPE_SHARE = [0.55, 0.15, 0.20, 0.10]
# Guessing c by type: 4-5 options, two options, nothing to guess from.
GUESSING_RANGE = {
    "multiple_choice": (0.20, 0.25),
    "true_false": (0.45, 0.50),
    "short_answer": (0.0, 0.0),
    "numeric": (0.0, 0.0),
}
# Typical answer time relative to a multiple-choice item of the same difficulty.
RESPONSE_TIME_FACTOR = {"multiple_choice": 1.0, "true_false": 0.6, "short_answer": 2.0, "numeric": 1.5}
ITEM_STATUSES = ["active", "draft", "retired"]
ITEM_STATUS_SHARE = [0.90, 0.06, 0.04]
SECONDARY_SKILL_SHARE = 0.3  # items that also exercise a second sub-skill of their topic
SECONDARY_SKILL_WEIGHT = 0.5

# Where learners come from (ISO 3166-1 alpha-2), roughly a global platform's mix.
COUNTRIES = {
    "US": 22, "IN": 14, "GB": 7, "BR": 6, "DE": 5, "NG": 5, "PH": 4, "MX": 4, "CA": 4, "FR": 4,
    "ID": 4, "EG": 3, "PK": 3, "AU": 3, "ES": 3, "JP": 3, "KE": 3, "PL": 3,
}  # fmt: skip
FIRST_NAMES = [
    "Amara", "Ben", "Chen", "Diego", "Elif", "Fatima", "Grace", "Hiro", "Isabel", "Jonas",
    "Kofi", "Lena", "Mateo", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tariq",
    "Uma", "Viktor", "Wen", "Ximena", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksen", "Fernandez", "Garcia", "Hoang", "Ivanova",
    "Jensen", "Kowalski", "Li", "Mwangi", "Nakamura", "Okafor", "Patel", "Rossi", "Schmidt",
    "Tanaka", "Urquhart", "Vargas", "Wright", "Yilmaz", "Zhang",
]  # fmt: skip
LEARNERS_PER_INSTRUCTOR = 500
TWO_DOMAIN_SHARE = 0.3  # learners enrolled in two domains rather than one

# Learners study in evening-heavy sessions (UTC hour weights), about SESSION_LENGTH attempts each.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 8, 8, 9, 10, 12, 13, 12, 9, 5, 2]
SESSION_LENGTH = 15
ACTIVE_SPAN_DAYS = 150  # mean time from signing up to a session
ABANDONED_SHARE = 0.12
THINK_TIME_MS = 5_000  # mean pause between answering one item and opening the next
MEDIAN_RESPONSE_MS = 12_000
# Adaptive selection aims at the learner's ability, with this much spread (logits).
TARGETING_SPREAD = 1.5
ITEM_NEIGHBOURHOOD = 3  # pick among this many items either side of the target difficulty

# Attempts are generated and loaded in chunks of about this many rows (sessions are never
# split). A constant, not an option: the chunking feeds the generator, so it is part of the seed.
CHUNK_ATTEMPTS = 100_000

# Independent generator streams, so one table's size never shifts another table's rows.
STREAM_CATALOGUE, STREAM_PEOPLE, STREAM_SESSIONS, STREAM_ATTEMPTS = 1, 2, 3, 4

DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000


def _us(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000


@dataclass(frozen=True)
class SeedPlan:
    """How much to generate, and from which seed."""

    users: int
    items: int
    attempts: int
    seed: int = DEFAULT_SEED


def make_plan(
    scale: str = DEFAULT_SCALE,
    *,
    users: int | None = None,
    items: int | None = None,
    attempts: int | None = None,
    seed: int = DEFAULT_SEED,
) -> SeedPlan:
    """A plan from a named scale, any count overridden; raises ConfigError on bad input."""
    if scale not in SCALES:
        raise ConfigError(f"unknown scale {scale!r}", f"use one of {', '.join(SCALES)}")
    base = SCALES[scale]
    plan = SeedPlan(
        users=base.users if users is None else users,
        items=base.items if items is None else items,
        attempts=base.attempts if attempts is None else attempts,
        seed=seed,
    )
    if plan.users < 1 or plan.items < 1 or plan.attempts < 0:
        raise ConfigError("--users and --items must be at least 1, --attempts at least 0")
    if plan.seed < 0:
        raise ConfigError(f"--seed must be a non-negative integer, not {plan.seed}")
    return plan


# -- generation ---------------------------------------------------------------------------


def uuid7(ms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """UUIDv7s (RFC 9562 section 5.7) as ``(n, 16)`` bytes: 48-bit Unix ms, then seeded randomness.

    Time-ordered ids also keep index inserts at the right edge of the btree when rows arrive
    in time order, which is most of why the load is fast.
    """
    n = len(ms)
    out = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    stamp = np.asarray(ms, dtype=">u8").view(np.uint8).reshape(n, 8)
    out[:, :6] = stamp[:, 2:]
    out[:, 6] = 0x70 | (out[:, 6] & 0x0F)
    out[:, 8] = 0x80 | (out[:, 8] & 0x3F)
    return out


@dataclass
class Table:
    """Generated rows of one table, ready for COPY."""

    name: str
    columns: list[pgcopy.Column]

    @property
    def rows(self) -> int:
        return len(self.columns[0].values) if self.columns else 0


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class Catalogue:
    """Skills, items, people: everything attempts refer to (small tables, kept in memory)."""

    skills: Table
    items: Table
    item_skills: Table
    users: Table
    n_skills: int
    leaf_of: np.ndarray  # (domain, topic, subskill) -> skill index
    item_domain: np.ndarray
    item_b: np.ndarray
    item_a: np.ndarray
    item_c: np.ndarray
    item_type: np.ndarray
    item_active: np.ndarray
    item_primary_skill: np.ndarray
    item_secondary_skill: np.ndarray  # -1 when none
    item_ids: np.ndarray
    skill_ids: np.ndarray
    learner_ids: np.ndarray
    learner_theta: np.ndarray
    learner_join_us: np.ndarray
    learner_domains: np.ndarray  # (n, 2) domain indexes; both equal for one-domain learners


def build_catalogue(plan: SeedPlan) -> Catalogue:
    start_us, end_us = (_us(t) for t in SEED_WINDOW)
    catalogue_us = _us(SEED_WINDOW[0] - CATALOGUE_LEAD)
    rng = np.random.default_rng([plan.seed, STREAM_CATALOGUE])

    # Skills: domain -> topic -> sub-skill, parents before children.
    codes: list[str] = []
    names: list[str] = []
    parents: list[int] = []
    n_domains, n_topics, n_sub = len(DOMAINS), len(next(iter(DOMAINS.values()))[1]), len(SUBSKILLS)
    leaf_of = np.zeros((n_domains, n_topics, n_sub), dtype=np.int64)
    for d, (dcode, (dname, topics)) in enumerate(DOMAINS.items()):
        codes.append(dcode)
        names.append(dname)
        parents.append(-1)
        d_idx = len(codes) - 1
        for t, topic in enumerate(topics):
            codes.append(f"{dcode}.{_slug(topic)}")
            names.append(topic)
            parents.append(d_idx)
            t_idx = len(codes) - 1
            for s, sub in enumerate(SUBSKILLS):
                leaf_of[d, t, s] = len(codes)
                codes.append(f"{dcode}.{_slug(topic)}.{sub}")
                names.append(f"{topic}: {sub}")
                parents.append(t_idx)
    n_skills = len(codes)
    skill_time = np.full(n_skills, catalogue_us, dtype=np.int64)
    skill_ids = uuid7(skill_time // 1000, rng)
    parent_idx = np.array(parents)
    skills = Table(
        "skills",
        [
            pgcopy.Column("id", "uuid", skill_ids),
            pgcopy.Column("code", "text", codes),
            pgcopy.Column("name", "text", names),
            pgcopy.Column("parent_id", "uuid", skill_ids[np.maximum(parent_idx, 0)], valid=parent_idx >= 0),
            pgcopy.Column("created_at", "timestamptz", skill_time),
            pgcopy.Column("updated_at", "timestamptz", skill_time),
        ],
    )

    # People: learners, then instructors who author items, then one admin.
    people_rng = np.random.default_rng([plan.seed, STREAM_PEOPLE])
    n_learners = plan.users
    n_instructors = max(1, -(-n_learners // LEARNERS_PER_INSTRUCTOR))
    n_people = n_learners + n_instructors + 1
    theta = np.clip(people_rng.normal(0.0, 1.0, n_learners), -4.0, 4.0)
    # Linear growth of sign-ups: density proportional to time since launch, so sqrt(U).
    latest_join = end_us - int(SIGNUP_MARGIN.total_seconds()) * 1_000_000
    join = start_us + (np.sqrt(people_rng.random(n_learners)) * (latest_join - start_us)).astype(np.int64)
    staff_join = np.full(n_people - n_learners, catalogue_us, dtype=np.int64)
    created = np.concatenate([join, staff_join])
    country_codes = list(COUNTRIES)
    weights = np.array(list(COUNTRIES.values()), dtype=float)
    country = people_rng.choice(len(country_codes), size=n_people, p=weights / weights.sum())
    first = people_rng.integers(0, len(FIRST_NAMES), n_people)
    last = people_rng.integers(0, len(LAST_NAMES), n_people)
    two = people_rng.random(n_learners) < TWO_DOMAIN_SHARE
    dom1 = people_rng.integers(0, n_domains, n_learners)
    dom2 = np.where(two, (dom1 + people_rng.integers(1, n_domains, n_learners)) % n_domains, dom1)
    user_ids = uuid7(created // 1000, people_rng)
    roles = ["learner"] * n_learners + ["instructor"] * n_instructors + ["admin"]
    emails, display = [], []
    for i in range(n_people):
        fn, ln = FIRST_NAMES[first[i]], LAST_NAMES[last[i]]
        display.append(f"{fn} {ln}")
        local = f"{fn}.{ln}.{i + 1}" if roles[i] == "learner" else f"{roles[i]}{i + 1 - n_learners}"
        emails.append(f"{local.lower()}@{SEED_EMAIL_DOMAIN}")
    ability = np.concatenate([theta, np.zeros(n_people - n_learners)])
    users = Table(
        "users",
        [
            pgcopy.Column("id", "uuid", user_ids),
            pgcopy.Column("email", "text", emails),
            pgcopy.Column("display_name", "text", display),
            pgcopy.Column("role", "text", roles),
            pgcopy.Column("country_code", "text", [country_codes[c] for c in country]),
            pgcopy.Column("ability", "float8", ability),
            pgcopy.Column("created_at", "timestamptz", created),
            pgcopy.Column("updated_at", "timestamptz", created),
        ],
    )

    # Items: 3PL parameters in the ranges the CHECK constraints allow.
    n_items = plan.items
    item_domain = rng.integers(0, n_domains, n_items)
    item_topic = rng.integers(0, n_topics, n_items)
    item_sub = rng.integers(0, n_sub, n_items)
    item_type = rng.choice(len(ITEM_TYPES), size=n_items, p=ITEM_TYPE_SHARE)
    b = np.clip(rng.normal(0.0, 1.0, n_items), -5.0, 5.0)
    a = np.clip(rng.lognormal(0.0, 0.35, n_items), 0.2, 4.0)
    lo = np.array([GUESSING_RANGE[t][0] for t in ITEM_TYPES])[item_type]
    hi = np.array([GUESSING_RANGE[t][1] for t in ITEM_TYPES])[item_type]
    c = lo + rng.random(n_items) * (hi - lo)
    status = rng.choice(len(ITEM_STATUSES), size=n_items, p=ITEM_STATUS_SHARE)
    # Every domain that has items has an active one, so its learners have something to answer.
    _, first_of_domain = np.unique(item_domain, return_index=True)
    status[first_of_domain] = ITEM_STATUSES.index("active")
    item_time = catalogue_us + (rng.random(n_items) * (start_us - catalogue_us)).astype(np.int64)
    item_ids = uuid7(item_time // 1000, rng)
    author = n_learners + rng.integers(0, n_instructors, n_items)
    primary = leaf_of[item_domain, item_topic, item_sub]
    has_second = rng.random(n_items) < SECONDARY_SKILL_SHARE
    second_sub = (item_sub + rng.integers(1, n_sub, n_items)) % n_sub
    secondary = np.where(has_second, leaf_of[item_domain, item_topic, second_sub], -1)
    stems = [
        f"{names[primary[i]]} — {ITEM_TYPES[item_type[i]].replace('_', ' ')} item {i + 1}"
        for i in range(n_items)
    ]
    items = Table(
        "items",
        [
            pgcopy.Column("id", "uuid", item_ids),
            pgcopy.Column("item_type", "text", [ITEM_TYPES[t] for t in item_type]),
            pgcopy.Column("status", "text", [ITEM_STATUSES[s] for s in status]),
            pgcopy.Column("stem", "text", stems),
            pgcopy.Column("difficulty", "float8", b),
            pgcopy.Column("discrimination", "float8", a),
            pgcopy.Column("guessing", "float8", c),
            pgcopy.Column("created_by", "uuid", user_ids[author]),
            pgcopy.Column("created_at", "timestamptz", item_time),
            pgcopy.Column("updated_at", "timestamptz", item_time),
        ],
    )
    map_item = np.concatenate([np.arange(n_items), np.flatnonzero(has_second)])
    map_skill = np.concatenate([primary, secondary[has_second]])
    map_weight = np.concatenate([np.ones(n_items), np.full(int(has_second.sum()), SECONDARY_SKILL_WEIGHT)])
    item_skills = Table(
        "item_skills",
        [
            pgcopy.Column("item_id", "uuid", item_ids[map_item]),
            pgcopy.Column("skill_id", "uuid", skill_ids[map_skill]),
            pgcopy.Column("weight", "float8", map_weight),
        ],
    )
    return Catalogue(
        skills=skills,
        items=items,
        item_skills=item_skills,
        users=users,
        n_skills=n_skills,
        leaf_of=leaf_of,
        item_domain=item_domain,
        item_b=b,
        item_a=a,
        item_c=c,
        item_type=item_type,
        item_active=status == ITEM_STATUSES.index("active"),
        item_primary_skill=primary,
        item_secondary_skill=secondary,
        item_ids=item_ids,
        skill_ids=skill_ids,
        learner_ids=user_ids[:n_learners],
        learner_theta=theta,
        learner_join_us=join,
        learner_domains=np.stack([dom1, dom2], axis=1),
    )


@dataclass
class SessionPlan:
    """Every session: owner, start, number of attempts; sorted by start time."""

    user: np.ndarray
    start_us: np.ndarray
    size: np.ndarray
    abandoned: np.ndarray
    ids: np.ndarray


def plan_sessions(plan: SeedPlan, cat: Catalogue) -> SessionPlan:
    rng = np.random.default_rng([plan.seed, STREAM_SESSIONS])
    n_learners = len(cat.learner_ids)
    if plan.attempts == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SessionPlan(empty, empty, empty, empty.astype(bool), np.zeros((0, 16), dtype=np.uint8))
    # Activity is heavy-tailed: a few learners do a lot, many do a little.
    share = rng.lognormal(0.0, 1.0, n_learners)
    per_learner = rng.multinomial(plan.attempts, share / share.sum())
    sessions = -(-per_learner // SESSION_LENGTH)
    user = np.repeat(np.arange(n_learners), sessions)
    first_session = np.cumsum(sessions) - sessions
    ordinal = np.arange(len(user)) - first_session[user]
    size = per_learner[user] // sessions[user] + (ordinal < per_learner[user] % sessions[user])
    _, end_us = (_us(t) for t in SEED_WINDOW)
    latest = end_us - DAY_US
    join = cat.learner_join_us[user]
    # Learners are most active soon after signing up and drift away (retention decays).
    moment = join + (rng.exponential(ACTIVE_SPAN_DAYS, len(user)) * DAY_US).astype(np.int64)
    late = moment > latest
    moment[late] = join[late] + (rng.random(int(late.sum())) * (latest - join[late])).astype(np.int64)
    hours = np.array(HOUR_WEIGHTS, dtype=float)
    hour = rng.choice(24, size=len(user), p=hours / hours.sum())
    start = (moment // DAY_US) * DAY_US + hour * HOUR_US + rng.integers(0, HOUR_US, len(user))
    start = np.clip(start, join, latest)
    order = np.argsort(start, kind="stable")
    user, start, size = user[order], start[order], size[order]
    abandoned = rng.random(len(user)) < ABANDONED_SHARE
    return SessionPlan(user, start, size, abandoned, uuid7(start // 1000, rng))


@dataclass
class MasteryTally:
    """Per (learner, skill): attempts, correct answers, last attempt time."""

    attempts: np.ndarray
    correct: np.ndarray
    last_us: np.ndarray

    @classmethod
    def empty(cls, n_learners: int, n_skills: int) -> MasteryTally:
        size = n_learners * n_skills
        return cls(np.zeros(size, np.int64), np.zeros(size, np.int64), np.zeros(size, np.int64))

    def add(self, key: np.ndarray, correct: np.ndarray, when: np.ndarray) -> None:
        size = len(self.attempts)
        self.attempts += np.bincount(key, minlength=size)
        self.correct += np.bincount(key, weights=correct, minlength=size).astype(np.int64)
        np.maximum.at(self.last_us, key, when)


def generate_chunk(
    plan: SeedPlan, cat: Catalogue, sp: SessionPlan, lo: int, hi: int, chunk_no: int, tally: MasteryTally
) -> tuple[Table, Table]:
    """Sessions ``lo:hi`` and their attempts, with the mastery tally updated."""
    rng = np.random.default_rng([plan.seed, STREAM_ATTEMPTS, chunk_no])
    size = sp.size[lo:hi]
    n = int(size.sum())
    sess = np.repeat(np.arange(hi - lo), size)
    learner = sp.user[lo:hi][sess]
    theta = cat.learner_theta[learner]

    # Adaptive selection: an active item of one of the learner's domains near its ability.
    active = np.flatnonzero(cat.item_active)
    dom = cat.item_domain[active]
    by_key = np.argsort(dom * 100.0 + cat.item_b[active], kind="stable")
    pool = active[by_key]
    pool_key = (dom * 100.0 + cat.item_b[active])[by_key]
    n_domains = len(DOMAINS)
    dom_lo = np.searchsorted(dom[by_key], np.arange(n_domains), side="left")
    dom_hi = np.searchsorted(dom[by_key], np.arange(n_domains), side="right")
    choice = cat.learner_domains[learner, rng.integers(0, 2, n)]
    has_items = (dom_hi > dom_lo)[choice]
    # A domain without active items: study the first domain that has one.
    choice = np.where(has_items, choice, int(np.argmax(dom_hi > dom_lo)))
    target = np.clip(theta + rng.normal(0.0, TARGETING_SPREAD, n), -5.0, 5.0)
    pos = np.searchsorted(pool_key, choice * 100.0 + target)
    pos += rng.integers(-ITEM_NEIGHBOURHOOD, ITEM_NEIGHBOURHOOD + 1, n)
    pos = np.clip(pos, dom_lo[choice], dom_hi[choice] - 1)
    item = pool[pos]

    # Three-parameter logistic IRT model.
    a, b, c = cat.item_a[item], cat.item_b[item], cat.item_c[item]
    p = c + (1.0 - c) / (1.0 + np.exp(-a * (theta - b)))
    correct = rng.random(n) < p
    kind = cat.item_type[item]
    partial = np.isin(kind, [ITEM_TYPES.index("short_answer"), ITEM_TYPES.index("numeric")])
    score = np.where(correct, 1.0, np.where(partial, rng.integers(0, 3, n) * 0.25, 0.0))
    factor = np.array([RESPONSE_TIME_FACTOR[t] for t in ITEM_TYPES])[kind]
    rt_ms = MEDIAN_RESPONSE_MS * factor * np.exp(0.25 * b + rng.normal(0.0, 0.5, n))
    rt_ms = np.clip(rt_ms, 300, 600_000).astype(np.int64)

    # Within a session, attempts follow one another: answer time plus a pause.
    step = (rt_ms + rng.exponential(THINK_TIME_MS, n).astype(np.int64)) * 1000
    elapsed = np.cumsum(step) - step
    first_of_session = np.cumsum(size) - size
    offset = elapsed - elapsed[first_of_session][sess]
    when = sp.start_us[lo:hi][sess] + offset
    session_end = sp.start_us[lo:hi] + np.add.reduceat(step, first_of_session) if n else sp.start_us[lo:hi]

    order = np.argsort(when, kind="stable")
    when, learner, item, correct, score, rt_ms, sess = (
        when[order], learner[order], item[order], correct[order], score[order], rt_ms[order], sess[order]
    )  # fmt: skip

    n_skills = cat.n_skills
    tally.add(learner * n_skills + cat.item_primary_skill[item], correct, when)
    second = cat.item_secondary_skill[item]
    has = second >= 0
    tally.add(learner[has] * n_skills + second[has], correct[has], when[has])

    session_ids = sp.ids[lo:hi]
    sessions = Table(
        "learning_sessions",
        [
            pgcopy.Column("id", "uuid", session_ids),
            pgcopy.Column("user_id", "uuid", cat.learner_ids[sp.user[lo:hi]]),
            pgcopy.Column("status", "text", np.where(sp.abandoned[lo:hi], "abandoned", "completed").tolist()),
            pgcopy.Column("started_at", "timestamptz", sp.start_us[lo:hi]),
            pgcopy.Column("ended_at", "timestamptz", session_end),
            pgcopy.Column("updated_at", "timestamptz", session_end),
        ],
    )
    attempts = Table(
        "attempts",
        [
            pgcopy.Column("id", "uuid", uuid7(when // 1000, rng)),
            pgcopy.Column("attempted_at", "timestamptz", when),
            pgcopy.Column("user_id", "uuid", cat.learner_ids[learner]),
            pgcopy.Column("item_id", "uuid", cat.item_ids[item]),
            pgcopy.Column("session_id", "uuid", session_ids[sess]),
            pgcopy.Column("is_correct", "bool", correct),
            pgcopy.Column("score", "float8", score),
            pgcopy.Column("response_time_ms", "int4", rt_ms),
        ],
    )
    return sessions, attempts


def mastery_table(cat: Catalogue, tally: MasteryTally) -> Table:
    """skill_mastery from the tally: Laplace-smoothed accuracy, (correct + 1) / (attempts + 2)."""
    key = np.flatnonzero(tally.attempts)
    learner, skill = np.divmod(key, cat.n_skills)
    count, right = tally.attempts[key], tally.correct[key]
    return Table(
        "skill_mastery",
        [
            pgcopy.Column("user_id", "uuid", cat.learner_ids[learner]),
            pgcopy.Column("skill_id", "uuid", cat.skill_ids[skill]),
            pgcopy.Column("mastery", "float8", (right + 1) / (count + 2)),
            pgcopy.Column("attempts_count", "int4", count),
            pgcopy.Column("correct_count", "int4", right),
            pgcopy.Column("updated_at", "timestamptz", tally.last_us[key]),
        ],
    )


def chunk_bounds(sizes: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive session ranges of about CHUNK_ATTEMPTS attempts each."""
    if len(sizes) == 0:
        return []
    cut = np.searchsorted(
        np.cumsum(sizes), np.arange(CHUNK_ATTEMPTS, int(sizes.sum()), CHUNK_ATTEMPTS), "right"
    )
    edges = [0, *sorted(set(cut.tolist()) - {0, len(sizes)}), len(sizes)]
    return list(itertools.pairwise(edges))


def generate(plan: SeedPlan) -> Iterator[Table]:
    """Every table's rows in load order; sessions and attempts come in chunks."""
    cat = build_catalogue(plan)
    yield cat.users
    yield cat.skills
    yield cat.items
    yield cat.item_skills
    sp = plan_sessions(plan, cat)
    tally = MasteryTally.empty(len(cat.learner_ids), cat.n_skills)
    for chunk_no, (lo, hi) in enumerate(chunk_bounds(sp.size)):
        yield from generate_chunk(plan, cat, sp, lo, hi, chunk_no, tally)
    yield mastery_table(cat, tally)


Encoded = tuple[str, list[str], int, bytes]  # table, columns, rows, binary COPY stream
PREFETCH_CHUNKS = 2


def encoded(plan: SeedPlan) -> Iterator[Encoded]:
    """generate() encoded for COPY by a background thread, a couple of chunks ahead.

    numpy and the socket both release the GIL, so on two cores the next chunk is generated
    while the server is still writing the previous one.
    """
    import queue
    import threading

    done = object()
    out: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_CHUNKS)
    stop = threading.Event()

    def produce() -> None:
        try:
            for table in generate(plan):
                if stop.is_set():
                    return
                if table.rows:
                    names = [c.name for c in table.columns]
                    out.put((table.name, names, table.rows, pgcopy.payload(table.columns)))
            out.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            out.put(exc)

    worker = threading.Thread(target=produce, name="seed-generator", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                out.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
