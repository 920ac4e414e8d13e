/*
 * cc_lru.h: the LRU table behind LRUCache and lru_cache.
 *
 * Entries live in one array of 40-byte structs, addressed by a 32-bit index
 * that never changes while the entry lives.  Three structures point into it:
 *
 *   slots[]    open-addressing index, linear probing, power-of-two size,
 *              load <= 1/2.  slots[p] is an entry index or CC_NIL (empty).
 *              An entry's home slot is its hash scrambled by a Fibonacci
 *              multiply, so int keys with regular strides still spread.
 *              Deletion shifts the following cluster back (no tombstones,
 *              so a cache that churns forever never needs a rebuild).
 *
 *   prev/next  doubly linked recency list through the entries:
 *
 *                 head (LRU)                               tail (MRU)
 *                 [e7] <-> [e2] <-> [e0] <-> ... <-> [e5]
 *
 *              A free entry keeps only `next`, chaining the free list.
 *
 *   expiry     cc_expiry_t heap of deadlines for the entries with a TTL.
 *
 * Invariants (checked by cc_lru_check, after every mutation in debug
 * builds):
 *   - every live entry is in exactly one slot, reachable by probing from its
 *     home slot without crossing an empty slot, and on the recency list once;
 *   - count == number of live entries == length of the recency list;
 *   - an entry is in the expiry heap iff its `expires` is not CC_NEVER, with
 *     the same deadline; ttl[] (when allocated) holds its own TTL;
 *   - memory == sum of sizes[] over live entries (when sizes are tracked).
 *
 * Keys and values are opaque pointers here: whoever owns them (the Cython
 * binding) compares keys, holds references and releases evicted ones.  No
 * function in this file calls out, so none can re-enter the table; `version`
 * changes with every change of the index so that a caller who compared keys
 * (which may run arbitrary code) can tell whether its probe is still valid.
 *
 * Cost: lookup, insert, remove, move-to-end O(1) expected; expiry O(log n).
 */
#ifndef CC_LRU_H
#define CC_LRU_H

#include "cc_common.h"
#include "cc_expiry.h"

typedef struct {
    void *key;
    void *value;
    int64_t hash;
    double expires;      /* CC_NEVER when the entry has no TTL */
    uint32_t prev;
    uint32_t next;
} cc_entry_t;

typedef struct {
    cc_entry_t *entries;
    uint32_t cap;        /* allocated entries */
    uint32_t used;       /* entries[0:used] have been handed out at least once */
    uint32_t free_head;  /* free list through entries[].next */
    uint32_t count;      /* live entries */
    uint32_t head;       /* least recently used, CC_NIL when empty */
    uint32_t tail;       /* most recently used */

    uint32_t *slots;
    size_t mask;         /* slots has mask + 1 entries (0 when unallocated) */
    unsigned shift;      /* 64 - log2(mask + 1) */

    double *ttl;         /* per-entry TTL, allocated with the first finite one */
    uint64_t *sizes;     /* per-entry size, allocated when sizes are tracked */
    uint64_t memory;     /* sum of sizes of live entries */
    cc_expiry_t expiry;

    uint64_t version;    /* bumped by every insert, remove and rebuild */
    uint64_t hits, misses, evictions, expirations;
} cc_lru_t;

void cc_lru_init(cc_lru_t *t);

/* Free every array.  Keys and values must have been taken out already. */
void cc_lru_free(cc_lru_t *t);

/* Move the whole table into *out and leave *t empty (keeping counters and
 * whether sizes are tracked), so a caller can release keys and values while
 * *t is already consistent.  Cannot fail: *out gives up its sizes array (it
 * does not track sizes), which *t keeps. */
void cc_lru_detach(cc_lru_t *t, cc_lru_t *out);

CC_INLINE size_t cc_lru_home(const cc_lru_t *t, int64_t hash)
{
    return (size_t)(((uint64_t)hash * UINT64_C(0x9E3779B97F4A7C15)) >> t->shift);
}

/* Insert a new entry at the MRU end.  The key must be absent.  Grows arrays
 * first, so on failure (CC_ENOMEM, CC_EFULL) nothing changed. */
int cc_lru_insert(cc_lru_t *t, void *key, void *value, int64_t hash, uint32_t *out);

/* Unlink entry `i` from the index, the recency list and the expiry heap, and
 * free it.  Its key and value pointers stay readable until the next insert. */
void cc_lru_remove(cc_lru_t *t, uint32_t i);

CC_INLINE void cc_lru_move_to_end(cc_lru_t *t, uint32_t i)
{
    cc_entry_t *e = t->entries;
    if (i == t->tail)
        return;
    /* i is not the tail, so it has a successor */
    if (e[i].prev == CC_NIL)
        t->head = e[i].next;
    else
        e[e[i].prev].next = e[i].next;
    e[e[i].next].prev = e[i].prev;
    e[i].prev = t->tail;
    e[i].next = CC_NIL;
    e[t->tail].next = i;
    t->tail = i;
}

/* Give entry `i` a deadline and its own TTL (both CC_NEVER for none). */
int cc_lru_set_expiry(cc_lru_t *t, uint32_t i, double expires, double ttl);

CC_INLINE double cc_lru_ttl_of(const cc_lru_t *t, uint32_t i)
{
    return t->ttl ? t->ttl[i] : CC_NEVER;
}

/* Start tracking sizes (all live entries get size 0). */
int cc_lru_track_sizes(cc_lru_t *t);
/* Stop tracking sizes (memory becomes 0). */
void cc_lru_untrack_sizes(cc_lru_t *t);
void cc_lru_set_size(cc_lru_t *t, uint32_t i, uint64_t size);

CC_INLINE uint64_t cc_lru_size_of(const cc_lru_t *t, uint32_t i)
{
    return t->sizes ? t->sizes[i] : 0;
}

/* Rebuild all arrays densely in recency order, sized for `count` entries
 * (entry indices change).  Used after shrinking.  CC_OK or CC_ENOMEM. */
int cc_lru_compact(cc_lru_t *t);

/* Full invariant check; returns 1 when consistent.  O(n). */
int cc_lru_check(const cc_lru_t *t);

#ifdef CC_DEBUG
/* Full checks after every mutation, up to a size where they would turn the
 * test suite quadratic. */
#define CC_CHECK_FULL_LIMIT 4096u
#define CC_LRU_CHECK(t) CC_CHECK((t)->count > CC_CHECK_FULL_LIMIT || cc_lru_check(t))
#else
#define CC_LRU_CHECK(t) ((void)0)
#endif

#endif /* CC_LRU_H */
