"""Activity: learning sessions, attempts and skill mastery, generated in time-ordered chunks.

Sessions fall at realistic hours, mostly in the months after a learner signs up; attempts
are on the items an adaptive engine would pick (``scripts.seed.selection``: the most
informative at the learner's running ability estimate, exposure-controlled, few repeats), and
their correctness follows the 3PL model
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
    STREAM_SELECTION,
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
# No learner is given more attempts than this share of the active items of their domains
# (the excess goes to others), so a heavy learner works through the catalogue rather than
# round and round a small part of it.
POOL_COVERAGE = 0.8

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
    pool = np.bincount(cat.item_domain[cat.item_active], minlength=len(DOMAINS))
    doms = study_domains(cat)
    reach = pool[doms[:, 0]] + np.where(doms[:, 1] != doms[:, 0], pool[doms[:, 1]], 0)
    per_learner = allocate(rng, plan.attempts, share, np.ceil(POOL_COVERAGE * reach).astype(np.int64))
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


def study_domains(cat: Catalogue) -> np.ndarray:
    """Each learner's (n, 2) domains, a domain without active items replaced by the first with one."""
    has = np.bincount(cat.item_domain[cat.item_active], minlength=len(DOMAINS)) > 0
    return np.where(has[cat.learner_domains], cat.learner_domains, int(np.argmax(has)))


def allocate(rng: np.random.Generator, total: int, share: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """``total`` attempts over learners by ``share``, none above its ``cap``: the excess of a
    capped learner is drawn again over those with room (caps grow if they cannot hold it all)."""
    cap = np.maximum(cap, 1)
    if cap.sum() < total:  # a catalogue too small for the attempts: repeats cannot be avoided
        cap = np.ceil(cap * (total / cap.sum()) * 1.01).astype(np.int64)
    alloc = rng.multinomial(total, share / share.sum())
    while (excess := int(np.maximum(alloc - cap, 0).sum())) > 0:
        alloc = np.minimum(alloc, cap)
        room = share * (alloc < cap)
        alloc += rng.multinomial(excess, room / room.sum())
    return alloc


@dataclass
class Chosen:
    """Every attempt's item and answer, in session order (session lo's attempts start at
    ``first_of_session[lo]``), and the learner of each attempt."""

    first_of_session: np.ndarray
    learner: np.ndarray
    item: np.ndarray
    correct: np.ndarray

    def shape(self, n_learners: int, n_items: int) -> dict[str, Any]:
        """How adaptive the data looks: repeats and exposure."""
        if len(self.item) == 0:
            return {"first_attempt_share": 1.0, "max_attempts_per_learner_item": 0, "max_item_exposure": 0.0}
        pairs, per_pair = np.unique(self.learner * n_items + self.item, return_counts=True)
        viewers = np.bincount(pairs % n_items, minlength=n_items)
        return {
            "first_attempt_share": round(len(pairs) / len(self.item), 4),
            "max_attempts_per_learner_item": int(per_pair.max()),
            "max_item_exposure": round(float(viewers.max()) / n_learners, 4),
        }


def choose_items(plan: SeedPlan, cat: Catalogue, sp: SessionPlan) -> Chosen:
    """Run the adaptive selection over every learner's attempts, in each learner's time order."""
    from scripts.seed.selection import select_items

    rng = np.random.default_rng([plan.seed, STREAM_SELECTION])
    size = sp.size
    n = int(size.sum())
    first_of_session = np.cumsum(size) - size
    # Sessions grouped by learner; sp is sorted by start, so each learner's stay in time order.
    by_learner = np.lexsort((np.arange(len(size)), sp.user))
    lm_size = size[by_learner]
    lm_first = np.cumsum(lm_size) - lm_size
    position = np.repeat(first_of_session[by_learner], lm_size) + (
        np.arange(n) - np.repeat(lm_first, lm_size)
    )
    slot_learner = np.repeat(sp.user[by_learner], lm_size)
    window_start = us(SEED_WINDOW[0]) - DAY_US * 365
    slot_start_s = (np.repeat(sp.start_us[by_learner], lm_size) - window_start) // 1_000_000
    doms = study_domains(cat)[slot_learner]
    flip = rng.integers(0, 2, n)  # which of a two-domain learner's domains this attempt is in
    slot_domains = np.stack([doms[np.arange(n), flip], doms[np.arange(n), 1 - flip]], axis=1)
    picked = select_items(
        rng,
        slot_learner=slot_learner,
        slot_start_s=slot_start_s.astype(np.int32),
        slot_domains=slot_domains,
        theta=cat.learner_theta,
        item_domain=cat.item_domain,
        item_a=cat.item_a,
        item_b=cat.item_b,
        item_c=cat.item_c,
        item_active=cat.item_active,
        n_domains=len(DOMAINS),
    )
    item = np.empty(n, dtype=np.int64)
    correct = np.empty(n, dtype=bool)
    item[position], correct[position] = picked.item, picked.correct
    learner = np.empty(n, dtype=np.int64)
    learner[position] = slot_learner
    return Chosen(first_of_session, learner, item, correct)


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
    plan: SeedPlan,
    cat: Catalogue,
    sp: SessionPlan,
    chosen: Chosen,
    lo: int,
    hi: int,
    chunk_no: int,
    tally: MasteryTally,
) -> tuple[Table, Table]:
    """Sessions ``lo:hi`` and their attempts, with the mastery tally updated."""
    rng = np.random.default_rng([plan.seed, STREAM_ATTEMPTS, chunk_no])
    size = sp.size[lo:hi]
    n = int(size.sum())
    sess = np.repeat(np.arange(hi - lo), size)
    learner = sp.user[lo:hi][sess]

    # The items were chosen (and answered) beforehand, learner by learner: scripts.seed.selection.
    first, last = chosen.first_of_session[lo], chosen.first_of_session[lo] + n
    item, correct = chosen.item[first:last], chosen.correct[first:last]
    b = cat.item_b[item]
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


def generate(plan: SeedPlan, shape: dict[str, Any] | None = None) -> Iterator[Table]:
    """Every table's rows in load order; sessions and attempts come in chunks.

    ``shape``, when given, is filled with Chosen.shape() before the first attempts.
    """
    cat = build_catalogue(plan)
    yield cat.users
    yield cat.skills
    yield cat.items
    yield cat.item_skills
    sp = plan_sessions(plan, cat)
    chosen = choose_items(plan, cat, sp)
    if shape is not None:
        shape.update(chosen.shape(len(cat.learner_ids), len(cat.item_ids)))
    tally = MasteryTally.empty(len(cat.learner_ids), cat.n_skills)
    for chunk_no, (lo, hi) in enumerate(chunk_bounds(sp.size)):
        yield from generate_chunk(plan, cat, sp, chosen, lo, hi, chunk_no, tally)
    yield mastery_table(cat, tally)


PREFETCH_CHUNKS = 2


def encoded(plan: SeedPlan, shape: dict[str, Any] | None = None) -> Iterator[Encoded]:
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
            for table in generate(plan, shape):
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
