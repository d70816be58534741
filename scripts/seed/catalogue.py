"""The catalogue a seed's attempts refer to: skills, items with 3PL parameters, people.

Same ``seed``, same rows — ids included: every UUID is a UUIDv7 (RFC 9562) built from the
row's own time and the seeded generator, never ``gen_random_uuid()``. What is generated:

- a skill hierarchy (domain -> topic -> sub-skill) and items with 3PL IRT parameters
  (difficulty b ~ N(0, 1), discrimination a log-normal, guessing c by item type), each
  mapped to one leaf skill and sometimes a second one;
- learners with an ability theta, a country and a sign-up time (the platform grows, so
  later sign-ups are more frequent), enrolled in one or two domains; a few instructors.

Enum values (item types, statuses, roles) come from ``models.enums``, where the schema's
types are declared; this module only says how often each occurs.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

from models.enums import ItemStatus, ItemType, UserRole
from scripts.seed import copy_binary as pgcopy
from scripts.seed.presets import SEED_EMAIL_DOMAIN, SEED_WINDOW, SeedPlan

# The content catalogue exists before the first learner arrives.
CATALOGUE_LEAD = dt.timedelta(days=90)
# Learners sign up at least this long before the window ends, so each has time to study.
SIGNUP_MARGIN = dt.timedelta(days=30)

# domain code -> (name, topics); every topic has the same SUBSKILLS.
DOMAINS: dict[str, tuple[str, list[str]]] = {
    "math": ("Mathematics", ["Arithmetic", "Fractions", "Algebra", "Geometry", "Statistics"]),
    "read": ("Reading", ["Phonics", "Vocabulary", "Comprehension", "Inference", "Grammar"]),
    "sci": ("Science", ["Matter", "Energy", "Living Things", "Earth and Space", "Scientific Method"]),
    "code": ("Programming", ["Variables", "Control Flow", "Functions", "Data Structures", "Debugging"]),
}
SUBSKILLS = ["concepts", "procedures", "applications"]

# Every ItemType, how often it occurs (generation order follows this dict).
ITEM_TYPE_SHARE = {
    ItemType.multiple_choice: 0.55,
    ItemType.true_false: 0.15,
    ItemType.short_answer: 0.20,
    ItemType.numeric: 0.10,
}
ITEM_TYPES = list(ITEM_TYPE_SHARE)
# Guessing c by type: 4-5 options, two options, nothing to guess from.
GUESSING_RANGE = {
    ItemType.multiple_choice: (0.20, 0.25),
    ItemType.true_false: (0.45, 0.50),
    ItemType.short_answer: (0.0, 0.0),
    ItemType.numeric: (0.0, 0.0),
}
# Every ItemStatus, how often it occurs; attempts are only ever on active items.
ITEM_STATUS_SHARE = {ItemStatus.active: 0.90, ItemStatus.draft: 0.06, ItemStatus.retired: 0.04}
ITEM_STATUSES = list(ITEM_STATUS_SHARE)
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

# Independent generator streams, so one table's size never shifts another table's rows.
STREAM_CATALOGUE, STREAM_PEOPLE, STREAM_SESSIONS, STREAM_ATTEMPTS, STREAM_SELECTION = 1, 2, 3, 4, 5


def us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch (what copy_binary's timestamptz columns take)."""
    return int(moment.timestamp()) * 1_000_000


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
    start_us, end_us = (us(t) for t in SEED_WINDOW)
    catalogue_us = us(SEED_WINDOW[0] - CATALOGUE_LEAD)
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
    roles = [UserRole.learner.value] * n_learners + [UserRole.instructor.value] * n_instructors
    roles.append(UserRole.admin.value)
    emails, display = [], []
    for i in range(n_people):
        fn, ln = FIRST_NAMES[first[i]], LAST_NAMES[last[i]]
        display.append(f"{fn} {ln}")
        local = f"{fn}.{ln}.{i + 1}" if i < n_learners else f"{roles[i]}{i + 1 - n_learners}"
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
    item_type = rng.choice(len(ITEM_TYPES), size=n_items, p=list(ITEM_TYPE_SHARE.values()))
    b = np.clip(rng.normal(0.0, 1.0, n_items), -5.0, 5.0)
    a = np.clip(rng.lognormal(0.0, 0.35, n_items), 0.2, 4.0)
    lo = np.array([GUESSING_RANGE[t][0] for t in ITEM_TYPES])[item_type]
    hi = np.array([GUESSING_RANGE[t][1] for t in ITEM_TYPES])[item_type]
    c = lo + rng.random(n_items) * (hi - lo)
    status = rng.choice(len(ITEM_STATUSES), size=n_items, p=list(ITEM_STATUS_SHARE.values()))
    # Every domain that has items has an active one, so its learners have something to answer.
    _, first_of_domain = np.unique(item_domain, return_index=True)
    status[first_of_domain] = ITEM_STATUSES.index(ItemStatus.active)
    item_time = catalogue_us + (rng.random(n_items) * (start_us - catalogue_us)).astype(np.int64)
    item_ids = uuid7(item_time // 1000, rng)
    author = n_learners + rng.integers(0, n_instructors, n_items)
    primary = leaf_of[item_domain, item_topic, item_sub]
    has_second = rng.random(n_items) < SECONDARY_SKILL_SHARE
    second_sub = (item_sub + rng.integers(1, n_sub, n_items)) % n_sub
    secondary = np.where(has_second, leaf_of[item_domain, item_topic, second_sub], -1)
    stems = [
        f"{names[primary[i]]} — {ITEM_TYPES[item_type[i]].value.replace('_', ' ')} item {i + 1}"
        for i in range(n_items)
    ]
    items = Table(
        "items",
        [
            pgcopy.Column("id", "uuid", item_ids),
            pgcopy.Column("item_type", "text", [ITEM_TYPES[t].value for t in item_type]),
            pgcopy.Column("status", "text", [ITEM_STATUSES[s].value for s in status]),
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
        item_active=status == ITEM_STATUSES.index(ItemStatus.active),
        item_primary_skill=primary,
        item_secondary_skill=secondary,
        item_ids=item_ids,
        skill_ids=skill_ids,
        learner_ids=user_ids[:n_learners],
        learner_theta=theta,
        learner_join_us=join,
        learner_domains=np.stack([dom1, dom2], axis=1),
    )
