/*
 * _lru_call.h: the call path of the compiled lru_cache wrapper.
 *
 * The wrapper type is called through a vectorcall entry point that _lru.pyx
 * installs on the type at import (Cython sets tp_vectorcall only for
 * constructing instances, never tp_vectorcall_offset for calling them), so a
 * call builds no argument tuple and no keyword dict.  The per-instance state
 * is one ccpy_lruwrap_t inside the Python object; its first member is the
 * vectorcall pointer, so tp_vectorcall_offset and the state share an offset.
 *
 * Keys are functools' keys.  A single exact int or str argument (not typed,
 * no keywords) is its own key; any other call's key is the tuple
 *
 *     args + (kwd_mark, name1, value1, name2, value2, ...)      keywords, if any
 *          + (type(arg1), ..., type(value1), ...)                if typed
 *
 * compared by value, so 1.0 and True share an entry while the lone int 1
 * has its own (as in functools).  On a hit that tuple is never built: a
 * ccpy_key_t describes it in place over the argument vector; its hash is
 * tuple's own hash algorithm run over the elements, and it is compared with
 * stored tuples element by element (tuple equality, identity first).  The
 * tuple is built only when a result is stored.
 *
 * reentrancy: hashing, comparing and the wrapped function run Python code,
 * which may call this wrapper again, clear it, or run other threads.  The
 * lookup restarts when the table changed under a comparison (ccpy_find,
 * ccpy_key_find); after the function returns the store path looks the key
 * up again; references are released only when the table is consistent.
 * Threads: see _locking.h (the wrapper's critical section).
 */
#ifndef CORECACHE_LRU_CALL_H
#define CORECACHE_LRU_CALL_H

#include <Python.h>
#include "cc_lru.h"
#include "_lru_py.h"
#include "_locking.h"           /* the critical sections, and what each guards */

typedef struct {
    vectorcallfunc vectorcall;  /* first: tp_vectorcall_offset points here */
    cc_lru_t t;
    PyObject *func;             /* the wrapped function (borrowed: the object owns it) */
    PyObject *kwd_mark;         /* separates positional from keyword arguments */
    PyObject *clock;            /* NULL, or a callable returning the user clock as a float */
    PyObject *sizer;            /* NULL, or a callable (key, value) -> validated size */
    PyObject *slow_miss;        /* NULL, or the single-flight miss handler */
    Py_ssize_t maxsize;         /* -1 unbounded, 0 caches nothing, > 0 bounded */
    uint64_t memory_limit;      /* bytes, 0 for none */
    double ttl;                 /* seconds, CC_NEVER for none */
    int typed;
    int skip;                   /* leading arguments left out of the key (methods) */
    int paused;                 /* results are not stored (pause_writes) */
    uint64_t rejected;          /* results not stored: paused, or over the memory limit */
} ccpy_lruwrap_t;

static Py_ssize_t ccpy_lruwrap_offset;  /* of ccpy_lruwrap_t in the object */
#define CCPY_WRAP(self) ((ccpy_lruwrap_t *)((char *)(self) + ccpy_lruwrap_offset))

/* ---- keys -------------------------------------------------------------- */

typedef struct {
    PyObject *raw;              /* the key object itself, or NULL: a virtual tuple */
    PyObject *const *args;      /* positional arguments that are part of the key */
    Py_ssize_t nargs;
    PyObject *kwnames;          /* tuple of keyword names, or NULL */
    PyObject *const *kwvalues;
    Py_ssize_t nkw;
    PyObject *mark;
    int typed;
    Py_ssize_t len;             /* elements of the virtual tuple */
    Py_hash_t hash;
} ccpy_key_t;

/* Element i of the virtual tuple. */
static inline PyObject *
ccpy_key_item(const ccpy_key_t *k, Py_ssize_t i)
{
    if (i < k->nargs)
        return k->args[i];
    i -= k->nargs;
    if (k->nkw) {
        if (i == 0)
            return k->mark;
        i -= 1;
        if (i < 2 * k->nkw)
            return (i & 1) ? k->kwvalues[i >> 1] : PyTuple_GET_ITEM(k->kwnames, i >> 1);
        i -= 2 * k->nkw;
    }
    /* typed: the types of the arguments, then of the keyword values */
    if (i < k->nargs)
        return (PyObject *)Py_TYPE(k->args[i]);
    return (PyObject *)Py_TYPE(k->kwvalues[i - k->nargs]);
}

