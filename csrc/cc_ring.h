/*
 * cc_ring.h: the bookkeeping behind ObjectPool: which objects the pool owns,
 * which of them are lent out, and the order of the idle ones.
 *
 * Two structures, both over opaque object pointers (the Cython binding owns
 * the references; nothing here calls out, so nothing here can re-enter):
 *
 *   idle[]    a ring (circular deque) of the idle objects with the time each
 *             went idle.  Objects come back at the back and are lent again
 *             from the back (LIFO: the warmest object is reused, and objects
 *             beyond what the load needs age at the front, where the idle
 *             timeout, shrink() and clear() drop them, oldest first):
 *
 *                 head (oldest idle)               back (newest idle)
 *                 [o3 t=10] [o7 t=12] [o1 t=15] ... [o4 t=31]
 *                 idle[head]            idle[(head + len - 1) % cap]
 *
 *   owned[]   an open-addressing set of every object the pool owns (idle,
 *             lent, or on its way back), keyed by identity (the pointer),
 *             with its state.  Linear probing, power-of-two size, load
 *             <= 1/2, backward-shift deletion (no tombstones).  This is what
 *             tells a legitimate put() from a double or foreign one.
 *
 * Invariants (cc_ring_check; after every mutation in debug builds):
 *   - every object in idle[] is in owned[] with state CC_RING_IDLE, and the
 *     number of owned objects in that state is `len`;
 *   - every owned object is reachable from its home slot without crossing an
 *     empty slot; `count` is the number of occupied slots;
 *   - len <= cap and count <= CC_MAX_ENTRIES.
 *
 * Capacity is reserved before an object is created (cc_ring_reserve), so
 * that adding it afterwards cannot fail: a factory's object is never lost to
 * an allocation failure.
 *
 * Cost: push, pop at either end, lookup, add and remove O(1) (expected for
 * the set); reserve amortized O(1).
 */
#ifndef CC_RING_H
#define CC_RING_H

#include "cc_common.h"

/* states of an owned object */
#define CC_RING_IDLE 0u       /* in idle[] */
#define CC_RING_LENT 1u       /* handed out */
#define CC_RING_RETURNING 2u  /* put() is running reset/validate on it */

typedef struct {
    void *obj;
    double since;        /* when it went idle (the pool's clock) */
} cc_idle_t;

typedef struct {
    void *obj;           /* NULL: empty slot */
    uint32_t state;
} cc_owned_t;

typedef struct {
    cc_idle_t *idle;
    uint32_t cap;        /* idle[] entries allocated */
    uint32_t head;       /* index of the oldest idle object */
    uint32_t len;        /* idle objects */

    cc_owned_t *owned;
    size_t mask;         /* owned[] has mask + 1 slots (0 when unallocated) */
    unsigned shift;      /* 64 - log2(mask + 1) */
    uint32_t count;      /* owned objects */
} cc_ring_t;

void cc_ring_init(cc_ring_t *r);
void cc_ring_free(cc_ring_t *r);

/* Move everything into *out and leave *r empty, so that a caller can release
 * the objects while *r is already consistent. */
void cc_ring_detach(cc_ring_t *r, cc_ring_t *out);

/* Make room for `n` owned objects (all of which may be idle).  CC_OK, or
 * CC_ENOMEM / CC_EFULL with nothing changed. */
int cc_ring_reserve(cc_ring_t *r, uint32_t n);

CC_INLINE size_t cc_ring_home(const cc_ring_t *r, const void *obj)
{
    /* objects are at least 8-aligned: drop the bits that never vary */
    return (size_t)((((uint64_t)(uintptr_t)obj >> 3) * UINT64_C(0x9E3779B97F4A7C15)) >> r->shift);
}

/* The owned entry of `obj`, or NULL.  Valid until the next add or remove. */
CC_INLINE cc_owned_t *cc_ring_find(const cc_ring_t *r, const void *obj)
{
    size_t p;
    if (r->count == 0)
        return NULL;
    for (p = cc_ring_home(r, obj);; p = (p + 1) & r->mask) {
        cc_owned_t *e = &r->owned[p];
        if (e->obj == obj)
            return e;
        if (e->obj == NULL)
            return NULL;
    }
}

/* Add an object that is not owned yet, in `state` (not CC_RING_IDLE: idle
 * objects enter through cc_ring_push).  Room must have been reserved. */
void cc_ring_add(cc_ring_t *r, void *obj, uint32_t state);

/* Forget an owned object that is not idle (its entry pointer goes stale). */
void cc_ring_remove(cc_ring_t *r, void *obj);

/* An owned, non-idle object becomes idle at the back of the ring. */
CC_INLINE void cc_ring_push(cc_ring_t *r, cc_owned_t *e, double since)
{
    uint32_t i = r->head + r->len;
    if (i >= r->cap)
        i -= r->cap;
    r->idle[i].obj = e->obj;
    r->idle[i].since = since;
    r->len++;
    e->state = CC_RING_IDLE;
}

/* The newest idle object becomes lent; NULL when none is idle. */
CC_INLINE void *cc_ring_lend_back(cc_ring_t *r)
{
    uint32_t i;
    void *obj;
    if (r->len == 0)
        return NULL;
    i = r->head + r->len - 1;
    if (i >= r->cap)
        i -= r->cap;
    obj = r->idle[i].obj;
    r->len--;
    cc_ring_find(r, obj)->state = CC_RING_LENT;
    return obj;
}

/* The oldest idle object (r->len > 0). */
CC_INLINE const cc_idle_t *cc_ring_front(const cc_ring_t *r)
{
    return &r->idle[r->head];
}

/* Take the oldest idle object out of the pool altogether (r->len > 0); the
 * caller now holds the pool's reference. */
void *cc_ring_drop_front(cc_ring_t *r);

/* Full invariant check; 1 when consistent.  O(cap + slots). */
int cc_ring_check(const cc_ring_t *r);

#ifdef CC_DEBUG
#define CC_RING_CHECK(r) CC_CHECK(cc_ring_check(r))
#else
#define CC_RING_CHECK(r) ((void)0)
#endif

#endif /* CC_RING_H */
