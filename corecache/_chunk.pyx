# cython: freethreading_compatible=True
"""StreamChunker, compiled: chunk boundaries from csrc/cc_scan.c, buffers
and chunks here.

Bytes-like sources: the chunker holds one buffer export of the source for
its whole life and cuts zero-copy memoryview slices of it.

Files and iterables: data is read (readinto, straight from the file) into
_Buffer objects, plain malloc'd memory that this module exports through the
buffer protocol and whose live exports it counts.  Every chunk is a
read-only memoryview of one of them.  A buffer is filled again only when
its export count is back to zero, i.e. no view of any chunk cut from it is
alive; otherwise a new buffer is allocated (at most three are kept for
reuse).  So a chunk stays valid for as long as it is held, exactly as in
the pure twin, and a loop that drops each chunk after use cycles through
two buffers: memory stays at a few chunks however long the stream.

Delimited chunks: the window of chunk_size bytes after the carried
remainder is searched backwards for the last delimiter (cc_scan_last); a
record longer than chunk_size is read on, in a buffer grown for it, until
its delimiter (cc_scan_first) or max_record_size.  It grows into a new
buffer each time (_grow), never in place: see there.

reentrancy: a chunk is produced by calling the source (readinto, read, or
the iterator's next), which is user code; a _busy flag refuses a nested or
concurrent next() meanwhile, and the state is consistent at each call.
"""
cimport cython
from cpython.object cimport PyObject, PyTypeObject, inquiry
from cpython.buffer cimport (PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_FillInfo,
                             PyBuffer_Release, PyObject_GetBuffer)
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memmove

from corecache._cc cimport cc_delim_t, cc_delim_init, cc_scan_first, cc_scan_last

from corecache._chunk_common import (BUFFER, FILE, ITERABLE, READER, bad_piece, busy,
                                     check_chunker_args, check_read_count, check_read_data,
                                     chunker_repr, record_too_long, source_view)

cdef extern from "Python.h":
    object PyMemoryView_FromObject(object)
    object PySequence_GetSlice(object, Py_ssize_t, Py_ssize_t)

cdef extern from *:
    """
    /* A chunk's last view may be released on any thread. */
    #if defined(__GNUC__) || defined(__clang__)
    #define ccpy_exports_add(p, v) ((void)__atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST))
    #define ccpy_exports_load(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
    #elif defined(_MSC_VER) && defined(_WIN64)
    #include <intrin.h>
    #define ccpy_exports_add(p, v) ((void)_InterlockedExchangeAdd64((volatile __int64 *)(p), (__int64)(v)))
    #define ccpy_exports_load(p) ((Py_ssize_t)_InterlockedOr64((volatile __int64 *)(p), 0))
    #else
    #define ccpy_exports_add(p, v) ((void)(*(p) += (v)))
    #define ccpy_exports_load(p) (*(p))
    #endif
    """
    void ccpy_exports_add(Py_ssize_t *p, Py_ssize_t v) noexcept nogil
    Py_ssize_t ccpy_exports_load(Py_ssize_t *p) noexcept nogil

__all__ = ["StreamChunker"]

cdef Py_ssize_t KEEP = 3    # buffers kept for reuse

cdef int _BUFFER = BUFFER
cdef int _FILE = FILE
cdef int _READER = READER
cdef int _ITERABLE = ITERABLE


@cython.final
cdef class _Buffer:
    """Memory the chunker owns, exported as chunks; counts live exports."""

    cdef unsigned char *data
    cdef Py_ssize_t cap
    cdef Py_ssize_t exports
    # what the next export shows (set just before making a memoryview)
    cdef Py_ssize_t view_off
    cdef Py_ssize_t view_len
    cdef bint writable

    def __dealloc__(self):
        free(self.data)

    def __getbuffer__(self, Py_buffer *view, int flags):
        if (flags & PyBUF_WRITABLE) and not self.writable:
            raise BufferError("StreamChunker chunks are read-only")
        PyBuffer_FillInfo(view, self, self.data + self.view_off, self.view_len,
                          not self.writable, flags)
        ccpy_exports_add(&self.exports, 1)

    def __releasebuffer__(self, Py_buffer *view):
        ccpy_exports_add(&self.exports, -1)


cdef _Buffer _new_buffer(Py_ssize_t cap):
    cdef _Buffer b = _Buffer.__new__(_Buffer)
    b.data = <unsigned char *>malloc(cap if cap > 0 else 1)
    if b.data == NULL:
        raise MemoryError(f"StreamChunker: cannot allocate a buffer of {cap} bytes")
    b.cap = cap
    return b


