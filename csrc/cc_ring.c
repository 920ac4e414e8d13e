/* cc_ring.c: see cc_ring.h for the structure and its invariants. */
#include "cc_ring.h"

#include <stdlib.h>
#include <string.h>

#define CC_RING_MIN_SLOTS 16u
#define CC_RING_MIN_IDLE 8u

void cc_ring_init(cc_ring_t *r)
{
    memset(r, 0, sizeof(*r));
    r->shift = 64;
}

void cc_ring_free(cc_ring_t *r)
{
    free(r->idle);
    free(r->owned);
    cc_ring_init(r);
}

void cc_ring_detach(cc_ring_t *r, cc_ring_t *out)
{
    *out = *r;
    cc_ring_init(r);
}

static unsigned log2_of(size_t pow2)
{
    unsigned n = 0;
    while (((size_t)1 << n) < pow2)
        n++;
    return n;
}

static void place(cc_owned_t *owned, size_t mask, unsigned shift, void *obj, uint32_t state)
{
    size_t p = (size_t)((((uint64_t)(uintptr_t)obj >> 3) * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
    while (owned[p].obj != NULL)
        p = (p + 1) & mask;
    owned[p].obj = obj;
    owned[p].state = state;
}

static int resize_owned(cc_ring_t *r, size_t nslots)
{
    cc_owned_t *owned = (cc_owned_t *)calloc(nslots, sizeof(cc_owned_t));
    unsigned shift = 64 - log2_of(nslots);
    size_t p;
    if (owned == NULL)
        return CC_ENOMEM;
    for (p = 0; r->owned && p <= r->mask; p++)
        if (r->owned[p].obj != NULL)
            place(owned, nslots - 1, shift, r->owned[p].obj, r->owned[p].state);
    free(r->owned);
    r->owned = owned;
    r->mask = nslots - 1;
    r->shift = shift;
    return CC_OK;
}

/* Grow idle[] to `cap` entries, unwrapping the ring so that head is 0. */
static int resize_idle(cc_ring_t *r, uint32_t cap)
{
    cc_idle_t *idle = (cc_idle_t *)malloc((size_t)cap * sizeof(cc_idle_t));
    uint32_t k;
    if (idle == NULL)
        return CC_ENOMEM;
    for (k = 0; k < r->len; k++) {
        uint32_t i = r->head + k;
        if (i >= r->cap)
            i -= r->cap;
        idle[k] = r->idle[i];
    }
    free(r->idle);
    r->idle = idle;
    r->cap = cap;
    r->head = 0;
    return CC_OK;
}

int cc_ring_reserve(cc_ring_t *r, uint32_t n)
{
    if (n > CC_MAX_ENTRIES)
        return CC_EFULL;
    /* the set first: if the ring then fails, a larger set is harmless */
    if (r->owned == NULL || (size_t)n * 2 > r->mask + 1) {
        size_t slots = r->owned ? (r->mask + 1) * 2 : CC_RING_MIN_SLOTS;
        while ((size_t)n * 2 > slots)
            slots *= 2;
        if (resize_owned(r, slots) != CC_OK)
            return CC_ENOMEM;
    }
    if (n > r->cap) {
        uint64_t cap = r->cap ? (uint64_t)r->cap * 2 : CC_RING_MIN_IDLE;
        while (cap < n)
            cap *= 2;
        if (cap > CC_MAX_ENTRIES)
            cap = CC_MAX_ENTRIES;
        if (resize_idle(r, (uint32_t)cap) != CC_OK)
            return CC_ENOMEM;
    }
    return CC_OK;
}

void cc_ring_add(cc_ring_t *r, void *obj, uint32_t state)
{
    place(r->owned, r->mask, r->shift, obj, state);
    r->count++;
    CC_RING_CHECK(r);
}

/* Backward-shift deletion: close the hole by moving back each following
 * entry whose home is not cyclically in (hole, j]. */
static void delete_slot(cc_ring_t *r, size_t hole)
{
    size_t mask = r->mask;
    size_t j = hole;
    for (;;) {
        size_t home;
        j = (j + 1) & mask;
        if (r->owned[j].obj == NULL)
            break;
        home = cc_ring_home(r, r->owned[j].obj);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            r->owned[hole] = r->owned[j];
            hole = j;
        }
    }
    r->owned[hole].obj = NULL;
    r->owned[hole].state = 0;
}

static void forget(cc_ring_t *r, void *obj)
{
    size_t p = cc_ring_home(r, obj);
    while (r->owned[p].obj != obj)
        p = (p + 1) & r->mask;
    delete_slot(r, p);
    r->count--;
}

void cc_ring_remove(cc_ring_t *r, void *obj)
{
    forget(r, obj);
    CC_RING_CHECK(r);
}

void *cc_ring_drop_front(cc_ring_t *r)
{
    void *obj = r->idle[r->head].obj;
    r->head = r->head + 1 == r->cap ? 0 : r->head + 1;
    r->len--;
    if (r->len == 0)
        r->head = 0;
    forget(r, obj);
    CC_RING_CHECK(r);
    return obj;
}

int cc_ring_check(const cc_ring_t *r)
{
    uint32_t k, idle_states = 0, occupied = 0;
    size_t p;
    if (r->len > r->cap || (r->cap && r->head >= r->cap) || r->count > CC_MAX_ENTRIES)
        return 0;
    for (k = 0; k < r->len; k++) {
        uint32_t i = r->head + k;
        const cc_owned_t *e;
        if (i >= r->cap)
            i -= r->cap;
        e = cc_ring_find(r, r->idle[i].obj);
        if (e == NULL || e->state != CC_RING_IDLE)
            return 0;
    }
    for (p = 0; r->owned && p <= r->mask; p++) {
        const cc_owned_t *e = &r->owned[p];
        size_t q;
        if (e->obj == NULL)
            continue;
        occupied++;
        if (e->state == CC_RING_IDLE)
            idle_states++;
        else if (e->state != CC_RING_LENT && e->state != CC_RING_RETURNING)
            return 0;
        for (q = cc_ring_home(r, e->obj); q != p; q = (q + 1) & r->mask)
            if (r->owned[q].obj == NULL)
                return 0;
    }
    if (occupied != r->count || idle_states != r->len)
        return 0;
    if (r->count && (size_t)r->count * 2 > r->mask + 1)
        return 0;
    return 1;
}
