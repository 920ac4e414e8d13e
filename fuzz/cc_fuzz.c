/*
 * cc_fuzz.c: a libFuzzer harness over csrc/, the C structures without
 * Python: the LRU table (cc_lru), the expiry heap (cc_expiry), the pool's
 * ring and owned-set (cc_ring) and the chunker's delimiter scan (cc_scan).
 *
 * The first input byte picks the structure; the rest is read as a sequence
 * of operations on it.  Each operation runs on the real structure and on a
 * model written here the obvious way (arrays scanned linearly, a naive
 * left-to-right parse of the stream), and after every operation the two are
 * compared field by field and the structure's own full check
 * (cc_lru_check, cc_expiry_valid, cc_ring_check) must pass.  Any difference
 * aborts with a message, which libFuzzer turns into a crash-* reproducer.
 *
 * Every allocation of csrc/ goes through fz_malloc & co. (fz_alloc.h is
 * forced into each csrc/ file), and an operation can arm the n-th next one
 * to fail: a function that returns CC_ENOMEM must have changed nothing the
 * model can see, so the model simply skips the step.
 *
 * Keys, values and pooled objects are fake, distinct, 16-aligned pointers;
 * key hashes come from one of a few hash functions picked by the input,
 * from spread to all-equal, so probing and backward-shift deletion see long
 * clusters and full collisions.
 *
 * Built with -DFUZZ_SELF_TEST the model of the table forgets to move a hit
 * to the MRU end: tests/test_fuzz.py checks that this is reported, so that
 * a harness that compares nothing cannot pass for one that found nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cc_expiry.h"
#include "cc_lru.h"
#include "cc_ring.h"
#include "cc_scan.h"

/* ---- failing allocations ------------------------------------------------ */

static int fz_fail_in;   /* 0: none armed; n: the n-th next allocation fails */

static int fz_should_fail(void)
{
    if (fz_fail_in == 0)
        return 0;
    return --fz_fail_in == 0;
}

void *fz_malloc(size_t n)
{
    return fz_should_fail() ? NULL : malloc(n);
}

void *fz_calloc(size_t n, size_t size)
{
    return fz_should_fail() ? NULL : calloc(n, size);
}

void *fz_realloc(void *p, size_t n)
{
    return fz_should_fail() ? NULL : realloc(p, n);
}

/* ---- input ----------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n;
} input_t;

static uint8_t u8(input_t *in)
{
    uint8_t b;
    if (in->n == 0)
        return 0;
    b = *in->p++;
    in->n--;
    return b;
}

#define FAIL(...)                                                          \
    do {                                                                   \
        fprintf(stderr, "corecache fuzz: mismatch at %s:%d (op %zu): ",    \
                __FILE__, __LINE__, op_index);                             \
        fprintf(stderr, __VA_ARGS__);                                      \
        fputc('\n', stderr);                                               \
        abort();                                                           \
    } while (0)

#define EXPECT(cond, ...)                                                  \
    do {                                                                   \
        if (!(cond))                                                       \
            FAIL(__VA_ARGS__);                                             \
    } while (0)

static size_t op_index;

/* A deadline from one byte: few distinct values, so that ties are common,
 * and the extremes. */
static double deadline_of(uint8_t b)
{
    switch (b % 32) {
    case 28: return CC_NEVER;
    case 29: return -HUGE_VAL;
    case 30: return 1e300;
    case 31: return -0.0;
    default: return (double)(b % 32) - 4.0;
    }
}

/* ---- the LRU table ------------------------------------------------------- */

#define NKEYS 64

typedef struct {
    int live;
    void *value;
    double expires;
    double ttl;
    uint64_t size;
} mkey_t;

typedef struct {
    mkey_t k[NKEYS];
    int order[NKEYS];    /* live keys, LRU first */
    int n;
    int tracking;
    uint64_t memory;
    int64_t hash[NKEYS];
} lru_model_t;

