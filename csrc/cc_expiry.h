/*
 * cc_expiry.h: the expiry index, a binary min-heap of (deadline, id) pairs
 * with a position map so that any id can be updated or removed in place.
 *
 *     items:  [ (at0,id0) (at1,id1) (at2,id2) ... ]     items[0] is earliest
 *                 ^ at[i] <= at[2i+1] and at[i] <= at[2i+2]
 *     pos:    pos[id] = i  such that items[i].id == id,  or CC_NIL
 *
 * Invariant: the heap order above, and pos[items[i].id] == i for every i < len;
 * every other pos[] entry is CC_NIL.
 *
 * Cost: set/remove O(log n); peek O(1).  Removing everything that has
 * expired costs O(k log n) for k expired entries: a cleaner never scans the
 * entries that are still live.
 */
#ifndef CC_EXPIRY_H
#define CC_EXPIRY_H

#include "cc_common.h"

typedef struct {
    double at;
    uint32_t id;
} cc_deadline_t;

typedef struct {
    cc_deadline_t *items;
    uint32_t len;
    uint32_t cap;
    uint32_t *pos;       /* indexed by id; length pos_cap */
    uint32_t pos_cap;
} cc_expiry_t;

void cc_expiry_init(cc_expiry_t *h);
void cc_expiry_free(cc_expiry_t *h);

/* Make ids below `n` usable (grows pos[]).  CC_OK or CC_ENOMEM. */
int cc_expiry_reserve_ids(cc_expiry_t *h, uint32_t n);

/* Insert id with deadline `at`, or move it there if present.
 * CC_OK or CC_ENOMEM (then nothing changed).  ids must be reserved. */
int cc_expiry_set(cc_expiry_t *h, uint32_t id, double at);

/* Remove id if present. */
void cc_expiry_remove(cc_expiry_t *h, uint32_t id);

CC_INLINE int cc_expiry_contains(const cc_expiry_t *h, uint32_t id)
{
    return id < h->pos_cap && h->pos[id] != CC_NIL;
}

/* Earliest deadline, or CC_NEVER when the heap is empty. */
CC_INLINE double cc_expiry_next(const cc_expiry_t *h)
{
    return h->len ? h->items[0].at : CC_NEVER;
}

CC_INLINE uint32_t cc_expiry_top(const cc_expiry_t *h)
{
    return h->len ? h->items[0].id : CC_NIL;
}

/* Full invariant check; returns 1 when consistent. */
int cc_expiry_valid(const cc_expiry_t *h);

#endif /* CC_EXPIRY_H */