/* tuple's hash (xxHash-based, CPython >= 3.8), over the virtual elements */
#if SIZEOF_PY_UHASH_T > 4
#define CCPY_XXPRIME_1 ((Py_uhash_t)11400714785074694791ULL)
#define CCPY_XXPRIME_2 ((Py_uhash_t)14029467366897019727ULL)
#define CCPY_XXPRIME_5 ((Py_uhash_t)2870177450012600261ULL)
#define CCPY_XXROTATE(x) ((x << 31) | (x >> 33))
#else
#define CCPY_XXPRIME_1 ((Py_uhash_t)2654435761UL)
#define CCPY_XXPRIME_2 ((Py_uhash_t)2246822519UL)
#define CCPY_XXPRIME_5 ((Py_uhash_t)374761393UL)
#define CCPY_XXROTATE(x) ((x << 13) | (x >> 19))
#endif

static int
ccpy_key_hash(ccpy_key_t *k)
{
    Py_uhash_t acc = CCPY_XXPRIME_5;
    Py_ssize_t i;
    for (i = 0; i < k->len; i++) {
        Py_uhash_t lane = (Py_uhash_t)PyObject_Hash(ccpy_key_item(k, i));
        if (lane == (Py_uhash_t)-1)
            return -1;
        acc += lane * CCPY_XXPRIME_2;
        acc = CCPY_XXROTATE(acc);
        acc *= CCPY_XXPRIME_1;
    }
    acc += (Py_uhash_t)k->len ^ (CCPY_XXPRIME_5 ^ 3527539UL);
    if (acc == (Py_uhash_t)-1)
        acc = 1546275796;
    k->hash = (Py_hash_t)acc;
    return 0;
}

/* Describe the key of a call; computes its hash (Python code: __hash__). */
static int
ccpy_key_init(ccpy_key_t *k, const ccpy_lruwrap_t *w, PyObject *const *args,
              Py_ssize_t nargs, PyObject *kwnames, int skip)
{
    if (skip > nargs)
        skip = (int)nargs;
    k->args = args + skip;
    k->nargs = nargs - skip;
    k->kwnames = kwnames;
    k->kwvalues = args + nargs;
    k->nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    k->mark = w->kwd_mark;
    k->typed = w->typed;
    if (!k->typed && k->nkw == 0 && k->nargs == 1 &&
        (PyLong_CheckExact(k->args[0]) || PyUnicode_CheckExact(k->args[0]))) {
        k->raw = k->args[0];
        k->len = 1;
        k->hash = PyObject_Hash(k->raw);
        return k->hash == -1 ? -1 : 0;
    }
    k->raw = NULL;
    k->len = k->nargs + (k->nkw ? 2 * k->nkw + 1 : 0) + (k->typed ? k->nargs + k->nkw : 0);
    return ccpy_key_hash(k);
}

/* The key as an object to store: the raw key, or the tuple built now. */
static PyObject *
ccpy_key_object(const ccpy_key_t *k)
{
    PyObject *tuple;
    Py_ssize_t i;
    if (k->raw) {
        Py_INCREF(k->raw);
        return k->raw;
    }
    tuple = PyTuple_New(k->len);
    if (tuple == NULL)
        return NULL;
    for (i = 0; i < k->len; i++) {
        PyObject *o = ccpy_key_item(k, i);
        Py_INCREF(o);
        PyTuple_SET_ITEM(tuple, i, o);
    }
    return tuple;
}

/* stored == the virtual tuple, as tuple equality decides it */
static int
ccpy_key_equal(const ccpy_key_t *k, PyObject *stored)
{
    Py_ssize_t i;
    for (i = 0; i < k->len; i++) {
        int r = ccpy_equal(PyTuple_GET_ITEM(stored, i), ccpy_key_item(k, i));
        if (r <= 0)
            return r;
    }
    return 1;
}