static void *key_ptr(int k) { return (void *)(uintptr_t)(0x10000 + 16 * (uintptr_t)k); }

static int key_of(const void *p)
{
    uintptr_t v = (uintptr_t)p;
    if (v < 0x10000 || (v - 0x10000) % 16 || (v - 0x10000) / 16 >= NKEYS)
        return -1;
    return (int)((v - 0x10000) / 16);
}

/* What the binding's probe does (corecache/_lru_py.h): from the home slot
 * until an empty one, comparing hashes, then keys. */
static uint32_t table_find(const cc_lru_t *t, int64_t hash, const void *key)
{
    size_t p;
    if (t->slots == NULL || t->count == 0)
        return CC_NIL;
    for (p = cc_lru_home(t, hash); t->slots[p] != CC_NIL; p = (p + 1) & t->mask) {
        const cc_entry_t *e = &t->entries[t->slots[p]];
        if (e->hash == hash && e->key == key)
            return t->slots[p];
    }
    return CC_NIL;
}

static void model_unlink(lru_model_t *m, int k)
{
    int j;
    for (j = 0; j < m->n && m->order[j] != k; j++)
        ;
    if (j == m->n)
        return;
    memmove(&m->order[j], &m->order[j + 1], (size_t)(m->n - j - 1) * sizeof(int));
    m->n--;
}

static void model_remove(lru_model_t *m, int k)
{
    model_unlink(m, k);
    if (m->tracking)
        m->memory -= m->k[k].size;
    memset(&m->k[k], 0, sizeof(mkey_t));
}

static void model_touch(lru_model_t *m, int k)
{
#ifdef FUZZ_SELF_TEST
    (void)m; (void)k;   /* the deliberate mistake: a hit is not moved */
#else
    model_unlink(m, k);
    m->order[m->n++] = k;
#endif
}

static void compare_table(const cc_lru_t *t, const lru_model_t *m)
{
    uint32_t i;
    int j = 0;
    double earliest = CC_NEVER;
    EXPECT(cc_lru_check(t), "cc_lru_check failed");
    EXPECT(t->count == (uint32_t)m->n, "count %u, model %d", t->count, m->n);
    EXPECT((t->sizes != NULL) == m->tracking, "tracking %d, model %d", t->sizes != NULL, m->tracking);
    if (m->tracking)
        EXPECT(t->memory == m->memory, "memory %llu, model %llu",
               (unsigned long long)t->memory, (unsigned long long)m->memory);
    for (i = t->head; i != CC_NIL; i = t->entries[i].next, j++) {
        const cc_entry_t *e = &t->entries[i];
        int k = key_of(e->key);
        EXPECT(j < m->n && k == m->order[j], "recency position %d: key %d, model %d", j, k,
               j < m->n ? m->order[j] : -1);
        EXPECT(e->value == m->k[k].value, "value of key %d", k);
        EXPECT(e->hash == m->hash[k], "hash of key %d", k);
        EXPECT(table_find(t, m->hash[k], e->key) == i, "key %d not found at its entry", k);
        EXPECT(memcmp(&e->expires, &m->k[k].expires, sizeof(double)) == 0,
               "expires of key %d: %g, model %g", k, e->expires, m->k[k].expires);
        EXPECT(memcmp(&(double){cc_lru_ttl_of(t, i)}, &m->k[k].ttl, sizeof(double)) == 0,
               "ttl of key %d: %g, model %g", k, cc_lru_ttl_of(t, i), m->k[k].ttl);
        if (m->tracking)
            EXPECT(cc_lru_size_of(t, i) == m->k[k].size, "size of key %d", k);
        if (m->k[k].expires < earliest)
            earliest = m->k[k].expires;
    }
    EXPECT(j == m->n, "recency list has %d entries, model %d", j, m->n);
    EXPECT(cc_expiry_next(&t->expiry) == earliest, "next deadline %g, model %g",
           cc_expiry_next(&t->expiry), earliest);
    for (j = 0; j < NKEYS; j++)
        if (!m->k[j].live)
            EXPECT(table_find(t, m->hash[j], key_ptr(j)) == CC_NIL, "absent key %d found", j);
}

