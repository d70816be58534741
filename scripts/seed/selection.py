"""Which item each attempt is on: what an adaptive engine would pick, vectorised with numpy.

For every attempt, in each learner's own time order:

1. **Ability estimate.** Each learner starts at theta-hat 0 with a N(0, 1) prior; after each
   answer one Fisher-scoring step updates it, theta-hat += score / precision, the precision
   growing by the item's information: the recursive normal approximation to the posterior of
   Owen's Bayesian procedure (Owen 1975, JASA 70(350), 351-356). The learner's true theta
   only decides the answer, by the 3PL model P = c + (1 - c) / (1 + exp(-a (theta - b))).
2. **Maximum information near the estimate.** The candidates are the items of the attempt's
   domain whose difficulty is nearest theta-hat (the two nearest blocks of BLOCK items, in
   difficulty order, that still hold an eligible item), ranked by Fisher information at
   theta-hat (rounded to THETA_STEP, read from a table), I = a^2 (Q / P) ((P - c) / (1 - c))^2.
3. **Eligible** means never answered by this learner (so neither in this session nor in the
   last REVIEW_INTERVAL_DAYS), and not closed by exposure control.
4. **Exposure control**, two standard methods together: *randomesque* selection (Kingsbury &
   Zara 1989, "Procedures for selecting items for computerized adaptive tests", Applied
   Measurement in Education 2(4), 359-375) picks uniformly among the RANDOMESQUE most
   informative eligible items rather than always the best one; and *restricted maximum
   information* (Revuelta & Ponsoda 1998, "A comparison of item exposure control methods in
   computerized adaptive testing", Journal of Educational Measurement 35(4), 311-327) closes an
   item to new learners once MAX_EXPOSURE of all learners have seen it. A closed item is
   still picked when the learner's domain has nothing else left unseen.
5. **Review.** REVIEW_SHARE of attempts are deliberate repeats: the item this learner answered
   longest ago, provided that was at least REVIEW_INTERVAL_DAYS before (spaced repetition;
   oldest first, so reviews spread over items instead of returning to one). A learner who has
   answered every item of their domains repeats the same way (longest ago first).

The N-day rule is applied at session granularity (an item's last answer is dated by its
session's start), which sessions lasting minutes make exact for any N of a day or more.

Learners are processed together, one "round" (each learner's next attempt) at a time, so
every step is one numpy operation over all learners still answering; learners come in
batches sized so that the per-(learner, item) state stays under STATE_CELLS cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANDOMESQUE = 4  # pick among this many most informative eligible items
MAX_EXPOSURE = 0.2  # share of all learners after which an item closes to new ones
REVIEW_SHARE = 0.04  # attempts that are a deliberate review of an old item
REVIEW_INTERVAL_DAYS = 7
BLOCK = 8  # items per difficulty block (the unit of the nearest-eligible search)
CANDIDATE_BLOCKS = 2
MASK = np.uint8  # BLOCK bits
KEY_STRIDE = 100.0  # > the difficulty range (CHECK -5..5), so domains never interleave
# Blocks looked at around the target, nearest first; the whole domain only where both fail.
# The second window leaves out the first one's blocks: a row only gets there when they held
# nothing eligible.
WINDOWS = (np.arange(-4, 4), np.concatenate([np.arange(-16, -4), np.arange(4, 16)]))
PAD = 16  # empty blocks around each domain: every window stays in the arrays and the domain
BITS = ((np.arange(1 << BLOCK)[:, None] >> np.arange(BLOCK)) & 1).astype(bool)  # mask -> bits
POPCOUNT = BITS.sum(axis=1)
THETA_BOUND = 4.0
# Candidates are ranked by their information at theta-hat rounded to this grid, read from a
# table computed once (grid points x items) instead of evaluating the 3PL for every candidate.
THETA_STEP = 0.01
PRIOR_PRECISION = 1.0
STATE_CELLS = 16_000_000  # learners x items per batch (int32 last-seen times: 64 MB)

DAY_S = 86_400


@dataclass
class Pool:
    """The active items of each domain in blocks of BLOCK, in difficulty order.

    Blocks are numbered domain by domain, each domain's in ascending difficulty, with PAD empty
    blocks before every domain and after the last, so a window of blocks around any target
    stays inside the arrays and never reaches another domain's items. ``real_key`` (domain *
    KEY_STRIDE + mean difficulty of the real blocks, ascending) finds the block nearest an
    ability with one searchsorted. A learner's seen items are one BLOCK-bit mask per block.
    """

    block_items: np.ndarray  # (blocks, BLOCK) item indexes, -1 padding
    block_centre: np.ndarray  # (blocks,) mean difficulty (0 for empty blocks)
    block_full: np.ndarray  # (blocks,) bit mask of the block's real items
    real_key: np.ndarray  # (real blocks,) domain * KEY_STRIDE + centre, ascending
    domain_shift: np.ndarray  # (domains,) block index = real position + this
    domain_blocks: np.ndarray  # (domains, max blocks) block indexes, padded with an empty block
    block_of_item: np.ndarray  # (items,) block index, -1 for inactive items
    bit_of_item: np.ndarray  # (items,) the item's bit in its block's mask
    domain_items: list[np.ndarray]  # active items of each domain

    @classmethod
    def of(cls, item_domain: np.ndarray, item_b: np.ndarray, active: np.ndarray, n_domains: int) -> Pool:
        blocks: list[np.ndarray | None] = []
        spans, domain_items = [], []
        for d in range(n_domains):
            items = np.flatnonzero(active & (item_domain == d))
            items = items[np.argsort(item_b[items], kind="stable")]
            domain_items.append(items)
            blocks.extend([None] * PAD)
            first = len(blocks)
            blocks.extend(items[start : start + BLOCK] for start in range(0, len(items), BLOCK))
            spans.append(range(first, len(blocks)))
        blocks.extend([None] * PAD)
        block_items = np.full((len(blocks), BLOCK), -1, dtype=np.int64)
        block_of_item = np.full(len(item_b), -1, dtype=np.int64)
        bit_of_item = np.zeros(len(item_b), dtype=MASK)
        centre = np.zeros(len(blocks))
        full = np.zeros(len(blocks), dtype=MASK)
        for i, members in enumerate(blocks):
            if members is None:
                continue
            block_items[i, : len(members)] = members
            block_of_item[members] = i
            bit_of_item[members] = (1 << np.arange(len(members))).astype(MASK)
            centre[i] = item_b[members].mean()
            full[i] = (1 << len(members)) - 1
        widest = max((len(span) for span in spans), default=0) or 1
        domain_blocks = np.zeros((n_domains, widest), dtype=np.int64)  # block 0 is empty
        for d, span in enumerate(spans):
            domain_blocks[d, : len(span)] = span
        keys = [d * KEY_STRIDE + centre[span.start : span.stop] for d, span in enumerate(spans)]
        before = np.cumsum([0] + [len(span) for span in spans[:-1]])  # real blocks of earlier domains
        shift = np.array([span.start for span in spans], dtype=np.int64) - before
        return cls(
            block_items, centre, full, np.concatenate(keys), shift, domain_blocks,
            block_of_item, bit_of_item, domain_items,
        )  # fmt: skip

    def nearest(self, domain: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The block of ``domain`` whose key is the first at or above ``target``'s (the one
        past the domain's last when none is)."""
        return np.searchsorted(self.real_key, domain * KEY_STRIDE + target) + self.domain_shift[domain]