/* match for a call key: a stored tuple of the same length, equal element
 * by element to the virtual one */
static int
ccpy_match_call(PyObject *stored, const void *sought)
{
    const ccpy_key_t *k = (const ccpy_key_t *)sought;
    if (!PyTuple_CheckExact(stored) || PyTuple_GET_SIZE(stored) != k->len)
        return 0;
    return ccpy_key_equal(k, stored);
}

/* Index of the call key's entry, -1 when absent, -2 with an exception set
 * (the probe is ccpy_probe's, with its reentrancy). */
static Py_ssize_t
ccpy_key_find(cc_lru_t *t, const ccpy_key_t *k)
{
    if (k->raw)
        return ccpy_find(t, k->raw, k->hash);
    return ccpy_probe(t, k->hash, ccpy_match_call, k);
}

/* ---- time and size, user code run before the table is touched ---------- */

/* Whether any entry has a deadline, i.e. whether a user clock must be read
 * (Python code, so before the critical section that uses the reading).  A
 * free-threaded build reads the count in the critical section; the GIL
 * makes a plain read safe.  An entry given a deadline after this read was
 * given it after the clock reading, so the lookup may treat it as live. */
static inline int
ccpy_has_deadlines(PyObject *self, const cc_lru_t *t)
{
#ifdef Py_GIL_DISABLED
    int any;
    Py_BEGIN_CRITICAL_SECTION(self);
    any = t->expiry.len != 0;
    Py_END_CRITICAL_SECTION();
    return any;
#else
    (void)self;
    return t->expiry.len != 0;
#endif
}