static void fuzz_table(input_t *in)
{
    cc_lru_t t;
    lru_model_t m;
    uint8_t hmode = u8(in);
    uint64_t version, hits = 0;
    uintptr_t values = 0;
    int k;

    memset(&m, 0, sizeof m);
    for (k = 0; k < NKEYS; k++) {
        switch (hmode % 5) {
        case 0: m.hash[k] = k; break;                                  /* dense */
        case 1: m.hash[k] = k & 3; break;                              /* 4 hashes */
        case 2: m.hash[k] = 7; break;                                  /* all equal */
        case 3: m.hash[k] = (int64_t)((uint64_t)k << 58); break;       /* top bits */
        default: m.hash[k] = -(int64_t)k * 1000003; break;
        }
    }
    cc_lru_init(&t);
    for (op_index = 0; in->n; op_index++) {
        uint8_t op = u8(in), a = u8(in);
        uint32_t i;
        int status;
        k = a % NKEYS;
        version = t.version;
        i = table_find(&t, m.hash[k], key_ptr(k));
        EXPECT((i != CC_NIL) == m.k[k].live, "key %d: found %d, model %d", k, i != CC_NIL,
               m.k[k].live);
        switch (op % 13) {
        case 0:     /* insert, or a hit when present */
        case 1:
            if (i != CC_NIL) {
                cc_lru_move_to_end(&t, i);
                t.hits++, hits++;
                model_touch(&m, k);
                break;
            }
            status = cc_lru_insert(&t, key_ptr(k), (void *)(0x100000 + 16 * ++values),
                                   m.hash[k], &i);
            if (status == CC_ENOMEM) {
                EXPECT(t.version == version, "a failed insert changed the version");
                break;
            }
            EXPECT(status == CC_OK, "insert: status %d", status);
            EXPECT(t.version != version, "insert left the version");
            EXPECT(t.entries[i].key == key_ptr(k), "insert: wrong entry");
            m.k[k].live = 1;
            m.k[k].value = (void *)(0x100000 + 16 * values);
            m.k[k].expires = CC_NEVER;
            m.k[k].ttl = CC_NEVER;
            m.k[k].size = 0;
            m.order[m.n++] = k;
            break;
        case 2:     /* delete */
            if (i == CC_NIL)
                break;
            cc_lru_remove(&t, i);
            EXPECT(t.version != version, "remove left the version");
            model_remove(&m, k);
            break;
        case 3:     /* evict the least recently used */
            if (t.head == CC_NIL) {
                EXPECT(m.n == 0, "empty list, model has %d", m.n);
                break;
            }
            EXPECT(key_of(t.entries[t.head].key) == m.order[0], "LRU key %d, model %d",
                   key_of(t.entries[t.head].key), m.order[0]);
            cc_lru_remove(&t, t.head);
            model_remove(&m, m.order[0]);
            break;
        case 4:     /* give an entry a deadline, or take it away */
        case 5: {
            double at = deadline_of(u8(in)), ttl = deadline_of(u8(in));
            if (i == CC_NIL)
                break;
            if (at == CC_NEVER)
                ttl = CC_NEVER;
            status = cc_lru_set_expiry(&t, i, at, ttl);
            if (status == CC_ENOMEM)
                break;
            EXPECT(status == CC_OK, "set_expiry: status %d", status);
            m.k[k].expires = at;
            m.k[k].ttl = ttl;
            break;
        }
        case 6: {   /* expire everything due at `now`, earliest first */
            double now = deadline_of(a);
            double last = -HUGE_VAL;
            int j;
            while (t.expiry.len && cc_expiry_next(&t.expiry) <= now) {
                uint32_t top = cc_expiry_top(&t.expiry);
                int tk = key_of(t.entries[top].key);
                EXPECT(tk >= 0 && m.k[tk].live, "heap top is not a live key");
                EXPECT(t.entries[top].expires == cc_expiry_next(&t.expiry), "heap top deadline");
                EXPECT(t.entries[top].expires >= last, "deadlines out of order");
                last = t.entries[top].expires;
                cc_lru_remove(&t, top);
                model_remove(&m, tk);
            }
            for (j = 0; j < NKEYS; j++)
                EXPECT(!m.k[j].live || m.k[j].expires == CC_NEVER || !(m.k[j].expires <= now),
                       "key %d is due but stayed", j);
            break;
        }
        case 7:     /* start tracking sizes */
            status = cc_lru_track_sizes(&t);
            if (status == CC_ENOMEM)
                break;
            EXPECT(status == CC_OK, "track_sizes: status %d", status);
            if (!m.tracking) {
                int j;
                for (j = 0; j < NKEYS; j++)
                    m.k[j].size = 0;
                m.memory = 0;
            }
            m.tracking = 1;
            break;
        case 8:     /* stop */
            cc_lru_untrack_sizes(&t);
            m.tracking = 0;
            m.memory = 0;
            break;
        case 9: {   /* size an entry: small, or near the top of uint64 */
            uint8_t s = u8(in);
            uint64_t size = s & 0x80 ? UINT64_MAX - (s & 0x7f) : s;
            if (i == CC_NIL || !m.tracking)
                break;
            cc_lru_set_size(&t, i, size);
            m.memory = m.memory - m.k[k].size + size;
            m.k[k].size = size;
            break;
        }
        case 10:    /* rebuild densely */
            status = cc_lru_compact(&t);
            if (status == CC_ENOMEM) {
                EXPECT(t.version == version, "a failed compact changed the version");
                break;
            }
            EXPECT(status == CC_OK, "compact: status %d", status);
            EXPECT(t.version != version, "compact left the version");
            break;
        case 11: {  /* clear: detach everything, then free what was detached */
            cc_lru_t old;
            int j;
            cc_lru_detach(&t, &old);
            EXPECT(cc_lru_check(&old), "the detached table is inconsistent");
            EXPECT(old.count == (uint32_t)m.n, "detached %u entries, model %d", old.count, m.n);
            cc_lru_free(&old);
            EXPECT(t.version != version, "detach left the version");
            for (j = 0; j < NKEYS; j++)
                memset(&m.k[j], 0, sizeof(mkey_t));
            m.n = 0;
            m.memory = 0;
            break;
        }
        default:    /* arm a failing allocation */
            fz_fail_in = 1 + a % 4;
            break;
        }
        if (op % 13 != 12)
            fz_fail_in = 0;
        EXPECT(t.hits == hits, "hits %llu, model %llu", (unsigned long long)t.hits,
               (unsigned long long)hits);
        compare_table(&t, &m);
    }
    fz_fail_in = 0;
    cc_lru_free(&t);
}