cdef inline object _view_of(_Buffer b, Py_ssize_t off, Py_ssize_t n, bint writable):
    b.view_off = off
    b.view_len = n
    b.writable = writable
    try:
        return PyMemoryView_FromObject(b)
    finally:
        b.writable = False


cdef class StreamChunker:
    """An iterator of chunks of a large stream, in bounded memory.

    :param source: a bytes-like object (chunks are zero-copy views of it), a
        binary file (read with ``readinto``, or ``read``), or an iterable of
        bytes-like pieces.
    :param chunk_size: the size of every chunk but the last without a
        delimiter; the most bytes of a chunk with one, unless a single
        record is longer.
    :param delimiter: bytes that end a record (``b"\\n"``, ``b"\\r\\n"``):
        chunks then end just after a delimiter, so no record is split.
    :param max_record_size: with a delimiter, the longest record (delimiter
        included) allowed to exceed chunk_size; a longer one is a ValueError
        naming its byte offset.  None: no limit.

    Every chunk is a ``memoryview`` of bytes: over a bytes-like source a
    view of the source itself; otherwise a read-only view of a buffer the
    chunker owns.  A chunk stays valid for as long as you hold it: a buffer
    is reused only once every view of it has been released, so memory stays
    at a few chunks when each chunk is dropped after use.  After an error
    the chunker is exhausted.  The source is not closed.
    """

    cdef int _kind
    cdef object _src              # view, readinto, read, or iterator
    cdef Py_buffer _sbuf          # the source's buffer (bytes-like sources)
    cdef bint _has_sbuf
    cdef Py_ssize_t _cs
    cdef Py_ssize_t _max          # 0: no limit
    cdef bytes _delim
    cdef cc_delim_t _d
    cdef Py_ssize_t _dlen         # 0: fixed-size chunks
    cdef Py_ssize_t _pos          # next chunk's start in the source's buffer
    cdef long long _offset        # bytes handed out
    cdef bint _done
    cdef bint _busy
    cdef bint _eof
    cdef _Buffer _cur             # the buffer holding the carry [start:filled]
    cdef Py_ssize_t _start
    cdef Py_ssize_t _filled
    cdef list _bufs
    cdef object _piece            # the current piece's flat view (iterables)
    cdef Py_buffer _pbuf
    cdef bint _has_pbuf
    cdef Py_ssize_t _piece_pos
    cdef Py_ssize_t _pieces
    cdef object __weakref__

    def __cinit__(self):
        self._bufs = []

    def __init__(self, source, chunk_size=1 << 20, *, delimiter=None, max_record_size=None):
        kind, src, chunk_size, delim, max_record = check_chunker_args(
            source, chunk_size, delimiter, max_record_size)
        if self._src is not None or self._done:
            raise RuntimeError("StreamChunker.__init__ called twice")
        self._kind = kind
        self._cs = chunk_size
        self._max = max_record
        if delim is not None:
            self._delim = delim
            self._dlen = len(delim)
            cc_delim_init(&self._d, <const unsigned char *><char *>self._delim, self._dlen)
        if kind == _BUFFER:
            PyObject_GetBuffer(src, &self._sbuf, PyBUF_SIMPLE)
            self._has_sbuf = True
        self._src = src

    def __dealloc__(self):
        if self._has_sbuf:
            PyBuffer_Release(&self._sbuf)
        if self._has_pbuf:
            PyBuffer_Release(&self._pbuf)

    # ---- iteration ---------------------------------------------------------

    def __iter__(self):
        return self

    def __next__(self):
        if self._done:
            raise StopIteration
        with cython.critical_section(self):
            if self._busy:
                raise busy()
            self._busy = True
        try:
            if self._kind == _BUFFER:
                chunk = self._next_in_view()
            elif self._dlen == 0:
                chunk = self._next_fixed()
            else:
                chunk = self._next_delimited()
        except BaseException:
            self._busy = False
            self._finish()
            raise
        self._busy = False
        if chunk is None:
            self._finish()
            raise StopIteration
        return chunk

    cdef void _finish(self) noexcept:
        self._done = True
        if self._has_sbuf:
            self._has_sbuf = False
            PyBuffer_Release(&self._sbuf)
        if self._has_pbuf:
            self._has_pbuf = False
            PyBuffer_Release(&self._pbuf)
        if self._kind == _BUFFER and self._src is not None:
            try:
                self._src.release()
            except Exception:
                pass    # a view of it is still exported: it goes with that
        self._src = None
        self._piece = None
        self._cur = None
        self._bufs = []

    def close(self):
        """Stop: release the buffers and the source (which is not closed);
        further ``next()`` raises StopIteration."""
        if self._busy:
            raise busy()
        self._finish()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- a bytes-like source -----------------------------------------------

    cdef object _next_in_view(self):
        cdef const unsigned char *data = <const unsigned char *>self._sbuf.buf
        cdef Py_ssize_t n = self._sbuf.len
        cdef Py_ssize_t p = self._pos
        cdef Py_ssize_t cs = self._cs
        cdef Py_ssize_t end, e, limit, start
        if p >= n:
            return None
        if self._dlen == 0 or n - p <= cs:
            end = p + cs if n - p > cs else n
        else:
            e = <Py_ssize_t>cc_scan_last(data + p, <size_t>cs, &self._d)
            if e:
                end = p + e
            else:
                limit = n if not self._max or n - p <= self._max else p + self._max
                start = cs - (self._dlen - 1)
                e = <Py_ssize_t>cc_scan_first(data + p, <size_t>(limit - p),
                                              <size_t>(start if start > 0 else 0), &self._d)
                if e:
                    end = p + e
                elif self._max and n - p > self._max:
                    raise record_too_long(self._offset, self._max)
                else:
                    end = n
        self._pos = end
        self._offset += end - p
        return PySequence_GetSlice(self._src, p, end)

    # ---- owned buffers -----------------------------------------------------

    cdef _Buffer _fresh(self, Py_ssize_t need):
        """A buffer no view uses, of at least `need` bytes: a kept one when
        one is free, else a new one."""
        cdef _Buffer b
        cdef Py_ssize_t top = 2 * (need if need > self._cs else self._cs)
        for b in list(self._bufs):
            if ccpy_exports_load(&b.exports) == 0:
                if need <= b.cap <= top:
                    return b
                self._bufs.remove(b)    # too small, or grown for a long record
        b = _new_buffer(need if need > self._cs else self._cs)
        if len(self._bufs) >= KEEP:
            del self._bufs[0]           # still in use: its views keep it alive
        self._bufs.append(b)
        return b

    cdef Py_ssize_t _read(self, _Buffer b, Py_ssize_t filled, Py_ssize_t target) except -1:
        """Read up to target - filled bytes into b[filled:]; 0 at the end.
        reentrancy: calls the source (user code); see the module docstring."""
        cdef Py_ssize_t size = target - filled, k, left
        cdef Py_buffer pb
        if self._kind == _FILE:
            part = _view_of(b, filled, size, True)
            try:
                n = self._src(part)
            finally:
                part.release()
            if type(n) is int and 0 <= <object>n <= size:
                return <Py_ssize_t>n
            return check_read_count(n, size)
        if self._kind == _READER:
            data = self._src(size)
            view = check_read_data(data, size)
            PyObject_GetBuffer(view, &pb, PyBUF_SIMPLE)
            k = pb.len
            memcpy(b.data + filled, pb.buf, k)
            PyBuffer_Release(&pb)
            view.release()
            return k
        # an iterable of pieces
        while True:
            if self._has_pbuf:
                left = self._pbuf.len - self._piece_pos
                if left:
                    k = left if left < size else size
                    memcpy(b.data + filled, <const unsigned char *>self._pbuf.buf + self._piece_pos, k)
                    self._piece_pos += k
                    return k
                self._has_pbuf = False
                PyBuffer_Release(&self._pbuf)
                self._piece.release()
                self._piece = None
            try:
                obj = next(self._src)
            except StopIteration:
                return 0
            index = self._pieces
            self._pieces += 1
            try:
                view = source_view(obj)
            except TypeError:
                view = None
            if view is None:
                raise bad_piece(index, obj)
            PyObject_GetBuffer(view, &self._pbuf, PyBUF_SIMPLE)
            self._has_pbuf = True
            self._piece = view
            self._piece_pos = 0

    cdef Py_ssize_t _fill(self, _Buffer b, Py_ssize_t filled, Py_ssize_t target) except -1:
        cdef Py_ssize_t n
        while filled < target and not self._eof:
            n = self._read(b, filled, target)
            if n == 0:
                self._eof = True
            filled += n
        return filled

    cdef object _chunk(self, _Buffer b, Py_ssize_t n):
        self._offset += n
        return _view_of(b, 0, n, False)

    cdef object _next_fixed(self):
        cdef _Buffer b
        cdef Py_ssize_t n
        if self._eof:
            return None
        b = self._fresh(self._cs)
        self._cur = b
        n = self._fill(b, 0, self._cs)
        if n == 0:
            return None
        return self._chunk(b, n)

    cdef object _next_delimited(self):
        cdef Py_ssize_t cs = self._cs
        cdef Py_ssize_t carry = self._filled - self._start
        cdef Py_ssize_t filled, e, scanned, limit, cap, start
        cdef _Buffer b, old = self._cur
        cdef unsigned char *data
        if carry == 0 and self._eof:
            return None
        # one byte past the window tells whether the rest fits in one chunk
        b = self._fresh(carry if carry > cs + 1 else cs + 1)
        if carry:
            if b is old:
                memmove(b.data, b.data + self._start, carry)
            else:
                memcpy(b.data, old.data + self._start, carry)
        self._cur = b
        self._start = self._filled = 0
        filled = self._fill(b, carry, cs + 1)
        if filled == 0:
            return None
        if self._eof and filled <= cs:
            return self._cut(b, filled, filled)
        e = <Py_ssize_t>cc_scan_last(b.data, <size_t>cs, &self._d)
        if e:
            return self._cut(b, e, filled)
        # a record longer than chunk_size: read on until it ends
        scanned = cs
        while True:
            limit = filled if not self._max or filled < self._max else self._max
            start = scanned - (self._dlen - 1)
            e = <Py_ssize_t>cc_scan_first(b.data, <size_t>limit, <size_t>(start if start > 0 else 0),
                                          &self._d)
            if e:
                return self._cut(b, e, filled)
            if self._max and filled > self._max:
                raise record_too_long(self._offset, self._max)
            if self._eof:
                return self._cut(b, filled, filled)
            scanned = limit
            cap = b.cap * 2
            if self._max and cap > self._max + 1:
                cap = self._max + 1
            b = self._grow(b, filled, cap)
            filled = self._fill(b, filled, cap)

    cdef _Buffer _grow(self, _Buffer b, Py_ssize_t filled, Py_ssize_t cap):
        """A buffer of `cap` bytes holding b[:filled], in b's place.  Always a
        new one: the source's readinto may have kept a view of b (a slice
        of the memoryview it was given), and memory something may still
        view is never resized or freed; b lives on as long as such a view."""
        cdef _Buffer g
        try:
            g = _new_buffer(cap)
        except MemoryError:
            raise MemoryError(f"StreamChunker: cannot grow a buffer to {cap} bytes "
                              f"for a record at byte offset {self._offset}") from None
        memcpy(g.data, b.data, filled)
        for k in range(len(self._bufs)):
            if self._bufs[k] is b:
                self._bufs[k] = g
                break
        self._cur = g
        return g

    cdef object _cut(self, _Buffer b, Py_ssize_t end, Py_ssize_t filled):
        """Hand out b[:end]; b[end:filled] is carried to the next chunk."""
        self._start = end
        self._filled = filled
        return self._chunk(b, end)

    # ---- introspection -----------------------------------------------------

    @property
    def offset(self):
        """Bytes handed out so far: the stream offset of the next chunk."""
        return self._offset

    @property
    def chunk_size(self):
        return self._cs

    @property
    def delimiter(self):
        return self._delim

    @property
    def max_record_size(self):
        return self._max or None

    def __repr__(self):
        return chunker_repr(self)

    def __reduce__(self):
        raise TypeError("StreamChunker objects cannot be pickled")


# ---- garbage collection ----------------------------------------------------
# Cython's generated tp_traverse visits the exporters of the two Py_buffer
# fields, but its tp_clear drops them with Py_CLEAR, without releasing the
# export: the exporter (a memoryview) then counts an export nobody will
# release, and complains (BufferError through sys.unraisablehook) when it is
# freed.  This clear releases the exports first.

cdef extern from "Python.h":
    ctypedef int (*gc_clear "inquiry")(PyObject *) noexcept
    void PyType_Modified(PyTypeObject *)

cdef gc_clear _base_clear = <gc_clear>(<PyTypeObject *>StreamChunker).tp_clear


cdef int _chunker_clear(PyObject *o) noexcept:
    cdef StreamChunker c = <StreamChunker>o
    if c._has_sbuf:
        c._has_sbuf = False
        PyBuffer_Release(&c._sbuf)
    if c._has_pbuf:
        c._has_pbuf = False
        PyBuffer_Release(&c._pbuf)
    c._done = True
    return _base_clear(o)


(<PyTypeObject *>StreamChunker).tp_clear = <inquiry>_chunker_clear
PyType_Modified(<PyTypeObject *>StreamChunker)