def probability(theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """3PL probability of a correct answer."""
    return c + (1.0 - c) / (1.0 + np.exp(-a * (theta - b)))


def information(theta: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Fisher information of a 3PL item at theta (Lord 1980, eq. 5-19)."""
    p = probability(theta, a, b, c)
    return a * a * ((1.0 - p) / p) * ((p - c) / (1.0 - c)) ** 2


def information_table(a: np.ndarray, b: np.ndarray, c: np.ndarray, pool: Pool) -> np.ndarray:
    """Information of every block's items at every THETA_STEP grid point of [-THETA_BOUND,
    THETA_BOUND], (grid points, blocks, BLOCK), -inf where a block has no item: one gather
    reads a block's eight values. float32: it only ranks candidates."""
    grid = np.arange(-THETA_BOUND, THETA_BOUND + THETA_STEP / 2, THETA_STEP)
    per_item = information(grid[:, None], a[None, :], b[None, :], c[None, :]).astype(np.float32)
    table = per_item[:, np.maximum(pool.block_items, 0)]
    table[:, pool.block_items < 0] = -np.inf
    return table


def grid_point(theta: np.ndarray) -> np.ndarray:
    """The information_table row of each theta (clipped to the bounds, like the estimates)."""
    return np.rint((np.clip(theta, -THETA_BOUND, THETA_BOUND) + THETA_BOUND) / THETA_STEP).astype(np.int64)


@dataclass
class Selected:
    """Per attempt, in the order the slots were given: the item and whether it was right."""

    item: np.ndarray
    correct: np.ndarray


def select_items(
    rng: np.random.Generator,
    *,
    slot_learner: np.ndarray,
    slot_start_s: np.ndarray,
    slot_domains: np.ndarray,
    theta: np.ndarray,
    item_domain: np.ndarray,
    item_a: np.ndarray,
    item_b: np.ndarray,
    item_c: np.ndarray,
    item_active: np.ndarray,
    n_domains: int,
) -> Selected:
    """Pick every attempt's item; slots are grouped by learner, each learner's in time order.

    ``slot_domains`` is ``(n, 2)``: the attempt's domain, then the learner's other domain (the
    same one for a one-domain learner), tried when the first has nothing left unseen.
    ``slot_start_s`` is the start of the attempt's session, in seconds (> 0).
    """
    n = len(slot_learner)
    n_learners, n_items = len(theta), len(item_b)
    item = np.zeros(n, dtype=np.int64)
    correct = np.zeros(n, dtype=bool)
    if n == 0:
        return Selected(item, correct)
    pool = Pool.of(item_domain, item_b, item_active, n_domains)
    table = information_table(item_a, item_b, item_c, pool)
    viewers = np.zeros(n_items, dtype=np.int64)
    cap = max(1, int(np.ceil(MAX_EXPOSURE * n_learners)))
    count = np.bincount(slot_learner, minlength=n_learners)
    offset = np.cumsum(count) - count
    batch = max(1, STATE_CELLS // max(n_items, 1))
    for lo in range(0, n_learners, batch):
        learners = np.arange(lo, min(lo + batch, n_learners))
        _select_batch(
            rng, learners, offset, count, slot_start_s, slot_domains, theta,
            item_a, item_b, item_c, table, pool, viewers, cap, item, correct,
        )  # fmt: skip
    return Selected(item, correct)


def _select_batch(
    rng: np.random.Generator,
    learners: np.ndarray,
    offset: np.ndarray,
    count: np.ndarray,
    slot_start_s: np.ndarray,
    slot_domains: np.ndarray,
    theta: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
    table: np.ndarray,
    pool: Pool,
    viewers: np.ndarray,
    cap: int,
    item_out: np.ndarray,
    correct_out: np.ndarray,
) -> None:
    # Most attempts first: the learners still answering in round k are then rows 0..n-1, so
    # every per-learner state is read and written through a slice, not an index array.
    learners = learners[np.argsort(-count[learners], kind="stable")]
    m, n_items = len(learners), len(b)
    n_slots = count[learners]
    answering = np.searchsorted(-n_slots, -np.arange(int(n_slots.max(initial=0))), "left")
    first_slot = offset[learners]
    true_theta = theta[learners]
    rows = np.arange(m)
    # last_seen[l, i]: session start (s) of learner l's last answer to item i; 0 = never.
    last_seen = np.zeros((m, n_items), dtype=np.int32)
    seen = np.zeros((m, len(pool.block_full)), dtype=MASK)  # the same, as bits: answered ever
    closed = np.zeros(len(pool.block_full), dtype=MASK)  # items closed by exposure control
    np.bitwise_or.at(closed, pool.block_of_item[viewers >= cap], pool.bit_of_item[viewers >= cap])
    estimate = np.zeros(m)
    precision = np.full(m, PRIOR_PRECISION)
    review_next = np.zeros(m, dtype=np.int64)  # index into the learner's own history
    for k, n in enumerate(answering.tolist()):
        local = rows[:n]
        slot = first_slot[:n] + k
        start = slot_start_s[slot]
        target = estimate[:n]
        pick = np.full(n, -1, dtype=np.int64)

        review = np.flatnonzero(rng.random(n) < REVIEW_SHARE)
        if len(review):
            pick[review] = _review(review, first_slot[review], k, start[review], review_next,
                                   last_seen, slot_start_s, item_out)  # fmt: skip
        todo = np.flatnonzero(pick < 0)
        for which in (0, 1):
            for allowed in (pool.block_full & ~closed, pool.block_full):
                if len(todo) == 0:
                    break
                pick[todo] = _most_informative(
                    rng, seen, allowed, todo, slot_domains[slot[todo], which], target[todo], table, pool
                )
                todo = todo[pick[todo] < 0]
        if len(todo):  # nothing left unseen in either domain: repeat, longest ago first
            pick[todo] = _oldest(last_seen, todo, slot_domains[slot[todo], 0], start[todo], pool)

        # The answer, from the true ability; then the estimate, from the answer.
        pa, pb, pc = a[pick], b[pick], c[pick]
        right = rng.random(n) < probability(true_theta[:n], pa, pb, pc)
        p_hat = probability(target, pa, pb, pc)
        gain = (p_hat - pc) / (1.0 - pc)
        score = pa * (right - p_hat) * gain / p_hat
        precision[:n] += pa * pa * ((1.0 - p_hat) / p_hat) * gain * gain  # information() at p_hat
        estimate[:n] = np.clip(target + score / precision[:n], -THETA_BOUND, THETA_BOUND)
        item_out[slot], correct_out[slot] = pick, right

        blk, bit = pool.block_of_item[pick], pool.bit_of_item[pick]
        first = (seen[local, blk] & bit) == 0
        seen[local, blk] |= bit
        last_seen[local, pick] = start
        new = pick[first]
        np.add.at(viewers, new, 1)
        full = new[viewers[new] >= cap]
        if len(full):
            np.bitwise_or.at(closed, pool.block_of_item[full], pool.bit_of_item[full])


def _review(
    local: np.ndarray,
    first_slot: np.ndarray,
    k: int,
    start: np.ndarray,
    review_next: np.ndarray,
    last_seen: np.ndarray,
    slot_start_s: np.ndarray,
    item_out: np.ndarray,
) -> np.ndarray:
    """The item each learner answered longest ago (walking their own history in order, skipping
    answers superseded by a later one), if at least REVIEW_INTERVAL_DAYS ago; -1 otherwise."""
    out = np.full(len(local), -1, dtype=np.int64)
    todo = np.arange(len(local))
    while len(todo):
        j = review_next[local[todo]]
        has = j < k
        todo, j = todo[has], j[has]
        then = slot_start_s[first_slot[todo] + j]
        item = item_out[first_slot[todo] + j]
        superseded = last_seen[local[todo], item] != then
        due = ~superseded & (then <= start[todo] - REVIEW_INTERVAL_DAYS * DAY_S)
        out[todo[due]] = item[due]
        review_next[local[todo[due | superseded]]] += 1
        todo = todo[superseded]
    return out


def _most_informative(
    rng: np.random.Generator,
    seen: np.ndarray,
    allowed: np.ndarray,
    local: np.ndarray,
    domain: np.ndarray,
    target: np.ndarray,
    table: np.ndarray,
    pool: Pool,
) -> np.ndarray:
    """Randomesque pick among the most informative eligible items near ``target``; -1 if none.

    Eligible: an ``allowed`` bit the learner has not ``seen``. The CANDIDATE_BLOCKS nearest
    blocks holding one are looked for in a window around the target first, and in the whole
    domain only where that fails; then one of the RANDOMESQUE most informative eligible items
    of those blocks is taken, uniformly.
    """
    centre = pool.nearest(domain, target)
    chosen = np.zeros((len(local), CANDIDATE_BLOCKS), dtype=np.int64)
    bits = np.zeros((len(local), CANDIDATE_BLOCKS), dtype=MASK)
    todo = np.arange(len(local))
    for window in (*WINDOWS, None):
        blocks = pool.domain_blocks[domain[todo]] if window is None else centre[todo, None] + window
        chosen[todo], bits[todo] = _nearest_blocks(blocks, seen, allowed, local[todo], target[todo], pool)
        todo = todo[bits[todo, 0] == 0]
        if len(todo) == 0:
            break
    n = len(local)
    rows = np.arange(n)
    valid = BITS[bits].reshape(n, -1)
    info = np.where(valid, table[grid_point(target)[:, None], chosen].reshape(n, -1), -np.inf)
    # The RANDOMESQUE best by repeated argmax: on rows this short, faster than argpartition.
    n_ok = np.minimum(POPCOUNT[bits].sum(axis=1), RANDOMESQUE)
    nth = (rng.random(n) * n_ok).astype(np.int64)
    best = np.argmax(info, axis=1)
    for rank in range(1, min(RANDOMESQUE, info.shape[1])):
        info[rows, best] = -np.inf
        later = nth >= rank
        best = np.where(later, np.argmax(info, axis=1), best)
    item = pool.block_items[chosen[rows, best // BLOCK], best % BLOCK]
    return np.where(n_ok > 0, item, -1)


def _nearest_blocks(
    blocks: np.ndarray,
    seen: np.ndarray,
    allowed: np.ndarray,
    local: np.ndarray,
    target: np.ndarray,
    pool: Pool,
) -> tuple[np.ndarray, np.ndarray]:
    """Among ``blocks`` (per learner), the CANDIDATE_BLOCKS nearest the target that hold an
    eligible item, and their eligible bits (0 where fewer were found): the nearest first."""
    avail = allowed[blocks] & ~seen[local[:, None], blocks]
    distance = np.where(avail != 0, np.abs(pool.block_centre[blocks] - target[:, None]), np.inf)
    rows = np.arange(len(local))
    chosen = np.zeros((len(local), CANDIDATE_BLOCKS), dtype=np.int64)
    bits = np.zeros((len(local), CANDIDATE_BLOCKS), dtype=MASK)
    for rank in range(min(CANDIDATE_BLOCKS, blocks.shape[1])):  # argmin passes (see above)
        near = np.argmin(distance, axis=1)
        chosen[:, rank], bits[:, rank] = blocks[rows, near], avail[rows, near]
        distance[rows, near] = np.inf
    return chosen, bits


def _oldest(
    last_seen: np.ndarray, local: np.ndarray, domain: np.ndarray, start: np.ndarray, pool: Pool
) -> np.ndarray:
    """The domain's item this learner answered longest ago, outside this session if one was
    (a session longer than the domain repeats its own items, least recent first); -1 for a
    domain without items."""
    out = np.full(len(local), -1, dtype=np.int64)
    for d in np.unique(domain):
        rows = np.flatnonzero(domain == d)
        items = pool.domain_items[d]
        if len(items) == 0:
            continue
        seen = last_seen[local[rows][:, None], items[None, :]].astype(np.int64)  # (r, items)
        ok = seen < start[rows, None]
        best = np.argmin(np.where(ok, seen, np.iinfo(np.int64).max), axis=1)
        found = ok[np.arange(len(rows)), best]
        out[rows] = items[np.where(found, best, np.argmin(seen, axis=1))]
    return out