/* ---- the expiry heap, on its own ----------------------------------------- */

#define NIDS 40

static void fuzz_expiry(input_t *in)
{
    cc_expiry_t h;
    double at[NIDS];
    int present[NIDS] = {0};
    uint32_t reserved = 0;
    int j;

    cc_expiry_init(&h);
    for (op_index = 0; in->n; op_index++) {
        uint8_t op = u8(in), a = u8(in);
        uint32_t id = a % NIDS;
        int status, n = 0;
        double earliest = CC_NEVER;
        switch (op % 5) {
        case 0: {   /* reserve ids */
            uint32_t want = a % (NIDS + 1);
            status = cc_expiry_reserve_ids(&h, want);
            if (status == CC_ENOMEM)
                break;
            EXPECT(status == CC_OK, "reserve: status %d", status);
            if (want > reserved)
                reserved = want;
            break;
        }
        case 1: {   /* set or move */
            double d = deadline_of(u8(in));
            if (id >= reserved)
                break;
            status = cc_expiry_set(&h, id, d);
            if (status == CC_ENOMEM)
                break;
            EXPECT(status == CC_OK, "set: status %d", status);
            present[id] = 1;
            at[id] = d;
            break;
        }
        case 2:     /* remove (absent ids too) */
            cc_expiry_remove(&h, id);
            if (id < NIDS)
                present[id] = 0;
            break;
        case 3:     /* pop the earliest */
            if (h.len == 0)
                break;
            id = cc_expiry_top(&h);
            EXPECT(id < NIDS && present[id], "top id %u is not present", id);
            EXPECT(at[id] == cc_expiry_next(&h), "top deadline %g, its own %g",
                   cc_expiry_next(&h), at[id]);
            cc_expiry_remove(&h, id);
            present[id] = 0;
            break;
        default:
            fz_fail_in = 1 + a % 3;
            break;
        }
        if (op % 5 != 4)
            fz_fail_in = 0;
        EXPECT(cc_expiry_valid(&h), "cc_expiry_valid failed");
        for (j = 0; j < NIDS; j++) {
            EXPECT(cc_expiry_contains(&h, (uint32_t)j) == present[j], "id %d: contains %d, model %d",
                   j, cc_expiry_contains(&h, (uint32_t)j), present[j]);
            if (present[j]) {
                n++;
                EXPECT(h.items[h.pos[j]].at == at[j], "deadline of id %d", j);
                if (at[j] < earliest)
                    earliest = at[j];
            }
        }
        EXPECT(h.len == (uint32_t)n, "len %u, model %d", h.len, n);
        EXPECT(cc_expiry_next(&h) == earliest, "next %g, model %g", cc_expiry_next(&h), earliest);
    }
    fz_fail_in = 0;
    cc_expiry_free(&h);
}

