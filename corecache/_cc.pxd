# Declarations of the plain C structures in csrc/ (no Python inside them).
from libc.stdint cimport int64_t, uint32_t, uint64_t
from cpython.object cimport PyObject, PyTypeObject


cdef extern from "Python.h":
    ctypedef int (*visitproc)(PyObject *, void *) noexcept


cdef extern from "cc_common.h" nogil:
    int CC_OK
    int CC_ENOMEM
    int CC_EFULL
    uint32_t CC_NIL
    uint32_t CC_MAX_ENTRIES
    double CC_NEVER
    double cc_clock_slack
    void cc_clock_init()
    double cc_clock_precise()
    double cc_clock_coarse()
    bint cc_clock_passed(double deadline)


cdef extern from "cc_expiry.h" nogil:
    ctypedef struct cc_expiry_t:
        uint32_t len
    double cc_expiry_next(const cc_expiry_t *h)
    uint32_t cc_expiry_top(const cc_expiry_t *h)


cdef extern from "cc_lru.h" nogil:
    ctypedef struct cc_entry_t:
        void *key
        void *value
        int64_t hash
        double expires
        uint32_t prev
        uint32_t next

    ctypedef struct cc_lru_t:
        cc_entry_t *entries
        uint32_t cap
        uint32_t count
        uint32_t head
        uint32_t tail
        uint64_t *sizes
        uint64_t memory
        cc_expiry_t expiry
        uint64_t version
        uint64_t hits
        uint64_t misses
        uint64_t evictions
        uint64_t expirations

    void cc_lru_init(cc_lru_t *t)
    void cc_lru_free(cc_lru_t *t)
    void cc_lru_detach(cc_lru_t *t, cc_lru_t *out)
    int cc_lru_insert(cc_lru_t *t, void *key, void *value, int64_t hash, uint32_t *out)
    void cc_lru_remove(cc_lru_t *t, uint32_t i)
    void cc_lru_move_to_end(cc_lru_t *t, uint32_t i)
    int cc_lru_set_expiry(cc_lru_t *t, uint32_t i, double expires, double ttl)
    double cc_lru_ttl_of(const cc_lru_t *t, uint32_t i)
    int cc_lru_track_sizes(cc_lru_t *t)
    void cc_lru_untrack_sizes(cc_lru_t *t)
    void cc_lru_set_size(cc_lru_t *t, uint32_t i, uint64_t size)
    uint64_t cc_lru_size_of(const cc_lru_t *t, uint32_t i)
    int cc_lru_compact(cc_lru_t *t)
    int cc_lru_check(const cc_lru_t *t)


cdef extern from "_lru_py.h":
    # Index of key, -1 when absent; -2 with an exception set.
    Py_ssize_t ccpy_find(cc_lru_t *t, object key, Py_hash_t hash) except -2

    ctypedef struct ccpy_dead_t:
        PyObject *key
        PyObject *value
        PyObject **more
        Py_ssize_t n
        Py_ssize_t cap
    int ccpy_take(cc_lru_t *t, uint32_t i, ccpy_dead_t *d) except -1
    void ccpy_release(ccpy_dead_t *d, PyObject *callback)
    PyObject **ccpy_refs(const cc_lru_t *t, int what, Py_ssize_t *n) except? NULL
    void ccpy_refs_free(PyObject **refs, Py_ssize_t n)
    int ccpy_traverse(const cc_lru_t *t, visitproc visit, void *arg)
    void ccpy_clear(cc_lru_t *t)
    int ccpy_status_error(int status) except -1
    bint ccpy_passed(int user_clock, double deadline, double now)
    Py_ssize_t ccpy_purge(cc_lru_t *t, int user_clock, double now, ccpy_dead_t *d) except -1
    int ccpy_evict_to(cc_lru_t *t, uint64_t max_count, uint64_t memory_limit, uint64_t extra,
                      Py_ssize_t keep, ccpy_dead_t *d) except -1


cdef extern from "_lru_call.h":
    ctypedef PyObject *(*vectorcallfunc)(PyObject *, PyObject **, size_t, PyObject *) noexcept

    ctypedef struct ccpy_lruwrap_t:
        vectorcallfunc vectorcall
        cc_lru_t t
        PyObject *func
        PyObject *kwd_mark
        PyObject *clock
        PyObject *sizer
        PyObject *slow_miss
        Py_ssize_t maxsize
        uint64_t memory_limit
        double ttl
        int typed
        int skip
        int paused
        uint64_t rejected

    ctypedef struct ccpy_key_t:
        PyObject *raw
        Py_hash_t hash

    PyObject *ccpy_lru_call(PyObject *, PyObject **, size_t, PyObject *) noexcept
    void ccpy_install_vectorcall(PyTypeObject *type, Py_ssize_t offset)
    int ccpy_key_init(ccpy_key_t *k, const ccpy_lruwrap_t *w, PyObject **args,
                      Py_ssize_t nargs, PyObject *kwnames, int skip) except -1
    object ccpy_key_object(const ccpy_key_t *k)
    Py_ssize_t ccpy_key_find(cc_lru_t *t, const ccpy_key_t *k) except -2
    int ccpy_lru_store(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k,
                       PyObject *result) except -1
