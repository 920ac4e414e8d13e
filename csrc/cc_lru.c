/* cc_lru.c: see cc_lru.h for the structure and its invariants. */
#include "cc_lru.h"

#include <stdlib.h>
#include <string.h>

#define CC_MIN_SLOTS 16u
#define CC_MIN_ENTRIES 8u

void cc_lru_init(cc_lru_t *t)
{
    memset(t, 0, sizeof(*t));
    t->free_head = CC_NIL;
    t->head = CC_NIL;
    t->tail = CC_NIL;
    t->shift = 64;
    cc_expiry_init(&t->expiry);
}

void cc_lru_free(cc_lru_t *t)
{
    free(t->entries);
    free(t->slots);
    free(t->ttl);
    free(t->sizes);
    cc_expiry_free(&t->expiry);
    t->entries = NULL;
    t->slots = NULL;
    t->ttl = NULL;
    t->sizes = NULL;
}

void cc_lru_detach(cc_lru_t *t, cc_lru_t *out)
{
    uint64_t *sizes = t->sizes;
    *out = *t;
    cc_lru_init(t);
    t->version = out->version + 1;
    t->hits = out->hits;
    t->misses = out->misses;
    t->evictions = out->evictions;
    t->expirations = out->expirations;
    /* An empty table that tracks sizes keeps the sizes array (its contents
     * no longer matter): allocating a fresh one here could fail, and a
     * table that silently stopped tracking would crash the binding's next
     * cc_lru_set_size. */
    t->sizes = sizes;
    out->sizes = NULL;
    out->memory = 0;
}

static unsigned log2_of(size_t pow2)
{
    unsigned n = 0;
    while (((size_t)1 << n) < pow2)
        n++;
    return n;
}

static size_t probe_slot_of(const cc_lru_t *t, uint32_t i)
{
    size_t p = cc_lru_home(t, t->entries[i].hash);
    while (t->slots[p] != i)
        p = (p + 1) & t->mask;
    return p;
}

static void place_in_slots(uint32_t *slots, size_t mask, unsigned shift, int64_t hash, uint32_t i)
{
    size_t p = (size_t)(((uint64_t)hash * UINT64_C(0x9E3779B97F4A7C15)) >> shift);
    while (slots[p] != CC_NIL)
        p = (p + 1) & mask;
    slots[p] = i;
}

/* Rebuild the index with `nslots` slots (a power of two). */
static int resize_slots(cc_lru_t *t, size_t nslots)
{
    uint32_t *slots = (uint32_t *)malloc(nslots * sizeof(uint32_t));
    unsigned shift = 64 - log2_of(nslots);
    uint32_t i;
    if (slots == NULL)
        return CC_ENOMEM;
    memset(slots, 0xff, nslots * sizeof(uint32_t)); /* CC_NIL */
    for (i = t->head; i != CC_NIL; i = t->entries[i].next)
        place_in_slots(slots, nslots - 1, shift, t->entries[i].hash, i);
    free(t->slots);
    t->slots = slots;
    t->mask = nslots - 1;
    t->shift = shift;
    return CC_OK;
}

/* Grow every per-entry array to `cap` entries. */
static int grow_entries(cc_lru_t *t, uint32_t cap)
{
    cc_entry_t *entries;
    if (t->ttl) {
        double *ttl = (double *)realloc(t->ttl, (size_t)cap * sizeof(double));
        if (ttl == NULL)
            return CC_ENOMEM;
        t->ttl = ttl;
    }
    if (t->sizes) {
        uint64_t *sizes = (uint64_t *)realloc(t->sizes, (size_t)cap * sizeof(uint64_t));
        if (sizes == NULL)
            return CC_ENOMEM;
        t->sizes = sizes;
    }
    if (t->expiry.pos && cc_expiry_reserve_ids(&t->expiry, cap) != CC_OK)
        return CC_ENOMEM;
    entries = (cc_entry_t *)realloc(t->entries, (size_t)cap * sizeof(cc_entry_t));
    if (entries == NULL)
        return CC_ENOMEM;
    t->entries = entries;
    t->cap = cap;
    return CC_OK;
}