/* ---- the pool's ring and owned set --------------------------------------- */

#define NOBJ 48
#define ABSENT 99u

typedef struct {
    uint32_t state[NOBJ];        /* CC_RING_* or ABSENT */
    int idle[NOBJ];              /* idle objects, oldest first */
    double since[NOBJ];
    int len;
    int count;
} ring_model_t;

static void *obj_ptr(int o) { return (void *)(uintptr_t)(0x200000 + 16 * (uintptr_t)o); }

static int obj_of(const void *p)
{
    uintptr_t v = (uintptr_t)p;
    if (v < 0x200000 || (v - 0x200000) % 16 || (v - 0x200000) / 16 >= NOBJ)
        return -1;
    return (int)((v - 0x200000) / 16);
}

static void compare_ring(const cc_ring_t *r, const ring_model_t *m)
{
    int k;
    EXPECT(cc_ring_check(r), "cc_ring_check failed");
    EXPECT(r->count == (uint32_t)m->count, "count %u, model %d", r->count, m->count);
    EXPECT(r->len == (uint32_t)m->len, "idle %u, model %d", r->len, m->len);
    for (k = 0; k < m->len; k++) {
        uint32_t i = r->head + (uint32_t)k;
        if (i >= r->cap)
            i -= r->cap;
        EXPECT(obj_of(r->idle[i].obj) == m->idle[k], "idle position %d: %d, model %d", k,
               obj_of(r->idle[i].obj), m->idle[k]);
        EXPECT(r->idle[i].since == m->since[k], "idle position %d: since", k);
    }
    for (k = 0; k < NOBJ; k++) {
        const cc_owned_t *e = cc_ring_find(r, obj_ptr(k));
        EXPECT((e ? e->state : ABSENT) == m->state[k], "object %d: state %u, model %u", k,
               e ? e->state : ABSENT, m->state[k]);
    }
}

