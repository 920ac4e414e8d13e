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


cdef extern from "cc_policy.h" nogil:
    ctypedef struct cc_policy_t:
        uint32_t capacity
        uint32_t window_max
        uint32_t n[4]
        uint32_t first_probation
        uint32_t first_window
        uint64_t agings
        uint64_t bursts
    int CC_EINVAL
    int cc_policy_init(cc_policy_t *p, uint32_t capacity)
    void cc_policy_free(cc_policy_t *p)
    int cc_policy_reserve(cc_policy_t *p, const cc_lru_t *t)
    uint32_t cc_policy_insert(cc_policy_t *p, cc_lru_t *t, uint32_t i)
    uint32_t cc_policy_evict(cc_policy_t *p, cc_lru_t *t)
    void cc_policy_remove(cc_policy_t *p, cc_lru_t *t, uint32_t i)
    void cc_policy_clear(cc_policy_t *p)
    int cc_policy_resize(cc_policy_t *p, uint32_t capacity)
    int cc_policy_compact(cc_policy_t *p, cc_lru_t *t)
    int cc_policy_check(const cc_policy_t *p, const cc_lru_t *t)
    void cc_policy_hit(cc_policy_t *p, cc_lru_t *t, uint32_t i)


cdef extern from "cc_ring.h" nogil:
    uint32_t CC_RING_IDLE
    uint32_t CC_RING_LENT
    uint32_t CC_RING_RETURNING

    ctypedef struct cc_idle_t:
        void *obj
        double since

    ctypedef struct cc_owned_t:
        void *obj
        uint32_t state

    ctypedef struct cc_ring_t:
        cc_idle_t *idle
        uint32_t cap
        uint32_t head
        uint32_t len
        cc_owned_t *owned
        size_t mask
        uint32_t count

    void cc_ring_init(cc_ring_t *r)
    void cc_ring_free(cc_ring_t *r)
    void cc_ring_detach(cc_ring_t *r, cc_ring_t *out)
    int cc_ring_reserve(cc_ring_t *r, uint32_t n)
    cc_owned_t *cc_ring_find(const cc_ring_t *r, const void *obj)
    void cc_ring_add(cc_ring_t *r, void *obj, uint32_t state)
    void cc_ring_remove(cc_ring_t *r, void *obj)
    void cc_ring_push(cc_ring_t *r, cc_owned_t *e, double since)
    void *cc_ring_lend_back(cc_ring_t *r)
    const cc_idle_t *cc_ring_front(const cc_ring_t *r)
    void *cc_ring_drop_front(cc_ring_t *r)
    int cc_ring_check(const cc_ring_t *r)



cdef extern from "cc_scan.h" nogil:
    ctypedef struct cc_delim_t:
        size_t len
        int overlaps
    void cc_delim_init(cc_delim_t *d, const unsigned char *data, size_t len)
    size_t cc_scan_last(const unsigned char *data, size_t len, const cc_delim_t *d)
    size_t cc_scan_first(const unsigned char *data, size_t len, size_t start, const cc_delim_t *d)
