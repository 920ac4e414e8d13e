/*
 * _locking.h: how corecache guards its shared state, with or without the
 * GIL.  This is the one place the discipline is written down; the modules
 * refer here instead of repeating it.  The header itself only gives C code
 * the critical-section macros on Pythons before 3.13, where the GIL is the
 * only lock.
 *
 * One mechanism.  Each compiled object guards its own state with its own
 * critical section: @cython.critical_section on a method, `with
 * cython.critical_section(self)` inside one, Py_BEGIN_CRITICAL_SECTION(self)
 * in C.  On a GIL build all three compile to a plain block, so GIL builds
 * pay nothing: what makes a sequence atomic there is that no Python code,
 * and no decref that could reach a __del__, runs in its middle.  On a
 * free-threaded build (3.14t, 3.15t) a critical section is the object's own
 * mutex, which CPython suspends while its holder blocks or enters another
 * object's critical section: at the same points where a GIL build may
 * switch threads.  So one set of rules serves both builds.  The pure twins
 * keep the same rules with one lock per object (an RLock, as functools'
 * pure lru_cache has).
 *
 *   1. An object's mutable state is read and written only inside its
 *      critical section (twin: under its lock).  Exceptions are named
 *      below: fields set once in __init__ and never changed after, a
 *      chunk buffer's export count, which is atomic, and the pure
 *      LRUCache's hits on a GIL build, which take no lock: each of their
 *      steps is atomic under the GIL, and the order of those steps is
 *      argued where they are written (_pure/lru.py, "Hits without the
 *      lock"); a free-threaded build takes the lock.
 *   2. Inside it, user code (a key's __hash__ and __eq__, a user clock, a
 *      getsizeof, an eviction callback, a __del__) runs only where the
 *      structure is consistent and nothing read from it (an entry index, a
 *      pointer, a count) is used after the call without being read again:
 *      the section may be suspended there, and another thread may change
 *      the structure meanwhile.  ccpy_probe restarts when the table's
 *      version moved under an __eq__; removed entries are released
 *      (callbacks, __del__) last (_let_go).  The twins run clocks and
 *      getsizeof before taking the lock, callbacks and __del__ after.
 *   3. User code that may block or take long (get_or_set's factory, a
 *      single-flight computation, the wrapped function, a pool's factory,
 *      reset and validate, a chunker's source) runs with nothing held; its
 *      result is stored by a second step that checks again.
 *   4. No object's lock is taken while another's is held, except where
 *      user code of rule 2 uses another cache; critical sections then nest
 *      and CPython suspends the outer one.  There is no lock order to keep.
 *
 * Object by object: what guards what.
 *
 *   LRUCache (_lru.pyx; twin _pure/lru.py).  The cache's critical section
 *     guards the table (index, entries, recency list, expiry heap, sizes),
 *     the counters (hits, misses, evictions, expirations, rejected), the
 *     limits, _paused, _default_ttl and the cleaner's schedule of it.
 *     Every public method takes it; LRUGetter and get_or_set take it for
 *     their lookup and get_or_set again for its store, never around the
 *     factory.  stats() copies the counters to C inside it and makes Python
 *     ints after.  Changing cleanup_interval makes the new schedule first,
 *     swaps it in inside the section and cancels the old one after.
 *
 *   The lru_cache wrapper (_lru.pyx and _lru_call.h; twin: a closure over
 *     a _Table and its RLock).  Its critical section guards its table, its
 *     counters (hits, misses, rejected) and `paused`.  A call takes it once
 *     for the lookup (ccpy_lru_lookup, or the untyped front's leaf) and once
 *     for the store (ccpy_lru_store); the wrapped function runs between,
 *     with nothing held.  The sizer and the user clock run before the
 *     store's section; whether the clock must be read at all (does any
 *     entry have a deadline?) is read inside the section on free-threaded
 *     builds (ccpy_has_deadlines).  maxsize, typed, skip, ttl, the memory
 *     limit, func, clock and sizer are set in __init__ and read freely.
 *
 *   ObjectPool (_pool.pyx; twin _pure/pool.py).  Its critical section
 *     guards the ring (idle objects, and the owned set with each object's
 *     state), the count of factory calls in progress, the waiter queue and
 *     the counters.  Factory, reset, validate and the clock run outside it.
 *     A waiter sleeps on its own lock with nothing held; it is served (its
 *     state set, then its lock released) inside the pool's section, and
 *     reads its state there again after waking.
 *
 *   StreamChunker (_chunk.pyx; twin _pure/chunk.py).  One next() or close()
 *     at a time: the compiled chunker claims its _busy flag (and checks
 *     _done) inside its critical section, the twin claims a Lock without
 *     blocking.  The claim is held while the source is read and let go only
 *     once the state is final; a concurrent or reentrant next() or close()
 *     is a ValueError, never a wait.
 *
 *   SingleFlight (_flight.py).  Its RLock guards the registry of flights:
 *     looking a key up and registering it is one step, so two threads
 *     never both lead a key; the computation runs with no lock held, and
 *     a flight's outcome is published through its Event.
 *     AsyncSingleFlight's registry of one loop is used by that loop's
 *     thread only; its dict of loops is shared between threads and is only
 *     read, inserted into and popped from (single dict operations), never
 *     iterated while live.
 *
 *   The cleaner (_lru_cleaner.py).  Its Condition's lock guards the heap of
 *     schedules.  A cancellation (from a weakref callback, which must never
 *     block) appends to _dropped, which whoever holds the lock drains with
 *     list pops.  It calls each cache's expire() with no lock of its own
 *     held: the cache's own critical section guards the sweep.
 *
 * Proof.  On GIL builds, tests/test_threads_stress.py runs each object
 * above on 8 threads that switch every microsecond and compares the final
 * states and counts with a model.  Free-threaded builds are built and
 * tested only on GitHub's runners (.github/workflows/wheels.yml): no
 * free-threaded interpreter can be installed where corecache is developed.
 */
#ifndef CORECACHE_LOCKING_H
#define CORECACHE_LOCKING_H

#include <Python.h>

#ifndef Py_BEGIN_CRITICAL_SECTION   /* before 3.13: the GIL is the lock */
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
#endif

#endif /* CORECACHE_LOCKING_H */