static void fuzz_ring(input_t *in)
{
    cc_ring_t r;
    ring_model_t m;
    int k;

    memset(&m, 0, sizeof m);
    for (k = 0; k < NOBJ; k++)
        m.state[k] = ABSENT;
    cc_ring_init(&r);
    for (op_index = 0; in->n; op_index++) {
        uint8_t op = u8(in), a = u8(in);
        int o = a % NOBJ, status;
        switch (op % 9) {
        case 0:     /* a new object, lent or on its way back */
        case 1:
            if (m.state[o] != ABSENT)
                break;
            status = cc_ring_reserve(&r, (uint32_t)m.count + 1);
            if (status == CC_ENOMEM)
                break;
            EXPECT(status == CC_OK, "reserve: status %d", status);
            cc_ring_add(&r, obj_ptr(o), op % 9 ? CC_RING_RETURNING : CC_RING_LENT);
            m.state[o] = op % 9 ? CC_RING_RETURNING : CC_RING_LENT;
            m.count++;
            break;
        case 2: {   /* an owned, non-idle object goes idle */
            double since = deadline_of(u8(in));
            cc_owned_t *e;
            if (m.state[o] == ABSENT || m.state[o] == CC_RING_IDLE)
                break;
            e = cc_ring_find(&r, obj_ptr(o));
            EXPECT(e != NULL, "owned object %d not found", o);
            cc_ring_push(&r, e, since);
            m.state[o] = CC_RING_IDLE;
            m.idle[m.len] = o;
            m.since[m.len++] = since;
            break;
        }
        case 3: {   /* lend the newest idle one */
            void *p = cc_ring_lend_back(&r);
            if (m.len == 0) {
                EXPECT(p == NULL, "lent %d from an empty ring", obj_of(p));
                break;
            }
            EXPECT(obj_of(p) == m.idle[m.len - 1], "lent %d, model %d", obj_of(p),
                   m.idle[m.len - 1]);
            m.state[m.idle[--m.len]] = CC_RING_LENT;
            break;
        }
        case 4: {   /* drop the oldest idle one */
            void *p;
            if (m.len == 0)
                break;
            EXPECT(obj_of(cc_ring_front(&r)->obj) == m.idle[0], "front object");
            EXPECT(cc_ring_front(&r)->since == m.since[0], "front since");
            p = cc_ring_drop_front(&r);
            EXPECT(obj_of(p) == m.idle[0], "dropped %d, model %d", obj_of(p), m.idle[0]);
            m.state[m.idle[0]] = ABSENT;
            m.count--;
            m.len--;
            memmove(m.idle, m.idle + 1, (size_t)m.len * sizeof(int));
            memmove(m.since, m.since + 1, (size_t)m.len * sizeof(double));
            break;
        }
        case 5:     /* forget a non-idle one */
            if (m.state[o] == ABSENT || m.state[o] == CC_RING_IDLE)
                break;
            cc_ring_remove(&r, obj_ptr(o));
            m.state[o] = ABSENT;
            m.count--;
            break;
        case 6: {   /* reserve more room (or far too much) */
            uint32_t want = a == 255 ? UINT32_MAX : (uint32_t)m.count + a % 64;
            status = cc_ring_reserve(&r, want);
            if (a == 255)
                EXPECT(status == CC_EFULL, "reserve(UINT32_MAX): status %d", status);
            else
                EXPECT(status == CC_OK || status == CC_ENOMEM, "reserve: status %d", status);
            break;
        }
        case 7: {   /* clear */
            cc_ring_t old;
            cc_ring_detach(&r, &old);
            EXPECT(cc_ring_check(&old), "the detached ring is inconsistent");
            EXPECT(old.count == (uint32_t)m.count, "detached %u, model %d", old.count, m.count);
            while (old.len)
                (void)cc_ring_drop_front(&old);
            cc_ring_free(&old);
            for (k = 0; k < NOBJ; k++)
                m.state[k] = ABSENT;
            m.len = m.count = 0;
            break;
        }
        default:
            fz_fail_in = 1 + a % 3;
            break;
        }
        if (op % 9 != 8)
            fz_fail_in = 0;
        compare_ring(&r, &m);
    }
    fz_fail_in = 0;
    cc_ring_free(&r);
}

