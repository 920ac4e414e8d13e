/*
 * _lru_py.h: the C helpers of _lru.pyx that need Python.h: key lookup in a
 * cc_lru_t (the one place where the table meets Python's equality), the
 * release of removed entries once a table is consistent again, and garbage
 * collector traversal.  Shared by LRUCache and the lru_cache wrapper.
 *
 * Key lookup (ccpy_probe, the one loop).
 * reentrancy: comparing keys runs arbitrary Python code (__eq__, and __del__
 * of whatever it drops), which may insert, delete, clear, or resize this very
 * table, from this thread or another.
 */
#ifndef CORECACHE_LRU_PY_H
#define CORECACHE_LRU_PY_H

#include <Python.h>
#include "cc_lru.h"
#include "cc_policy.h"

#define CCPY_MAX_RESTARTS 1000

/* match(stored, sought): 1 if the stored key equals the key sought, 0 if
 * not, -1 with an exception set.  It may run Python code. */
typedef int (*ccpy_match_t)(PyObject *stored, const void *sought);

/* The one probe-and-restart loop of a key lookup (both LRUCache's keys
 * and the lru_cache wrapper's call keys come through here): the index of
 * the entry whose key `match` says equals `sought`, -1 when absent, -2 with
 * an exception set.  Only an entry with the same full hash is compared.  A
 * comparison runs Python code (reentrancy: see the top of this file): the
 * stored key is held by a strong reference while it is compared, and if
 * the table's version changed meanwhile the probe starts again from the
 * home slot (as CPython's dict does); a table that changes under every
 * comparison is a RuntimeError rather than a hang.  Inlined into each
 * caller, so that `match` is a direct (inlined) call there. */
#if defined(__GNUC__) || defined(__clang__)
__attribute__((always_inline))
#endif
static inline Py_ssize_t
ccpy_probe(cc_lru_t *t, Py_hash_t hash, ccpy_match_t match, const void *sought)
{
    int restarts = 0;
restart:
    if (t->count == 0)
        return -1;
    {
        uint64_t version = t->version;
        size_t p = cc_lru_home(t, (int64_t)hash);
        for (;; p = (p + 1) & t->mask) {
            uint32_t i = t->slots[p];
            PyObject *stored;
            int eq;
            if (i == CC_NIL)
                return -1;
            if (t->entries[i].hash != (int64_t)hash)
                continue;
            stored = (PyObject *)t->entries[i].key;
            Py_INCREF(stored);
            eq = match(stored, sought);
            Py_DECREF(stored);
            if (eq < 0)
                return -2;
            if (t->version != version) {
                if (++restarts > CCPY_MAX_RESTARTS) {
                    PyErr_SetString(PyExc_RuntimeError,
                                    "cache changed during every key comparison "
                                    "(a key's __eq__ keeps mutating it)");
                    return -2;
                }
                goto restart;
            }
            if (eq)
                return (Py_ssize_t)i;
        }
    }
}

/* match for a key that is an object: itself, or equal by __eq__ */
/* Equality of a stored key and the sought one, whose hashes are equal.  An
 * exact str or int pair (what most keys are, and what a server's keys are:
 * equal, not the same objects) is compared here, as dict compares str keys:
 * no user code can run for them, so the answer is RichCompare's. */
static inline int
ccpy_exact_equal(PyObject *a, PyObject *b)
{
    PyTypeObject *t = Py_TYPE(a);
    if (t != Py_TYPE(b))
        return -1;
    if (t == &PyUnicode_Type) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(a);
#if PY_VERSION_HEX < 0x030C0000
        if (!PyUnicode_IS_READY(a) || !PyUnicode_IS_READY(b))
            return -1;
#endif
        return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b)
               && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b),
                         (size_t)n * PyUnicode_KIND(a)) == 0;
    }
    if (t == &PyLong_Type) {
        int oa, ob;
        long va = PyLong_AsLongAndOverflow(a, &oa);
        long vb = PyLong_AsLongAndOverflow(b, &ob);
        if (oa || ob)           /* beyond a long: RichCompare compares them */
            return -1;
        return va == vb;
    }
    return -1;
}

