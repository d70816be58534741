"""Activity: learning sessions, attempts and skill mastery, generated in time-ordered chunks.

Sessions fall at realistic hours, mostly in the months after a learner signs up; attempts
are on active items near the learner's ability, and their correctness follows the 3PL model
P = c + (1 - c) / (1 + exp(-a (theta - b))); they spread over SEED_WINDOW (several yearly
partitions, never the default one). skill_mastery is counted from exactly those attempts.
Everything is vectorised with numpy and comes out as binary COPY streams
(``scripts.seed.copy_binary``); ``scripts.seed.load`` loads them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.enums import ItemType, SessionStatus
from scripts.seed import copy_binary as pgcopy
from scripts.seed.catalogue import (
    DOMAINS,
    ITEM_TYPES,
    STREAM_ATTEMPTS,
    STREAM_SESSIONS,
    Catalogue,
    Table,
    build_catalogue,
    us,
    uuid7,
)
from scripts.seed.copy_binary import Encoded
from scripts.seed.presets import SEED_WINDOW, SeedPlan

ABANDONED, COMPLETED = SessionStatus.abandoned.value, SessionStatus.completed.value
# Learners study in evening-heavy sessions (UTC hour weights), about SESSION_LENGTH attempts each.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 4, 5, 6, 6, 6, 7, 7, 8, 8, 9, 10, 12, 13, 12, 9, 5, 2]
SESSION_LENGTH = 15
ACTIVE_SPAN_DAYS = 150  # mean time from signing up to a session
ABANDONED_SHARE = 0.12
THINK_TIME_MS = 5_000  # mean pause between answering one item and opening the next
MEDIAN_RESPONSE_MS = 12_000
# Typical answer time relative to a multiple-choice item of the same difficulty.
RESPONSE_TIME_FACTOR = {
    ItemType.multiple_choice: 1.0,
    ItemType.true_false: 0.6,
    ItemType.short_answer: 2.0,
    ItemType.numeric: 1.5,
}
# Adaptive selection aims at the learner's ability, with this much spread (logits).
TARGETING_SPREAD = 1.5
ITEM_NEIGHBOURHOOD = 3  # pick among this many items either side of the target difficulty

# Attempts are generated and loaded in chunks of about this many rows (sessions are never
# split). A constant, not an option: the chunking feeds the generator, so it is part of the seed.
CHUNK_ATTEMPTS = 100_000

DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000


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
    _, end_us = (us(t) for t in SEED_WINDOW)
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
    partial = np.isin(kind, [ITEM_TYPES.index(ItemType.short_answer), ITEM_TYPES.index(ItemType.numeric)])
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
            pgcopy.Column("status", "text", np.where(sp.abandoned[lo:hi], ABANDONED, COMPLETED).tolist()),
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
