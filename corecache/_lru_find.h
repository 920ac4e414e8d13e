/*
 * _lru_find.h: key lookup in a cc_lru_t, the one place where the table meets
 * Python's equality.  Used by _lru.pyx (LRUCache and the lru_cache wrapper).
 *
 * reentrancy: comparing keys runs arbitrary Python code (__eq__, and __del__
 * of whatever it drops), which may insert, delete, clear, or resize this very
 * table, from this thread or another.  So the candidate key is held by a
 * strong reference while it is compared, and if the table's version changed
 * meanwhile the probe starts again (as CPython's dict does).  A key whose
 * __eq__ keeps mutating the table forever gets a RuntimeError instead of a
 * hang.
 */
#ifndef CORECACHE_LRU_FIND_H
#define CORECACHE_LRU_FIND_H

#include <Python.h>
#include "cc_lru.h"

#define CCPY_MAX_RESTARTS 1000

/* Index of `key`, -1 when absent, -2 with an exception set. */
static Py_ssize_t
ccpy_find_probe(cc_lru_t *t, PyObject *key, Py_hash_t hash)
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
            PyObject *other;
            int eq;
            if (i == CC_NIL)
                return -1;
            other = (PyObject *)t->entries[i].key;
            if (other == key)
                return (Py_ssize_t)i;
            if (t->entries[i].hash != (int64_t)hash)
                continue;
            Py_INCREF(other);
            eq = PyObject_RichCompareBool(other, key, Py_EQ);
            Py_DECREF(other);
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

/* The same, with the common case inline: the key object itself sits in its
 * home slot (a hit on a key that was stored, or is interned or cached). */
static inline Py_ssize_t
ccpy_find(cc_lru_t *t, PyObject *key, Py_hash_t hash)
{
    if (t->count) {
        uint32_t i = t->slots[cc_lru_home(t, (int64_t)hash)];
        if (i != CC_NIL && t->entries[i].key == (void *)key)
            return (Py_ssize_t)i;
    }
    return ccpy_find_probe(t, key, hash);
}

#endif /* CORECACHE_LRU_FIND_H */