/* a == b as PyObject_RichCompareBool decides it (1, 0, or -1 with an
 * exception): every key comparison of the table and the decorators */
static inline int
ccpy_equal(PyObject *a, PyObject *b)
{
    int eq;
    if (a == b)
        return 1;
    eq = ccpy_exact_equal(a, b);
    return eq >= 0 ? eq : PyObject_RichCompareBool(a, b, Py_EQ);
}

static int
ccpy_match_object(PyObject *stored, const void *sought)
{
    return ccpy_equal(stored, (PyObject *)sought);
}

/* Index of `key`, -1 when absent, -2 with an exception set; the common case
 * inline: the key object itself in its home slot (a hit on a key that was
 * stored, or is interned or cached). */
static inline Py_ssize_t
ccpy_find(cc_lru_t *t, PyObject *key, Py_hash_t hash)
{
    if (t->count) {
        uint32_t i = t->slots[cc_lru_home(t, (int64_t)hash)];
        if (i != CC_NIL && t->entries[i].key == (void *)key)
            return (Py_ssize_t)i;
    }
    return ccpy_probe(t, hash, ccpy_match_object, key);
}

/* ---- releasing removed entries ----------------------------------------
 * An operation that removes entries hands the table's references to a
 * ccpy_dead_t and releases them (and calls the eviction callback) only when
 * it is done with the table: __del__ and callbacks may use the cache.  The
 * first entry is held inline, further ones in a malloc'd array: nothing here
 * allocates Python objects, because an allocation can start the garbage
 * collector, whose finalizers run Python code in the middle of the
 * operation. */

typedef struct {
    PyObject *key;      /* first removed entry (owned), or NULL */
    PyObject *value;
    PyObject **more;    /* further pairs k1, v1, k2, v2, ... (owned) */
    Py_ssize_t n, cap;  /* used and allocated slots of `more` */
} ccpy_dead_t;

#define CCPY_DEAD_INIT {NULL, NULL, NULL, 0, 0}

/* ccpy_bury once the first pair is taken: into the overflow array. */
static int
ccpy_bury_more(ccpy_dead_t *d, PyObject *key, PyObject *value)
{
    if (d->n + 2 > d->cap) {
        Py_ssize_t cap = d->cap ? d->cap * 2 : 16;
        PyObject **more = (PyObject **)PyMem_RawRealloc(d->more, (size_t)cap * sizeof(PyObject *));
        if (more == NULL) {
            Py_DECREF(key);
            Py_DECREF(value);
            PyErr_NoMemory();
            return -1;
        }
        d->more = more;
        d->cap = cap;
    }
    d->more[d->n++] = key;
    d->more[d->n++] = value;
    return 0;
}

/* Take over the references of a removed entry.  -1 (MemoryError) only if
 * the overflow array cannot grow; the pair is then released at once. */
CC_INLINE int
ccpy_bury(ccpy_dead_t *d, PyObject *key, PyObject *value)
{
    if (d->key == NULL) {
        d->key = key;
        d->value = value;
        return 0;
    }
    return ccpy_bury_more(d, key, value);
}

/* Remove entry i of t into d, through the eviction policy p when the
 * table has one (NULL: plain LRU). */
static inline int
ccpy_ptake(cc_lru_t *t, cc_policy_t *p, uint32_t i, ccpy_dead_t *d)
{
    PyObject *k = (PyObject *)t->entries[i].key;
    PyObject *v = (PyObject *)t->entries[i].value;
    if (p != NULL)
        cc_policy_remove(p, t, i);
    else
        cc_lru_remove(t, i);
    return ccpy_bury(d, k, v);
}

/* Remove entry i of t into d. */
static inline int
ccpy_take(cc_lru_t *t, uint32_t i, ccpy_dead_t *d)
{
    return ccpy_ptake(t, NULL, i, d);
}