int cc_lru_insert(cc_lru_t *t, void *key, void *value, int64_t hash, uint32_t *out)
{
    uint32_t i;
    cc_entry_t *e;
    if (t->count >= CC_MAX_ENTRIES)
        return CC_EFULL;
    /* keep load <= 1/2 */
    if ((size_t)(t->count + 1) * 2 > t->mask + 1 || t->slots == NULL) {
        size_t n = t->slots ? (t->mask + 1) * 2 : CC_MIN_SLOTS;
        while ((size_t)(t->count + 1) * 2 > n)
            n *= 2;
        if (resize_slots(t, n) != CC_OK)
            return CC_ENOMEM;
    }
    if (t->free_head == CC_NIL && t->used == t->cap) {
        uint64_t cap = t->cap ? (uint64_t)t->cap * 2 : CC_MIN_ENTRIES;
        if (cap > CC_MAX_ENTRIES)
            cap = CC_MAX_ENTRIES;
        if (grow_entries(t, (uint32_t)cap) != CC_OK)
            return CC_ENOMEM;
    }
    if (t->free_head != CC_NIL) {
        i = t->free_head;
        t->free_head = t->entries[i].next;
    }
    else {
        i = t->used++;
    }
    e = &t->entries[i];
    e->key = key;
    e->value = value;
    e->hash = hash;
    e->expires = CC_NEVER;
    e->prev = t->tail;
    e->next = CC_NIL;
    if (t->tail == CC_NIL)
        t->head = i;
    else
        t->entries[t->tail].next = i;
    t->tail = i;
    if (t->ttl)
        t->ttl[i] = CC_NEVER;
    if (t->sizes)
        t->sizes[i] = 0;
    place_in_slots(t->slots, t->mask, t->shift, hash, i);
    t->count++;
    t->version++;
    *out = i;
    CC_LRU_CHECK(t);
    return CC_OK;
}

/* Backward-shift deletion for linear probing: close the hole at `hole` by
 * moving back each following entry whose home is not in (hole, j]. */
static void delete_slot(cc_lru_t *t, size_t hole)
{
    size_t mask = t->mask;
    size_t j = hole;
    for (;;) {
        uint32_t i;
        size_t home;
        j = (j + 1) & mask;
        i = t->slots[j];
        if (i == CC_NIL)
            break;
        home = cc_lru_home(t, t->entries[i].hash);
        /* distance from home to j vs. from hole to j, cyclically */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            t->slots[hole] = i;
            hole = j;
        }
    }
    t->slots[hole] = CC_NIL;
}

void cc_lru_remove(cc_lru_t *t, uint32_t i)
{
    cc_entry_t *e = &t->entries[i];
    delete_slot(t, probe_slot_of(t, i));
    if (e->prev == CC_NIL)
        t->head = e->next;
    else
        t->entries[e->prev].next = e->next;
    if (e->next == CC_NIL)
        t->tail = e->prev;
    else
        t->entries[e->next].prev = e->prev;
    if (e->expires != CC_NEVER)
        cc_expiry_remove(&t->expiry, i);
    if (t->sizes)
        t->memory -= t->sizes[i];
    e->prev = CC_NIL;
    e->next = t->free_head;
    t->free_head = i;
    t->count--;
    t->version++;
    CC_LRU_CHECK(t);
}

int cc_lru_set_expiry(cc_lru_t *t, uint32_t i, double expires, double ttl)
{
    cc_entry_t *e = &t->entries[i];
    if (expires == CC_NEVER) {
        if (e->expires != CC_NEVER)
            cc_expiry_remove(&t->expiry, i);
        e->expires = CC_NEVER;
        if (t->ttl)
            t->ttl[i] = CC_NEVER;
        CC_LRU_CHECK(t);
        return CC_OK;
    }
    if (t->ttl == NULL) {
        uint32_t k;
        double *ttl = (double *)malloc((size_t)t->cap * sizeof(double));
        if (ttl == NULL)
            return CC_ENOMEM;
        for (k = 0; k < t->cap; k++)
            ttl[k] = CC_NEVER;
        t->ttl = ttl;
    }
    if (cc_expiry_reserve_ids(&t->expiry, t->cap) != CC_OK)
        return CC_ENOMEM;
    if (cc_expiry_set(&t->expiry, i, expires) != CC_OK)
        return CC_ENOMEM;
    e->expires = expires;
    t->ttl[i] = ttl;
    CC_LRU_CHECK(t);
    return CC_OK;
}

int cc_lru_track_sizes(cc_lru_t *t)
{
    if (t->sizes == NULL && t->cap) {
        t->sizes = (uint64_t *)calloc(t->cap, sizeof(uint64_t));
        if (t->sizes == NULL)
            return CC_ENOMEM;
    }
    else if (t->sizes == NULL) {
        /* nothing allocated yet: a 1-element array marks "tracking" */
        t->sizes = (uint64_t *)calloc(1, sizeof(uint64_t));
        if (t->sizes == NULL)
            return CC_ENOMEM;
    }
    return CC_OK;
}

void cc_lru_untrack_sizes(cc_lru_t *t)
{
    free(t->sizes);
    t->sizes = NULL;
    t->memory = 0;
}

