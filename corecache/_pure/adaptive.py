"""The adaptive eviction policy in pure Python: the reference model of
``csrc/cc_policy.c``, decision for decision.

Both implementations take the same inputs (a token per entry, the key's
``hash()``, and the order of hits, inserts, removals, resizes and clears)
and make the same decisions: which entry is evicted or which candidate is
rejected, which segment every entry is in and in which order, the window
size after every climb.  Every quantity is an integer (C's uint32/uint64
arithmetic is emulated with masks where it can wrap), no floating point
and no randomness, so the two agree bit for bit; ``tests/test_policy_c.py``
drives both with the same random operations and compares them.

The design is W-TinyLFU (a small LRU *window* in front of a *main* space
that admits by frequency) with an adaptive window, in three parts:

Segments.  Entries are in one of three segments, each a queue (oldest
first)::

    protected (P) | probation (B) | window (W)

The window is an exact LRU: a hit moves the entry to its newest end.  The
main space (probation and protected, 80 % of it at most protected) is
CLOCK-like: a hit only counts it (``pending``, 0-15, per entry) and nothing
moves; whoever examines the oldest entry of a main segment later acts on
the count (a counted probation entry is promoted to protected instead of
becoming the victim; a counted protected entry gets a second chance).  So a
main hit does no pointer work at all.

Admission.  When the window holds more than ``window_max`` entries its
oldest entry is the *candidate*; if the cache is full it competes with the
*victim*, the oldest uncounted probation entry (else protected): the one
with the higher frequency in a count-min sketch stays, the candidate losing
ties.  The sketch has four 4-bit counters per key in one 64-byte block
(Caffeine's layout), sized to the capacity, and is halved every
10 x capacity requests so that old popularity fades.  Hits reach the sketch
late: an entry's pending count is added when the entry is examined or
leaves (halved with the sketch meanwhile).

Adaptation.  Two small ghost records remember the last ``capacity / 16``
rejected candidates and the last ``capacity / 16`` evicted main victims.  A
miss on a recently rejected candidate is a vote for a larger window (a
window that much larger would have hit); a miss on a recent victim is a
vote for a larger main space.  Every 32 votes the window moves: up if the
votes say so (by more than 6) and, once the window is the larger part, if
its hits per entry are also higher than main's (ghost votes overrate the
window near the top, where a tiny main space cannot show what it would
admit); down if the votes or the densities say so.  The step doubles while
the direction holds and halves when it turns (Rprop), between capacity/256
and capacity/2.

Shifts.  When popularity moves to keys the sketch has not seen, the filter
keeps the old keys for as long as their counts take to fade.  A round with
two thirds of its votes for the window, after rounds that were calm (a
running share under 0.6) and with a miss ratio a quarter above the running
one, is taken for such a shift: the sketch is halved twice, and the window
jumps to 90 % for 2.5 x capacity requests, after which it returns where it
was, leaving the main space full of what was recent.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, Hashable, Iterator, List, Optional

__all__ = ["AdaptivePolicy", "SEGMENTS"]

M32 = (1 << 32) - 1
M64 = (1 << 64) - 1

# segments, as in cc_policy.h (0 is "not an entry")
WINDOW, PROBATION, PROTECTED = 1, 2, 3
SEGMENTS = {WINDOW: "window", PROBATION: "probation", PROTECTED: "protected"}

PENDING_MAX = 15          # hits counted per entry between examinations
SAMPLE_FACTOR = 10        # the sketch is halved every SAMPLE_FACTOR x capacity requests
STEP_MAX_DIV = 2          # the climber's largest step is capacity / this
VOTES = 32                # ghost votes per climbing decision
VOTE_MARGIN = 6           # ... one side must lead by more than this (about sqrt(VOTES))
EMA_ONE = 1024            # the running share of window votes, in 1/1024
EMA_KEEP = 7              # ... kept (in eighths) per decision
SHIFT_SHARE = (2, 3)      # a round with this share of window votes ...
SHIFT_CALM = (3, 5)       # ... after a running share below this is a shift
MISS_SURGE = (5, 4)       # ... if its miss ratio is this much above the running one
BURST_WINDOW = (9, 10)    # the window during a burst, as a share of capacity
BURST_LENGTH = (5, 2)     # the burst's length in requests, per entry of capacity
GHOST_SEQ = 0x7FFFFFFF    # ghost records keep 31 bits of their eviction clock
RESET_MASK = 0x7777777777777777


def mix64(h: int) -> int:
    """murmur3's 64-bit finalizer over the hash as C's uint64_t."""
    h &= M64
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & M64
    h ^= h >> 33
    return h


def sketch_words(capacity: int) -> int:
    """Words (16 counters each) of the sketch: the power of two at least
    3/4 of the capacity, and at least one 8-word block."""
    n = 8
    while n * 4 < capacity * 3:
        n *= 2
    return n


def ghost_slots(delta: int) -> int:
    """Slots of each ghost table: the power of two at least 2 x delta."""
    n = 8
    while n < 2 * delta:
        n *= 2
    return n


class _Entry:
    __slots__ = ("seg", "pending", "hash")

    def __init__(self, hash_: int) -> None:
        self.seg = WINDOW
        self.pending = 0
        self.hash = hash_ & M64


class AdaptivePolicy:
    """The adaptive policy over entries named by hashable tokens.

    The owner keeps the keys and values; it calls :meth:`insert` after
    adding an entry, then :meth:`evict` until it returns ``None`` (each
    call names one entry to drop), :meth:`hit` on every hit, :meth:`remove`
    when it takes an entry out for another reason, :meth:`resize` and
    :meth:`clear`.

    :param capacity: the most entries the cache holds (at least 1)
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._entries: Dict[Hashable, _Entry] = {}
        self._segs: Dict[int, "OrderedDict[Hashable, _Entry]"] = {
            WINDOW: OrderedDict(), PROBATION: OrderedDict(), PROTECTED: OrderedDict()}
        self.capacity = capacity
        self.window_max = max(1, capacity // 100)
        self._limits()
        self.step = self._step_min
        self.last_dir = 0
        # counters (C: uint64)
        self.hits_window = 0
        self.hits_main = 0
        self.misses = 0
        self._snap_window = 0
        self._snap_main = 0
        self._snap_misses = 0
        self.miss_ema = 0
        # sketch and ghosts, allocated once the cache is half full
        self._sketch: Optional[List[int]] = None
        self._block_mask = 0
        self._next_age = 0
        self._ghost: Optional[List[int]] = None
        self._ghost_mask = 0
        self.window_seq = 0
        self.main_seq = 0
        self.votes_window = 0
        self.votes_main = 0
        self.ema = EMA_ONE // 2
        self.burst_end = 0        # request count at which a burst ends (0: none)
        self.burst_from = 0       # the window to return to
        self.agings = 0
        self.bursts = 0

    # ---- sizes -----------------------------------------------------------

    def _limits(self) -> None:
        cap = self.capacity
        self._window_limit = max(1, cap - cap // 100)
        self._step_min = max(1, cap // 256)
        self._step_max = max(1, cap // STEP_MAX_DIV)
        self._delta = max(1, cap // 16)
        self._sample = SAMPLE_FACTOR * cap

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: Hashable) -> bool:
        return token in self._entries

    @property
    def requests(self) -> int:
        return self.hits_window + self.hits_main + self.misses

    def protected_max(self) -> int:
        return (self.capacity - self.window_max) * 4 // 5

    def sizes(self) -> Dict[str, int]:
        return {name: len(self._segs[s]) for s, name in SEGMENTS.items()}

    def segment(self, token: Hashable) -> str:
        return SEGMENTS[self._entries[token].seg]

    def pending(self, token: Hashable) -> int:
        return self._entries[token].pending

    def order(self) -> List[Hashable]:
        """Every token in the table's list order: protected, probation,
        window, each oldest first."""
        return (list(self._segs[PROTECTED]) + list(self._segs[PROBATION])
                + list(self._segs[WINDOW]))

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self.order())

    def oldest(self) -> Optional[Hashable]:
        """The entry given up first when the owner, not the policy, needs
        room (a memory limit, popitem, evict(n)): the oldest probation
        entry, else the oldest protected, else the oldest window entry
        (ccpy_policy_oldest in corecache/_lru_py.h)."""
        for s in (PROBATION, PROTECTED, WINDOW):
            seg = self._segs[s]
            if seg:
                return next(iter(seg))
        return None

    # ---- the sketch ------------------------------------------------------

    def _allocate(self) -> None:
        self._sketch = [0] * sketch_words(self.capacity)
        self._block_mask = (len(self._sketch) >> 3) - 1
        self._next_age = self.requests + self._sample
        self._ghost = [0] * (2 * ghost_slots(self._delta))
        self._ghost_mask = len(self._ghost) // 2 - 1

    def _add(self, m: int, n: int) -> None:
        """Add n to the four counters of mixed hash m, saturating at 15."""
        t = self._sketch
        if t is None:
            return
        base = (m & self._block_mask) << 3
        for i in range(4):
            w = base + 2 * i + ((m >> (32 + 8 * i)) & 1)
            s = ((m >> (33 + 8 * i)) & 15) << 2
            v = (t[w] >> s) & 15
            nv = v + n if v + n < 15 else 15
            t[w] += (nv - v) << s

    def frequency(self, hash_: int) -> int:
        return self._freq(mix64(hash_))

    def _freq(self, m: int) -> int:
        t = self._sketch
        if t is None:
            return 0
        base = (m & self._block_mask) << 3
        f = 15
        for i in range(4):
            w = base + 2 * i + ((m >> (32 + 8 * i)) & 1)
            v = (t[w] >> (((m >> (33 + 8 * i)) & 15) << 2)) & 15
            if v < f:
                f = v
        return f

    def _age(self) -> None:
        t = self._sketch
        if t is None:
            return
        for i in range(len(t)):
            t[i] = (t[i] >> 1) & RESET_MASK
        for e in self._entries.values():
            e.pending >>= 1
        self.agings += 1

    def _flush(self, e: _Entry) -> None:
        if e.pending:
            self._add(mix64(e.hash), e.pending)
            e.pending = 0

    # ---- ghosts and the climber ------------------------------------------

    def _ghost_record(self, e: _Entry, main: bool) -> None:
        g = self._ghost
        if g is None:
            return
        m = mix64(e.hash)
        slot = m & self._ghost_mask
        if main:
            g[slot + self._ghost_mask + 1] = ((m >> 32) << 32) | (self.main_seq & GHOST_SEQ)
        else:
            g[slot] = ((m >> 32) << 32) | (self.window_seq & GHOST_SEQ)

    def _ghost_check(self, m: int) -> None:
        g = self._ghost
        if g is None:
            return
        slot = m & self._ghost_mask
        fp = m >> 32
        rec = g[slot]
        if rec and (rec >> 32) == fp:
            g[slot] = 0
            if ((self.window_seq - rec) & GHOST_SEQ) < self._delta:
                self._vote(1)
        slot += self._ghost_mask + 1
        rec = g[slot]
        if rec and (rec >> 32) == fp:
            g[slot] = 0
            if ((self.main_seq - rec) & GHOST_SEQ) < self._delta:
                self._vote(0)

    def _vote(self, window: int) -> None:
        if window:
            self.votes_window += 1
        else:
            self.votes_main += 1
        if self.votes_window + self.votes_main >= VOTES:
            self._decide()

    def _shift(self) -> bool:
        """Popularity shifted (the filter keeps rejecting what comes back):
        forget faster, and let recency in for a while (True) unless the
        window is large already."""
        self._age()
        self._age()
        w = self.window_max
        if self.burst_end == 0 and w * BURST_WINDOW[1] < BURST_WINDOW[0] * self.capacity:
            self.burst_from = w
            self.window_max = max(1, self.capacity * BURST_WINDOW[0] // BURST_WINDOW[1])
            self.burst_end = self.requests + max(
                1, self.capacity * BURST_LENGTH[0] // BURST_LENGTH[1])
            self.step = self._step_max
            self.last_dir = 1
            self.bursts += 1
            return True
        return False

    def _decide(self) -> None:
        vw, vm = self.votes_window, self.votes_main
        self.votes_window = self.votes_main = 0
        hw = min(self.hits_window - self._snap_window, M32)
        hm = min(self.hits_main - self._snap_main, M32)
        self._snap_window = self.hits_window
        self._snap_main = self.hits_main
        calm = self.ema * SHIFT_CALM[1] < SHIFT_CALM[0] * EMA_ONE
        self.ema = (self.ema * EMA_KEEP + vw * EMA_ONE // (vw + vm) * (8 - EMA_KEEP)) // 8
        dm = self.misses - self._snap_misses
        dr = dm + hw + hm
        self._snap_misses = self.misses
        ratio = dm * EMA_ONE // dr if dr else 0
        surge = ratio * MISS_SURGE[1] >= self.miss_ema * MISS_SURGE[0]
        self.miss_ema = (self.miss_ema * 7 + ratio) // 8 if self.miss_ema else ratio
        if (calm and surge and vw * SHIFT_SHARE[1] >= SHIFT_SHARE[0] * (vw + vm)
                and self._shift()):
            return
        w = self.window_max
        m = max(1, self.capacity - w)
        dense = 1 if w < m or hw * m > hm * w else -1
        lead = vw - vm
        vote = 1 if lead > VOTE_MARGIN else -1 if lead < -VOTE_MARGIN else 0
        if vote > 0 and dense > 0:
            direction = 1
        elif vote != 0:
            direction = -1
        else:
            direction = 0
        if direction == 0:
            self.step = max(self.step // 2, self._step_min)
            return
        if direction == self.last_dir:
            self.step = min(self.step * 2, self._step_max)
        else:
            self.step = max(self.step // 2, self._step_min)
        self.last_dir = direction
        self.window_max = min(max(w + direction * self.step, 1), self._window_limit)

    def _end_burst(self) -> None:
        self.burst_end = 0
        self.window_max = min(max(self.burst_from, 1), self._window_limit)
        self.step = self._step_min
        self.last_dir = 0
        self.votes_window = self.votes_main = 0

    # ---- operations ------------------------------------------------------

    def hit(self, token: Hashable) -> None:
        """Count a hit on an entry (moves it only when it is in the window)."""
        e = self._entries[token]
        if e.pending < PENDING_MAX:
            e.pending += 1
        if e.seg == WINDOW:
            self.hits_window += 1
            self._segs[WINDOW].move_to_end(token)
        else:
            self.hits_main += 1

    def insert(self, token: Hashable, hash_: int) -> None:
        """A new entry, after a miss: it joins the window's newest end.
        Call :meth:`evict` next, until it returns None."""
        if token in self._entries:
            raise KeyError(f"{token!r} is already an entry")
        if self._sketch is None and (len(self._entries) + 1) * 2 >= self.capacity:
            self._allocate()
        self.misses += 1
        if self.burst_end and self.requests >= self.burst_end:
            self._end_burst()
        if self._sketch is not None and self.requests >= self._next_age:
            self._age()
            self._next_age = self.requests + self._sample
        e = _Entry(hash_)
        m = mix64(e.hash)
        self._add(m, 1)
        self._ghost_check(m)
        self._entries[token] = e
        self._segs[WINDOW][token] = e

    def _move(self, token: Hashable, e: _Entry, to: int) -> None:
        del self._segs[e.seg][token]
        e.seg = to
        self._segs[to][token] = e

    def _drop(self, token: Hashable, e: _Entry) -> None:
        del self._segs[e.seg][token]
        del self._entries[token]

    def _demote_protected(self) -> None:
        prot = self._segs[PROTECTED]
        pmax = self.protected_max()
        while len(prot) > pmax:
            token, e = next(iter(prot.items()))
            counted = e.pending
            self._flush(e)
            if counted:
                prot.move_to_end(token)
            else:
                self._move(token, e, PROBATION)

    def _victim(self) -> Optional[Hashable]:
        """The oldest uncounted probation entry, promoting counted ones on
        the way; else the oldest uncounted protected entry; else None."""
        prob = self._segs[PROBATION]
        while prob:
            token, e = next(iter(prob.items()))
            if not e.pending:
                return token
            self._flush(e)
            self._move(token, e, PROTECTED)
            self._demote_protected()
        prot = self._segs[PROTECTED]
        while prot:
            token, e = next(iter(prot.items()))
            if not e.pending:
                return token
            self._flush(e)
            prot.move_to_end(token)
        return None

    def evict(self) -> Optional[Hashable]:
        """Rebalance the segments and name the next entry to drop (already
        forgotten here), or None when the cache fits."""
        win = self._segs[WINDOW]
        while len(win) > self.window_max:
            cand, ce = next(iter(win.items()))
            if len(self._entries) <= self.capacity:
                self._flush(ce)
                self._move(cand, ce, PROBATION)
                continue
            victim = self._victim()
            self.window_seq = (self.window_seq + 1) & M32
            self._flush(ce)
            if victim is not None:
                ve = self._entries[victim]
                if self._freq(mix64(ce.hash)) > self._freq(mix64(ve.hash)):
                    self._drop(victim, ve)
                    self.main_seq = (self.main_seq + 1) & M32
                    self._ghost_record(ve, True)
                    self._move(cand, ce, PROBATION)
                    return victim
            self._drop(cand, ce)
            self._ghost_record(ce, False)
            return cand
        if len(self._entries) > self.capacity:
            victim = self._victim()
            if victim is None:
                token, e = next(iter(win.items()))
                self.window_seq = (self.window_seq + 1) & M32
                self._flush(e)
                self._drop(token, e)
                self._ghost_record(e, False)
                return token
            ve = self._entries[victim]
            self._drop(victim, ve)
            self.main_seq = (self.main_seq + 1) & M32
            self._ghost_record(ve, True)
            return victim
        return None

    def remove(self, token: Hashable) -> None:
        """Forget an entry the owner took out (delete, expiry, pop)."""
        e = self._entries[token]
        self._flush(e)
        self._drop(token, e)

    def clear(self) -> None:
        """Forget every entry; the sketch, the ghosts and the window stay."""
        self._entries.clear()
        for s in self._segs.values():
            s.clear()

    def resize(self, capacity: int) -> None:
        """A new capacity: the window and the limits scale with it, the
        sketch is folded or unfolded (estimates survive), the ghosts start
        over.  Call :meth:`evict` next, until it returns None."""
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        old = self.capacity
        if self.burst_end:
            self.burst_end = 0
            self.window_max = self.burst_from
        self.capacity = capacity
        self._limits()
        self.window_max = min(max(self.window_max * capacity // old, 1), self._window_limit)
        self.step = min(max(self.step, self._step_min), self._step_max)
        if self._sketch is not None:
            t = self._sketch
            n = sketch_words(capacity)
            if n > len(t):
                self._sketch = [t[w & (len(t) - 1)] for w in range(n)]
            elif n < len(t):
                out = t[:n]
                for j in range(n, len(t), n):
                    for w in range(n):
                        a, b = out[w], t[j + w]
                        if a != b:
                            v = 0
                            for s in range(0, 64, 4):
                                x, y = (a >> s) & 15, (b >> s) & 15
                                v |= (x if x > y else y) << s
                            out[w] = v
                self._sketch = out
            self._block_mask = (len(self._sketch) >> 3) - 1
            self._next_age = self.requests + self._sample
            self._ghost = [0] * (2 * ghost_slots(self._delta))
            self._ghost_mask = len(self._ghost) // 2 - 1
        self.votes_window = self.votes_main = 0

    # ---- checks ----------------------------------------------------------

    def check(self) -> None:
        """Raise AssertionError unless every invariant holds."""
        n = 0
        for s, od in self._segs.items():
            for token, e in od.items():
                assert self._entries.get(token) is e and e.seg == s, token
                assert 0 <= e.pending <= PENDING_MAX
                n += 1
        assert n == len(self._entries)
        assert 1 <= self.window_max <= self._window_limit <= self.capacity
        assert self._step_min <= self.step <= self._step_max
        assert self.last_dir in (-1, 0, 1)

    def state(self) -> Dict[str, Any]:
        """The figures the differential test compares after every step."""
        return {"window_max": self.window_max, "step": self.step, "last_dir": self.last_dir,
                "sizes": self.sizes(), "votes": (self.votes_window, self.votes_main),
                "seqs": (self.window_seq, self.main_seq), "ema": self.ema,
                "burst_end": self.burst_end, "agings": self.agings}