static void
ccpy_notify(PyObject *callback, PyObject *key, PyObject *value)
{
    PyObject *r = PyObject_CallFunctionObjArgs(callback, key, value, NULL);
    if (r == NULL)
        PyErr_WriteUnraisable(callback);
    else
        Py_DECREF(r);
}

/* reentrancy: runs `callback` (may be NULL) on each pair, then drops them;
 * both may run any code, including on the cache, which must be consistent
 * and no longer referred to by index.  A pending exception (the operation
 * failed) is set aside meanwhile and kept; neither a callback's nor a
 * __del__'s can escape (ccpy_notify, and CPython's finalizers, report them
 * as unraisable). */
static void
ccpy_release(ccpy_dead_t *d, PyObject *callback)
{
    PyObject *et = NULL, *ev = NULL, *tb = NULL;
    PyObject **more = d->more;
    Py_ssize_t i, n = d->n;
    int failed;
    if (d->key == NULL)
        return;
    failed = PyErr_Occurred() != NULL;
    if (failed)
        PyErr_Fetch(&et, &ev, &tb);
    if (callback != NULL)
        ccpy_notify(callback, d->key, d->value);
    Py_CLEAR(d->key);
    Py_CLEAR(d->value);
    /* detach the array first: the code run below may reuse d */
    d->more = NULL;
    d->n = d->cap = 0;
    if (more != NULL) {
        for (i = 0; i + 1 < n; i += 2) {
            if (callback != NULL)
                ccpy_notify(callback, more[i], more[i + 1]);
            Py_DECREF(more[i]);
            Py_DECREF(more[i + 1]);
        }
        PyMem_RawFree(more);
    }
    if (failed)
        PyErr_Restore(et, ev, tb);
}

/* Strong references to the keys and/or values of every entry, least
 * recently used first, in a malloc'd array (`what`: 1 keys, 2 values, 3
 * both, interleaved).  Walking the list allocates no Python object, so no
 * code can run and change it meanwhile; the caller builds Python objects
 * from the array afterwards and frees it with ccpy_refs_free.  NULL with
 * MemoryError, or with *n == 0 for an empty table. */
