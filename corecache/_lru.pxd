# The C next to _lru.pyx that needs Python.h (_lru_py.h, _lru_call.h), apart
# from corecache/_cc.pxd so that other modules do not include it.
from libc.stdint cimport int64_t, uint32_t, uint64_t
from cpython.object cimport PyObject, PyTypeObject

from corecache._cc cimport cc_lru_t, cc_policy_t, visitproc


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
    int ccpy_ptake(cc_lru_t *t, cc_policy_t *p, uint32_t i, ccpy_dead_t *d) except -1
    Py_ssize_t ccpy_ppurge(cc_lru_t *t, cc_policy_t *p, int user_clock, double now,
                           ccpy_dead_t *d) except -1
    uint32_t ccpy_policy_oldest(const cc_policy_t *p, const cc_lru_t *t)
    int ccpy_policy_evict(cc_lru_t *t, cc_policy_t *p, uint64_t memory_limit, uint64_t extra,
                          Py_ssize_t keep, ccpy_dead_t *d) except -1
    int ccpy_policy_evict_from(cc_lru_t *t, cc_policy_t *p, uint32_t v, uint64_t memory_limit,
                               uint64_t extra, Py_ssize_t keep, ccpy_dead_t *d) except -1
    void ccpy_release(ccpy_dead_t *d, PyObject *callback)
    PyObject **ccpy_refs(const cc_lru_t *t, int what, Py_ssize_t *n) except? NULL
    void ccpy_refs_free(PyObject **refs, Py_ssize_t n)
    int ccpy_traverse(const cc_lru_t *t, visitproc visit, void *arg)
    void ccpy_clear(cc_lru_t *t)
    void ccpy_pclear(cc_lru_t *t, cc_policy_t *p)
    int ccpy_status_error(int status) except -1
    void ccpy_install_vectorcall(PyTypeObject *type, Py_ssize_t offset, int method_descriptor)
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
    PyObject *ccpy_lru_call_untyped(PyObject *, PyObject **, size_t, PyObject *) noexcept
    PyObject *ccpy_lru_call_uninit(PyObject *, PyObject **, size_t, PyObject *) noexcept
    PyObject *ccpy_lru_call_uncached(PyObject *, PyObject **, size_t, PyObject *) noexcept
    PyObject *ccpy_lru_call_single_flight(PyObject *, PyObject **, size_t, PyObject *) noexcept
    void ccpy_set_wrapper_offset(Py_ssize_t offset)
    int ccpy_key_init(ccpy_key_t *k, const ccpy_lruwrap_t *w, PyObject **args,
                      Py_ssize_t nargs, PyObject *kwnames, int skip) except -1
    object ccpy_key_object(const ccpy_key_t *k)
    Py_ssize_t ccpy_key_find(cc_lru_t *t, const ccpy_key_t *k) except -2
    int ccpy_lru_store(PyObject *self, ccpy_lruwrap_t *w, const ccpy_key_t *k,
                       PyObject *result, int64_t absent_at) except -1
