/*
 * cc_policy.h: the adaptive eviction policy, laid over a cc_lru_t table.
 *
 * W-TinyLFU with an adaptive window.  The policy adds no links of its own:
 * it keeps the table's one recency list as three contiguous segments, and
 * one tag byte per entry says which segment an entry is in.
 *
 *   table head                                                    table tail
 *   [ protected (P) ........ | probation (B) ...... | window (W) ....... ]
 *     oldest        newest     ^first_probation       ^first_window  newest
 *
 *   tags[i] = pending hits (bits 2-5, 0..15) | segment (bits 0-1: 1 W, 2 B,
 *             3 P; 0 for an index that is not a live entry)
 *
 *   - The window is an exact LRU: a hit moves the entry to the table's
 *     tail, as the plain LRU does.  New entries join there too.
 *   - The main space (probation, then protected, at most 80 % of main
 *     protected) is CLOCK-like: a hit only bumps the entry's pending count.
 *     Whoever examines the oldest entry of a main segment acts on the
 *     count: a counted probation entry is promoted to protected (the
 *     boundary moves: no pointer work), a counted protected entry goes to
 *     protected's newest end (second chance), an uncounted one is demoted
 *     to probation's newest end when protected is over its share.
 *   - Admission: when the window holds more than window_max entries, its
 *     oldest entry is the candidate.  If the table is over capacity it
 *     competes with the victim (the oldest uncounted probation entry, else
 *     protected): the higher count-min frequency stays, the candidate
 *     losing ties; if admitted it joins probation (the boundary moves).
 *   - Frequency: a 4-bit count-min sketch of depth 4, all four counters of
 *     a key in one 64-byte block (Caffeine's layout), about one 8-byte word
 *     per entry of capacity, halved every 10 x capacity requests.  Hits
 *     reach it late: the pending count is added when the entry is examined
 *     or leaves, and pending counts are halved with the sketch.
 *   - Adaptation: two direct-mapped ghost tables remember (fingerprint,
 *     eviction clock) of rejected candidates and of evicted main victims; a
 *     miss on one evicted within the last capacity/16 evictions of its kind
 *     is a vote for a larger window or a larger main space.  Every 32 votes
 *     the window moves (see cc_policy.c for the rule and the shift bursts).
 *
 * The pure-Python model corecache/_pure/adaptive.py makes the same
 * decisions from the same inputs (the keys' hash() values and the order of
 * calls); tests/test_policy_c.py checks that, step by step.
 *
 * How a binding drives it (every call under the table's lock):
 *   hit on entry i         cc_policy_hit(p, t, i)       (instead of
 *                                                         cc_lru_move_to_end)
 *   insert                 cc_policy_reserve(p, t), then cc_lru_insert(...)
 *                          (the entry lands at the table's tail), then
 *                          for (v = cc_policy_insert(p, t, i); v != CC_NIL;
 *                               v = cc_policy_evict(p, t))
 *                              release entries[v].key and .value
 *   delete, expire, pop    cc_policy_remove(p, t, i)    (instead of
 *                                                         cc_lru_remove)
 *   resize                 cc_policy_resize(p, n), then the evict loop
 *   clear                  cc_lru_detach(t, &old), cc_policy_clear(p)
 *   compact                cc_policy_compact(p, t)      (instead of
 *                                                         cc_lru_compact)
 * cc_policy_evict and cc_policy_remove unlink the entry from the table
 * themselves (cc_lru_remove), so its key and value pointers stay readable
 * until the next insert, exactly as after cc_lru_remove.  The policy owns
 * only its own arrays (tags, sketch, ghosts); the table owns the entries.
 *
 * Cost: hit O(1), one byte written (plus the LRU move for a window hit);
 * insert and evict amortized O(1) (promotions and second chances are paid
 * for by earlier hits; aging is O(capacity) every 10 x capacity requests);
 * remove O(1); resize and compact O(capacity).  Memory: tags 1 byte per
 * table slot, sketch 8 bytes per power-of-two word >= 3/4 of the capacity,
 * ghosts 2 x 8 bytes per power-of-two slot >= capacity/8: about 11.5 bytes
 * per entry at 1,000,000 entries.
 */
#ifndef CC_POLICY_H
#define CC_POLICY_H

#include "cc_common.h"
#include "cc_lru.h"

#define CC_SEG_MASK 0x03u
#define CC_SEG_WINDOW 1u
#define CC_SEG_PROBATION 2u
#define CC_SEG_PROTECTED 3u
#define CC_PENDING_ONE 0x04u
#define CC_PENDING_MASK 0x3Cu   /* 15 pending hits at most */