static int
ccpy_wrap_now(const ccpy_lruwrap_t *w, double *now)
{
    PyObject *r = PyObject_CallNoArgs(w->clock);
    if (r == NULL)
        return -1;
    *now = PyFloat_AsDouble(r);
    Py_DECREF(r);
    return (*now == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int
ccpy_wrap_size(const ccpy_lruwrap_t *w, PyObject *key, PyObject *value, uint64_t *size)
{
    PyObject *r = PyObject_CallFunctionObjArgs(w->sizer, key, value, NULL);
    if (r == NULL)
        return -1;
    *size = PyLong_AsUnsignedLongLong(r);
    Py_DECREF(r);
    return (*size == (uint64_t)-1 && PyErr_Occurred()) ? -1 : 0;
}

/* ---- storing a computed result ----------------------------------------- */

/* Store `result` under the key k (a raw key object, or a virtual tuple).
 * As functools does: a bounded cache keeps an entry that appeared while the
 * function ran; an unbounded one replaces it.  `absent_at` is the table
 * version at which the key was seen absent, or -1 if unknown: if nothing
 * changed the table since, the key is still absent and is not looked up
 * again.  0 or -1. */
static int
ccpy_lru_store(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k, PyObject *result,
               int64_t absent_at)
{
    cc_lru_t *t = &w->t;
    ccpy_dead_t dead = CCPY_DEAD_INIT;
    PyObject *key, *old = NULL;
    uint64_t size = 0;
    double now = Py_NAN, expires = CC_NEVER;
    int user_clock = w->clock != NULL, rc = 0, status, paused;
    Py_ssize_t i;
    uint32_t j;

    if (w->maxsize == 0)
        return 0;
    Py_BEGIN_CRITICAL_SECTION(self);
    paused = w->paused;
    if (paused)
        w->rejected++;
    Py_END_CRITICAL_SECTION();
    if (paused)
        return 0;
    key = ccpy_key_object(k);
    if (key == NULL)
        return -1;
    /* Python code first: the size of the entry and the user clock */
    if (w->sizer != NULL) {
        if (ccpy_wrap_size(w, key, result, &size) < 0)
            goto fail;
        if (w->memory_limit && size > w->memory_limit) {
            /* larger than the whole limit: returned, not kept */
            Py_BEGIN_CRITICAL_SECTION(self);
            w->rejected++;
            Py_END_CRITICAL_SECTION();
            Py_DECREF(key);
            return 0;
        }
    }
    if (user_clock && (w->ttl != CC_NEVER || ccpy_has_deadlines(self, t)) &&
            ccpy_wrap_now(w, &now) < 0)
        goto fail;
    if (w->ttl != CC_NEVER)
        expires = (user_clock ? now : cc_clock_precise()) + w->ttl;

    Py_BEGIN_CRITICAL_SECTION(self);
    if (absent_at >= 0 && (uint64_t)absent_at == t->version)
        i = -1;
    else
        i = ccpy_find(t, key, k->hash); /* __eq__ only on an equal full hash */
    if (i == -2) {
        rc = -1;
    }
    else if (i >= 0 && w->maxsize > 0 && !ccpy_passed(user_clock, t->entries[i].expires, now)) {
        /* added while the function ran: keep it */
    }
    else if (i >= 0) {
        status = cc_lru_set_expiry(t, (uint32_t)i, expires, w->ttl);
        if (status != CC_OK) {
            rc = ccpy_status_error(status);
        }
        else {
            old = (PyObject *)t->entries[i].value;
            Py_INCREF(result);
            t->entries[i].value = result;
            if (w->sizer != NULL)
                cc_lru_set_size(t, (uint32_t)i, size);
            cc_lru_move_to_end(t, (uint32_t)i);
            rc = ccpy_evict_to(t, CC_MAX_ENTRIES, w->memory_limit, 0, i, &dead);
        }
    }
    else if (ccpy_purge(t, user_clock, now, &dead) < 0 ||
             ccpy_evict_to(t, w->maxsize > 0 ? (uint64_t)w->maxsize - 1 : CC_MAX_ENTRIES,
                           w->memory_limit, size, -1, &dead) < 0) {
        rc = -1;
    }
    else if ((status = cc_lru_insert(t, key, result, (int64_t)k->hash, &j)) != CC_OK) {
        rc = ccpy_status_error(status);
    }
    else {
        Py_INCREF(result);
        key = NULL;                     /* the table owns it now */
        if (w->sizer != NULL)
            cc_lru_set_size(t, j, size);
        if (expires != CC_NEVER && (status = cc_lru_set_expiry(t, j, expires, w->ttl)) != CC_OK) {
            rc = ccpy_status_error(status);
            (void)ccpy_take(t, j, &dead);
        }
    }
    Py_END_CRITICAL_SECTION();

    Py_XDECREF(key);
    Py_XDECREF(old);
    ccpy_release(&dead, NULL);
    return rc;
fail:
    Py_DECREF(key);
    return -1;
}

/* ---- the call ------------------------------------------------------------ */

/* single_flight: the Python handler gets (wrapper, key, hash, args, kwargs) */
static PyObject *
ccpy_lru_slow_miss(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k,
                   PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), i;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *key = NULL, *hash = NULL, *targs = NULL, *kwargs = NULL, *r = NULL;
    if ((key = ccpy_key_object(k)) == NULL || (hash = PyLong_FromSsize_t(k->hash)) == NULL ||
        (targs = PyTuple_New(nargs)) == NULL || (kwargs = PyDict_New()) == NULL)
        goto done;
    for (i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(targs, i, args[i]);
    }
    for (i = 0; i < nkw; i++)
        if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
            goto done;
    r = PyObject_CallFunctionObjArgs(w->slow_miss, self, key, hash, targs, kwargs, NULL);
done:
    Py_XDECREF(key);
    Py_XDECREF(hash);
    Py_XDECREF(targs);
    Py_XDECREF(kwargs);
    return r;
}

/* The call path is picked once, when the wrapper is built (as CPython picks
 * one of its three wrappers): a wrapper that caches nothing
 * (ccpy_lru_call_uncached), one that caches (ccpy_lru_call, and
 * ccpy_lru_call_untyped with functools' fast key in front for a wrapper
 * that is neither typed nor a method's), and one whose misses go through
 * single flight (ccpy_lru_call_single_flight).  They share
 * ccpy_lru_lookup, the hit path.  Before __init__ has run, calls go to
 * ccpy_lru_call_uninit. */

static PyObject *
ccpy_lru_call_uninit(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyErr_Format(PyExc_TypeError, "%s object was not initialized (build it with lru_cache)",
                 Py_TYPE(self)->tp_name);
    return NULL;
}

static PyObject *
ccpy_lru_call_uncached(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ccpy_lruwrap_t *w = CCPY_WRAP(self);
    Py_BEGIN_CRITICAL_SECTION(self);
    w->t.misses++;
    Py_END_CRITICAL_SECTION();
    return PyObject_Vectorcall(w->func, args, nargsf, kwnames);
}

/* The counted lookup of the key k describes (its hash computed): a new
 * reference to the cached result; or NULL and then an exception
 * (*absent_at == -2) or a miss, with *absent_at telling the store path
 * what ccpy_lru_store needs.  This is the whole of it; ccpy_lru_lookup in
 * front of it takes the hits it can without a clock reading or a removal. */
static PyObject *
ccpy_lru_lookup_full(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k,
                     int64_t *absent_at)
{
    cc_lru_t *t = &w->t;
    ccpy_dead_t dead = CCPY_DEAD_INIT;
    PyObject *value = NULL;
    double now = Py_NAN;
    int user_clock = w->clock != NULL, rc = 0;
    Py_ssize_t i;

    if (user_clock && ccpy_has_deadlines(self, t) && ccpy_wrap_now(w, &now) < 0) {
        *absent_at = -2;
        return NULL;
    }
    Py_BEGIN_CRITICAL_SECTION(self);
    i = ccpy_key_find(t, k);
    if (i >= 0) {
        cc_entry_t *e = &t->entries[i];
        if (!ccpy_passed(user_clock, e->expires, now)) {
            cc_lru_move_to_end(t, (uint32_t)i);
            t->hits++;
            value = (PyObject *)e->value;
            Py_INCREF(value);
        }
        else if ((rc = ccpy_take(t, (uint32_t)i, &dead)) == 0) {
            t->expirations++;       /* and a miss, below */
        }
    }
    if (value == NULL) {
        if (i == -2 || rc < 0) {
            *absent_at = -2;
        }
        else {
            t->misses++;
            *absent_at = (i == -1) ? (int64_t)(t->version & INT64_MAX) : -1;
        }
    }
    Py_END_CRITICAL_SECTION();

    ccpy_release(&dead, NULL);
    return value;
}

/* The hit path: an entry without a deadline, or with one that the built-in
 * clock says has not passed, is answered here; anything else (a miss, an
 * expired entry, a user clock to read first) is ccpy_lru_lookup_full's. */
static inline PyObject *
ccpy_lru_lookup(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k, int64_t *absent_at)
{
    cc_lru_t *t = &w->t;
    PyObject *value = NULL;
    Py_ssize_t i;

    if (w->clock != NULL && ccpy_has_deadlines(self, t))
        return ccpy_lru_lookup_full(self, w, k, absent_at);
    Py_BEGIN_CRITICAL_SECTION(self);
    i = ccpy_key_find(t, k);
    if (i >= 0) {
        cc_entry_t *e = &t->entries[i];
        if (e->expires == CC_NEVER || (w->clock == NULL && !cc_clock_passed(e->expires))) {
            cc_lru_move_to_end(t, (uint32_t)i);
            t->hits++;
            value = (PyObject *)e->value;
            Py_INCREF(value);
        }
    }
    Py_END_CRITICAL_SECTION();
    if (value != NULL)
        return value;
    if (i == -2) {
        *absent_at = -2;
        return NULL;
    }
    return ccpy_lru_lookup_full(self, w, k, absent_at);
}

/* A miss: call the function and store its result under k. */
static PyObject *
ccpy_lru_compute(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k,
                 PyObject *const *args, size_t nargsf, PyObject *kwnames, int64_t absent_at)
{
    PyObject *result = PyObject_Vectorcall(w->func, args, nargsf, kwnames);
    if (result != NULL && ccpy_lru_store(self, w, k, result, absent_at) < 0)
        Py_CLEAR(result);
    return result;
}

#if defined(__GNUC__) || defined(__clang__)
#define CCPY_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define CCPY_NOINLINE __declspec(noinline)
#else
#define CCPY_NOINLINE
#endif

/* The hash of a key that is an exact int or str, when it is at hand
 * without a call: a str's cached hash, and (3.12+) a compactly stored int's
 * value, as long_hash computes it; before 3.12, an int's long_hash.  -1
 * for anything else (another type, a str not hashed yet, a big int). */
static inline Py_hash_t
ccpy_cached_hash(PyObject *key)
{
    if (PyLong_CheckExact(key)) {
#if PY_VERSION_HEX >= 0x030C0000
        if (PyUnstable_Long_IsCompact((PyLongObject *)key)) {
            Py_hash_t h = (Py_hash_t)PyUnstable_Long_CompactValue((PyLongObject *)key);
            return h == -1 ? -2 : h;
        }
        return -1;
#else
        return Py_TYPE(key)->tp_hash(key);      /* cannot fail */
#endif
    }
    if (PyUnicode_CheckExact(key)) {
#if PY_VERSION_HEX >= 0x030F0000
        return PyUnstable_Unicode_GET_CACHED_HASH(key);
#elif defined(Py_GIL_DISABLED)
        return PyObject_Hash(key);              /* the field is written racily */
#else
        return ((PyASCIIObject *)key)->hash;
#endif
    }
    return -1;
}

/* Any call: its key described over the arguments (ccpy_key_init).  Not
 * inlined into ccpy_lru_call_untyped, whose hit path then needs no frame
 * for it. */
static CCPY_NOINLINE PyObject *
ccpy_lru_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ccpy_lruwrap_t *w = CCPY_WRAP(self);
    ccpy_key_t k;
    int64_t absent_at;
    PyObject *result;
    if (ccpy_key_init(&k, w, args, PyVectorcall_NARGS(nargsf), kwnames, w->skip) < 0)
        return NULL;
    result = ccpy_lru_lookup(self, w, &k, &absent_at);
    if (result != NULL || absent_at == -2)
        return result;
    return ccpy_lru_compute(self, w, &k, args, nargsf, kwnames, absent_at);
}