void cc_lru_set_size(cc_lru_t *t, uint32_t i, uint64_t size)
{
    t->memory = t->memory - t->sizes[i] + size;
    t->sizes[i] = size;
}

int cc_lru_compact(cc_lru_t *t)
{
    cc_lru_t n;
    uint32_t cap = t->count > CC_MIN_ENTRIES ? t->count : CC_MIN_ENTRIES;
    size_t nslots = CC_MIN_SLOTS;
    uint32_t i, k = 0;

    while ((size_t)t->count * 2 > nslots)
        nslots *= 2;
    cc_lru_init(&n);
    n.entries = (cc_entry_t *)malloc((size_t)cap * sizeof(cc_entry_t));
    n.slots = (uint32_t *)malloc(nslots * sizeof(uint32_t));
    if (t->ttl)
        n.ttl = (double *)malloc((size_t)cap * sizeof(double));
    if (t->sizes)
        n.sizes = (uint64_t *)calloc(cap, sizeof(uint64_t));
    if (n.entries == NULL || n.slots == NULL || (t->ttl && n.ttl == NULL) ||
        (t->sizes && n.sizes == NULL) ||
        (t->expiry.len && cc_expiry_reserve_ids(&n.expiry, cap) != CC_OK)) {
        cc_lru_free(&n);
        return CC_ENOMEM;
    }
    /* the heap can only shrink, so reserving its length cannot fail later */
    if (t->expiry.len) {
        n.expiry.items = (cc_deadline_t *)malloc((size_t)t->expiry.len * sizeof(cc_deadline_t));
        if (n.expiry.items == NULL) {
            cc_lru_free(&n);
            return CC_ENOMEM;
        }
        n.expiry.cap = t->expiry.len;
    }
    memset(n.slots, 0xff, nslots * sizeof(uint32_t));
    n.cap = cap;
    n.mask = nslots - 1;
    n.shift = 64 - log2_of(nslots);
    for (i = t->head; i != CC_NIL; i = t->entries[i].next, k++) {
        cc_entry_t *e = &n.entries[k];
        *e = t->entries[i];
        e->prev = k ? k - 1 : CC_NIL;
        e->next = CC_NIL;
        if (k)
            n.entries[k - 1].next = k;
        place_in_slots(n.slots, n.mask, n.shift, e->hash, k);
        if (n.ttl)
            n.ttl[k] = t->ttl[i];
        if (n.sizes)
            n.sizes[k] = t->sizes[i];
        if (e->expires != CC_NEVER)
            (void)cc_expiry_set(&n.expiry, k, e->expires);
    }
    n.used = n.count = k;
    n.head = k ? 0 : CC_NIL;
    n.tail = k ? k - 1 : CC_NIL;
    n.memory = t->memory;
    n.version = t->version + 1;
    n.hits = t->hits;
    n.misses = t->misses;
    n.evictions = t->evictions;
    n.expirations = t->expirations;
    cc_lru_free(t);
    *t = n;
    CC_LRU_CHECK(t);
    return CC_OK;
}

int cc_lru_check(const cc_lru_t *t)
{
    uint32_t i, prev = CC_NIL, n = 0, in_heap = 0;
    uint64_t memory = 0;
    size_t p, occupied = 0;

    if (t->count == 0 && (t->head != CC_NIL || t->tail != CC_NIL))
        return 0;
    for (i = t->head; i != CC_NIL; i = t->entries[i].next) {
        const cc_entry_t *e = &t->entries[i];
        if (i >= t->used || e->prev != prev || ++n > t->count)
            return 0;
        /* reachable from its home slot without crossing an empty slot */
        for (p = cc_lru_home(t, e->hash); t->slots[p] != i; p = (p + 1) & t->mask)
            if (t->slots[p] == CC_NIL)
                return 0;
        if (e->expires != CC_NEVER) {
            uint32_t h;
            if (!cc_expiry_contains(&t->expiry, i))
                return 0;
            h = t->expiry.pos[i];
            if (t->expiry.items[h].at != e->expires)
                return 0;
            in_heap++;
        }
        else if (cc_expiry_contains(&t->expiry, i)) {
            return 0;
        }
        if (t->sizes)
            memory += t->sizes[i];
        prev = i;
    }
    if (n != t->count || prev != t->tail)
        return 0;
    if (in_heap != t->expiry.len || !cc_expiry_valid(&t->expiry))
        return 0;
    if (t->sizes && memory != t->memory)
        return 0;
    for (p = 0; t->slots && p <= t->mask; p++)
        occupied += t->slots[p] != CC_NIL;
    if (occupied != t->count)
        return 0;
    if (t->count && (size_t)t->count * 2 > t->mask + 1)
        return 0;
    return 1;
}