/* ---- the delimiter scan -------------------------------------------------- */

/* bytes from a small alphabet, so that delimiters occur and overlap */
static uint8_t scan_byte(input_t *in)
{
    static const uint8_t alphabet[] = {'\n', '\n', 'a', 'b', '\r'};
    uint8_t b = u8(in);
    return b < 200 ? alphabet[b % sizeof alphabet] : b;
}

static int occurs_at(const uint8_t *data, size_t p, const uint8_t *d, size_t dn)
{
    return memcmp(data + p, d, dn) == 0;
}

/* the first occurrence starting at or after `from` and ending by `len` */
static size_t model_first(const uint8_t *data, size_t len, size_t from, const uint8_t *d, size_t dn)
{
    size_t p;
    for (p = from; p + dn <= len; p++)
        if (occurs_at(data, p, d, dn))
            return p + dn;
    return 0;
}

static void fuzz_scan(input_t *in)
{
    uint8_t dbytes[8], data[512];
    size_t dn = 1 + u8(in) % 5, n = 0, len, from, k, bounds[512], nb = 0;
    int border = 0;
    uint8_t *dcopy;
    cc_delim_t d;

    for (k = 0; k < dn; k++)
        dbytes[k] = scan_byte(in);
    while (in->n && n < sizeof data)
        data[n++] = scan_byte(in);
    /* the delimiter, on the heap at its exact size: a read past it shows */
    dcopy = (uint8_t *)malloc(dn);
    memcpy(dcopy, dbytes, dn);
    cc_delim_init(&d, dcopy, dn);
    for (k = 1; k < dn; k++)
        border |= memcmp(dbytes, dbytes + dn - k, k) == 0;
    op_index = 0;
    EXPECT(d.len == dn && d.bytes == dcopy, "cc_delim_init");
    EXPECT(d.overlaps == border, "overlaps %d, model %d", d.overlaps, border);

    /* the record boundaries, parsed from the left as bytes.split does */
    for (from = 0; (k = model_first(data, n, from, dbytes, dn)) != 0; from = k)
        bounds[nb++] = k;

    for (len = 0; len <= n; len++) {
        /* each window on the heap at its exact size */
        uint8_t *w = (uint8_t *)malloc(len ? len : 1);
        size_t want = 0, got, j;
        memcpy(w, data, len);
        for (j = 0; j < nb && bounds[j] <= len; j++)
            want = bounds[j];
        op_index = len;
        got = cc_scan_last(w, len, &d);
        EXPECT(got == want, "scan_last(len=%zu): %zu, model %zu", len, got, want);
        /* the next boundary after each boundary (and from 0) */
        for (j = 0; j <= nb; j++) {
            size_t at = j ? bounds[j - 1] : 0, next;
            if (at > len)
                break;
            next = cc_scan_first(w, len, at, &d);
            EXPECT(next == model_first(data, len, at, dbytes, dn),
                   "scan_first(len=%zu, from=%zu): %zu, model %zu", len, at, next,
                   model_first(data, len, at, dbytes, dn));
            EXPECT(next == 0 || (j < nb && next == bounds[j]),
                   "scan_first(len=%zu, from boundary %zu) is not the next boundary", len, at);
        }
        free(w);
    }
    /* any starting point over the whole window */
    for (from = 0; from <= n + 1; from++) {
        op_index = from;
        EXPECT(cc_scan_first(data, n, from, &d) == model_first(data, n, from, dbytes, dn),
               "scan_first(from=%zu)", from);
    }
    free(dcopy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input_t in = {data, size};
    switch (u8(&in) % 4) {
    case 0: fuzz_table(&in); break;
    case 1: fuzz_expiry(&in); break;
    case 2: fuzz_ring(&in); break;
    default: fuzz_scan(&in); break;
    }
    return 0;
}