/* The same for a wrapper that is neither typed nor a method's (skip 0),
 * with the commonest hit in front, written to need no call: a single exact
 * int or str argument (its own key, as in functools) whose hash is at hand
 * (ccpy_cached_hash), that is the very object stored in its home slot, with
 * no deadline.  Anything else, hit or miss, goes the general way. */
static PyObject *
ccpy_lru_call_untyped(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *value = NULL;
    if (kwnames == NULL && (nargsf | PY_VECTORCALL_ARGUMENTS_OFFSET) ==
                           (1 | PY_VECTORCALL_ARGUMENTS_OFFSET)) {
        PyObject *key = args[0];
        Py_hash_t hash = ccpy_cached_hash(key);
        if (hash != -1) {
            cc_lru_t *t = &CCPY_WRAP(self)->t;
            Py_BEGIN_CRITICAL_SECTION(self);
            if (t->count) {
                uint32_t i = t->slots[cc_lru_home(t, (int64_t)hash)];
                if (i != CC_NIL && t->entries[i].key == (void *)key &&
                        cc_is_never(t->entries[i].expires)) {
                    cc_lru_move_to_end(t, i);
                    t->hits++;
                    value = (PyObject *)t->entries[i].value;
                    Py_INCREF(value);
                }
            }
            Py_END_CRITICAL_SECTION();
        }
    }
    if (value != NULL)
        return value;
    return ccpy_lru_call(self, args, nargsf, kwnames);
}

static PyObject *
ccpy_lru_call_single_flight(PyObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    ccpy_lruwrap_t *w = CCPY_WRAP(self);
    ccpy_key_t k;
    int64_t absent_at;
    PyObject *result;
    if (ccpy_key_init(&k, w, args, PyVectorcall_NARGS(nargsf), kwnames, w->skip) < 0)
        return NULL;
    result = ccpy_lru_lookup(self, w, &k, &absent_at);
    if (result != NULL || absent_at == -2)
        return result;
    return ccpy_lru_slow_miss(self, w, &k, args, nargsf, kwnames);
}

static void
ccpy_set_wrapper_offset(Py_ssize_t offset)
{
    ccpy_lruwrap_offset = offset;
}

#endif /* CORECACHE_LRU_CALL_H */