typedef struct {
    uint32_t capacity;        /* entries the table may hold (>= 1) */
    uint32_t window_max;      /* the window's target size */
    uint32_t window_limit;    /* window_max stays within 1 .. window_limit */
    uint32_t step;            /* the climber's next step, step_min .. step_max */
    uint32_t step_min, step_max;
    int32_t last_dir;         /* -1, 0, +1: the climber's last move */
    uint32_t delta;           /* how many evictions back a ghost still votes */

    uint32_t n[4];            /* live entries per segment (n[0] unused) */
    uint32_t first_probation; /* oldest probation entry, CC_NIL when empty */
    uint32_t first_window;    /* oldest window entry, CC_NIL when empty */
    uint8_t *tags;            /* per table index; tags_cap of them */
    uint32_t tags_cap;

    uint64_t hits_window, hits_main, misses;
    uint64_t snap_window, snap_main, snap_misses;  /* at the last decision */

    uint64_t *sketch;         /* NULL until the table is half full */
    size_t sketch_words;
    uint64_t block_mask;      /* sketch_words / 8 - 1 */
    uint64_t sample;          /* requests between agings: 10 x capacity */
    uint64_t next_age;        /* request count of the next aging */
    /* The first request count at which an insert has to look at next_age
     * (with a sketch) or burst_end (during a burst), so that it tests one
     * number; at most either, and recomputed whenever one changes.  It
     * changes no decision, so the pure model has no twin of it. */
    uint64_t next_event;

    /* The last victim whose counters were read and its estimate then, so
     * that a victim that keeps beating candidates is not read again for
     * each: counters only grow between agings, so `bound` stays at most the
     * estimate of entry bound_of until age() or until the entry leaves
     * (drop); resize, clear and compact forget it too.  It changes no
     * decision, so the pure model has no twin of it. */
    uint32_t bound_of;        /* CC_NIL: none */
    uint32_t bound;

    uint64_t *ghost;          /* two tables of ghost_mask + 1 slots: window's, main's */
    uint64_t ghost_mask;
    uint32_t window_seq, main_seq;  /* eviction clocks of the two kinds */
    uint32_t votes_window, votes_main;
    uint32_t ema;             /* running share of window votes, in 1/1024 */
    uint32_t miss_ema;        /* running miss ratio per round, in 1/1024 */
    uint64_t burst_end;       /* request count at which a burst ends; 0: none */
    uint32_t burst_from;      /* the window to return to */
    uint64_t agings, bursts;  /* for tests and stats */
} cc_policy_t;

/* murmur3's 64-bit finalizer: the policy's only view of a key. */
CC_INLINE uint64_t cc_mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xFF51AFD7ED558CCD);
    h ^= h >> 33;
    h *= UINT64_C(0xC4CEB9FE1A85EC53);
    h ^= h >> 33;
    return h;
}

/* A policy for `capacity` (>= 1) entries; nothing is allocated yet.
 * CC_OK or CC_EINVAL. */
int cc_policy_init(cc_policy_t *p, uint32_t capacity);
void cc_policy_free(cc_policy_t *p);

/* cc_policy_reserve's work when there is any (out of line). */
int cc_policy_grow(cc_policy_t *p, const cc_lru_t *t);

/* Before cc_lru_insert: grows the tags to cover the index the insert may
 * hand out (a free-list index < used, or used itself), and allocates the
 * sketch and ghosts once the table is about to be half full.  CC_OK or
 * CC_ENOMEM (then nothing changed). */
CC_INLINE int cc_policy_reserve(cc_policy_t *p, const cc_lru_t *t)
{
    if (p->tags_cap > t->used && p->sketch != NULL)
        return CC_OK;
    return cc_policy_grow(p, t);
}


/* cc_policy_evict's work when the window or the table is over its size
 * (out of line). */
uint32_t cc_policy_rebalance(cc_policy_t *p, cc_lru_t *t);

/* Rebalance and evict one entry: returns the index it unlinked from the
 * table (cc_lru_remove), or CC_NIL when the table fits its capacity.  The
 * test here is the one that ends every binding's evict loop. */
CC_INLINE uint32_t cc_policy_evict(cc_policy_t *p, cc_lru_t *t)
{
    if (p->n[CC_SEG_WINDOW] <= p->window_max && t->count <= p->capacity)
        return CC_NIL;
    return cc_policy_rebalance(p, t);
}

/* After cc_lru_insert put entry i at the table's tail (a miss): then
 * cc_policy_evict, in the same call (its first step of every insert). */
uint32_t cc_policy_insert(cc_policy_t *p, cc_lru_t *t, uint32_t i);

/* Take entry i out of the policy and the table (cc_lru_remove). */
void cc_policy_remove(cc_policy_t *p, cc_lru_t *t, uint32_t i);

/* The table was emptied (cc_lru_detach): forget every entry.  The sketch,
 * the ghosts and the window size stay. */
void cc_policy_clear(cc_policy_t *p);

/* A new capacity (>= 1): the window scales, the sketch is folded or
 * unfolded, the ghosts start over.  Evict afterwards until CC_NIL.
 * CC_OK, CC_EINVAL or CC_ENOMEM (then nothing changed). */
int cc_policy_resize(cc_policy_t *p, uint32_t capacity);

/* cc_lru_compact for a table with a policy: indices change, the policy
 * follows.  CC_OK or CC_ENOMEM (then nothing changed). */
int cc_policy_compact(cc_policy_t *p, cc_lru_t *t);

/* The sketch's estimate for a hash (0 before the sketch exists). */
uint32_t cc_policy_frequency(const cc_policy_t *p, int64_t hash);

/* Full invariant check against the table; returns 1 when consistent. O(n). */
int cc_policy_check(const cc_policy_t *p, const cc_lru_t *t);

#ifdef CC_DEBUG
#define CC_POLICY_CHECK(p, t) \
    CC_CHECK((t)->count > CC_CHECK_FULL_LIMIT || cc_policy_check(p, t))
#else
#define CC_POLICY_CHECK(p, t) ((void)0)
#endif

/* A hit on entry i: count it; a window entry also becomes the newest. */
CC_INLINE void cc_policy_hit(cc_policy_t *p, cc_lru_t *t, uint32_t i)
{
    unsigned tag = p->tags[i];
    if ((tag & CC_PENDING_MASK) != CC_PENDING_MASK)
        tag += CC_PENDING_ONE;
    p->tags[i] = (uint8_t)tag;
    if ((tag & CC_SEG_MASK) == CC_SEG_WINDOW) {
        p->hits_window++;
        if (i != t->tail) {
            if (i == p->first_window)
                p->first_window = t->entries[i].next;
            cc_lru_move_to_end(t, i);
        }
    }
    else {
        p->hits_main++;
    }
}

#endif /* CC_POLICY_H */