static PyObject **
ccpy_refs(const cc_lru_t *t, int what, Py_ssize_t *n)
{
    Py_ssize_t per = (what == 3) ? 2 : 1, k = 0;
    PyObject **refs;
    uint32_t i;
    *n = (Py_ssize_t)t->count * per;
    if (*n == 0)
        return NULL;
    refs = (PyObject **)PyMem_RawMalloc((size_t)*n * sizeof(PyObject *));
    if (refs == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (i = t->head; i != CC_NIL; i = t->entries[i].next) {
        if (what & 1)
            refs[k++] = (PyObject *)t->entries[i].key;
        if (what & 2)
            refs[k++] = (PyObject *)t->entries[i].value;
    }
    for (k = 0; k < *n; k++)
        Py_INCREF(refs[k]);
    return refs;
}

static void
ccpy_refs_free(PyObject **refs, Py_ssize_t n)
{
    Py_ssize_t k;
    for (k = 0; k < n; k++)
        Py_DECREF(refs[k]);
    PyMem_RawFree(refs);
}

/* ---- whole tables ------------------------------------------------------ */

static int
ccpy_traverse(const cc_lru_t *t, visitproc visit, void *arg)
{
    uint32_t i;
    /* The collector can traverse an object between tp_alloc and __cinit__
     * (Cython's tp_new allocates, and an allocation can start a collection),
     * when the table is still all zeros: head 0, no entries.  count is 0
     * then too, so it is the test. */
    if (t->count == 0)
        return 0;
    for (i = t->head; i != CC_NIL; i = t->entries[i].next) {
        Py_VISIT((PyObject *)t->entries[i].key);
        Py_VISIT((PyObject *)t->entries[i].value);
    }
    return 0;
}

/* Empty t (counters kept) and its policy p (or NULL), and then release
 * what it held: the references are dropped only after t and p are already
 * empty and consistent. */
static void
ccpy_pclear(cc_lru_t *t, cc_policy_t *p)
{
    cc_lru_t old;
    uint32_t i;
    PyObject *et, *ev, *tb;
    cc_lru_detach(t, &old);
    if (p != NULL)
        cc_policy_clear(p);
    if (old.count) {
        PyErr_Fetch(&et, &ev, &tb);
        for (i = old.head; i != CC_NIL; i = old.entries[i].next) {
            Py_DECREF((PyObject *)old.entries[i].key);
            Py_DECREF((PyObject *)old.entries[i].value);
        }
        PyErr_Restore(et, ev, tb);
    }
    cc_lru_free(&old);
}

static void
ccpy_clear(cc_lru_t *t)
{
    ccpy_pclear(t, NULL);
}

/* ---- expiry and limits, shared by LRUCache and the lru_cache wrapper ----
 * `user_clock` says whose clock the deadlines are on: with the built-in
 * clock `now` is ignored and C reads the clock (cheaply); with a user clock
 * `now` is its reading, taken before the operation touched the table, or
 * NAN when none was needed (no entry had a deadline then). */

static inline int
ccpy_passed(int user_clock, double deadline, double now)
{
    if (deadline == CC_NEVER)
        return 0;
    if (!user_clock)
        return cc_clock_passed(deadline);
    return !Py_IS_NAN(now) && now >= deadline;
}

/* ccpy_ppurge once some entry has a deadline. */
static Py_ssize_t
ccpy_ppurge_timed(cc_lru_t *t, cc_policy_t *p, int user_clock, double now, ccpy_dead_t *d)
{
    Py_ssize_t n = 0;
    if (!user_clock) {
        if (!cc_clock_passed(cc_expiry_next(&t->expiry)))
            return 0;
        now = cc_clock_precise();
    }
    else if (Py_IS_NAN(now)) {
        return 0;
    }
    while (t->expiry.len && cc_expiry_next(&t->expiry) <= now) {
        if (ccpy_ptake(t, p, cc_expiry_top(&t->expiry), d) < 0)
            return -1;
        t->expirations++;
        n++;
    }
    return n;
}

/* Remove every expired entry into d (through the policy p, or NULL); the
 * number removed, or -1. */
static inline Py_ssize_t
ccpy_ppurge(cc_lru_t *t, cc_policy_t *p, int user_clock, double now, ccpy_dead_t *d)
{
    if (t->expiry.len == 0)
        return 0;
    return ccpy_ppurge_timed(t, p, user_clock, now, d);
}

static inline Py_ssize_t
ccpy_purge(cc_lru_t *t, int user_clock, double now, ccpy_dead_t *d)
{
    return ccpy_ppurge(t, NULL, user_clock, now, d);
}

/* The entry a policy gives up first when something other than its own
 * eviction asks for room (a memory limit, popitem, evict(n)): the oldest
 * probation entry, else the table's head (the oldest protected entry, or
 * with an empty main space the oldest window entry).  The pure model's
 * AdaptivePolicy.oldest() is the same rule. */
static inline uint32_t
ccpy_policy_oldest(const cc_policy_t *p, const cc_lru_t *t)
{
    return p->n[CC_SEG_PROBATION] ? p->first_probation : t->head;
}

/* ccpy_policy_evict's memory part: the policy's oldest (ccpy_policy_oldest),
 * never `keep` (or -1), until memory + `extra` fits in `memory_limit`. */
static int
ccpy_policy_evict_memory(cc_lru_t *t, cc_policy_t *p, uint64_t memory_limit, uint64_t extra,
                         Py_ssize_t keep, ccpy_dead_t *d)
{
    uint32_t v;
    while (t->count && t->memory + extra > memory_limit) {
        v = ccpy_policy_oldest(p, t);
        if ((Py_ssize_t)v == keep)
            break;
        if (ccpy_ptake(t, p, v, d) < 0)
            return -1;
        t->evictions++;
    }
    return 0;
}

/* What the policy evicts: `v` (the first entry cc_policy_evict or
 * cc_policy_insert named, or CC_NIL) and every further one cc_policy_evict
 * names (a rejected candidate is one of them), then, with a `memory_limit`
 * (0: none), the oldest (ccpy_policy_oldest), never `keep` (or -1), until
 * memory + `extra` fits.  Each is counted as an eviction.  Inline, as the
 * common case (one eviction, no memory limit) is short: a set that evicts
 * makes no call here but the policy's own. */
CC_INLINE int
ccpy_policy_evict_from(cc_lru_t *t, cc_policy_t *p, uint32_t v, uint64_t memory_limit,
                       uint64_t extra, Py_ssize_t keep, ccpy_dead_t *d)
{
    for (; v != CC_NIL; v = cc_policy_evict(p, t)) {
        /* unlinked already; its key and value pointers are still readable */
        t->evictions++;
        if (ccpy_bury(d, (PyObject *)t->entries[v].key, (PyObject *)t->entries[v].value) < 0)
            return -1;
    }
    if (memory_limit)
        return ccpy_policy_evict_memory(t, p, memory_limit, extra, keep, d);
    return 0;
}

/* ccpy_policy_evict_from with the first entry yet to be named. */
CC_INLINE int
ccpy_policy_evict(cc_lru_t *t, cc_policy_t *p, uint64_t memory_limit, uint64_t extra,
                  Py_ssize_t keep, ccpy_dead_t *d)
{
    return ccpy_policy_evict_from(t, p, cc_policy_evict(p, t), memory_limit, extra, keep, d);
}

/* Evict least recently used entries, never `keep` (or -1), until at most
 * `max_count` live entries remain and, with a `memory_limit` (0: none),
 * memory + `extra` fits in it. */
static int
ccpy_evict_to(cc_lru_t *t, uint64_t max_count, uint64_t memory_limit, uint64_t extra,
              Py_ssize_t keep, ccpy_dead_t *d)
{
    while (t->count > max_count && (Py_ssize_t)t->head != keep) {
        if (ccpy_take(t, t->head, d) < 0)
            return -1;
        t->evictions++;
    }
    if (memory_limit) {
        while (t->count && (Py_ssize_t)t->head != keep && t->memory + extra > memory_limit) {
            if (ccpy_take(t, t->head, d) < 0)
                return -1;
            t->evictions++;
        }
    }
    return 0;
}

/* Make instances of `type` callable through the vectorcallfunc each keeps
 * at `offset` (Cython sets tp_vectorcall only for constructing instances,
 * never tp_vectorcall_offset for calling them); with `method_descriptor`,
 * obj.f(...) calls f(obj, ...) without making a bound method. */
static void
ccpy_install_vectorcall(PyTypeObject *type, Py_ssize_t offset, int method_descriptor)
{
    type->tp_vectorcall_offset = offset;
    type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    if (type->tp_call == NULL)          /* no __call__: calls from C go here too */
        type->tp_call = PyVectorcall_Call;
    if (method_descriptor)
        type->tp_flags |= Py_TPFLAGS_METHOD_DESCRIPTOR;
    PyType_Modified(type);
}

/* A C status code as a Python exception; returns -1. */
static int
ccpy_status_error(int status)
{
    if (status == CC_ENOMEM)
        PyErr_SetString(PyExc_MemoryError, "corecache: out of memory");
    else if (status == CC_EFULL)
        PyErr_SetString(PyExc_OverflowError, "corecache: a cache holds at most 2**32 - 2 entries");
    else
        PyErr_Format(PyExc_SystemError, "corecache: unexpected status %d", status);
    return -1;
}

#endif /* CORECACHE_LRU_PY_H */
