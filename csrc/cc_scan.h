/*
 * cc_scan.h: delimiter search for StreamChunker: where may a chunk end?
 *
 * A delimited stream is a sequence of records, each ending just after a
 * delimiter (the last one may lack it), parsed from the left as bytes.split
 * does.  A chunk starts at a record boundary and should end at the last
 * boundary within chunk_size bytes, so the question asked of a window
 * data[0:len) that starts at a boundary is "where does the last record that
 * fits end?".
 *
 *   data:  rec rec rec\n rec rec\n rec re|c\n rec ...
 *          ^ boundary          ^ last boundary in the window
 *                                        ^ len (window end)
 *
 * For most delimiters every occurrence is a boundary, so that is the end of
 * the rightmost occurrence lying wholly in the window: memrchr on the
 * delimiter's last byte, then a compare, scanning back from the window's end
 * over one record or so.  A delimiter that can overlap itself (it has a
 * border: a proper prefix equal to a suffix, like "\n\n" or "\r\n\r\n")
 * can have occurrences that are not boundaries ("\n\n\n" holds one record
 * end, not two), so for those the window is scanned forward with memmem,
 * occurrence after non-overlapping occurrence.
 *
 * Invariant: none (pure functions of their arguments); cc_delim_t is
 * filled once by cc_delim_init and only read afterwards.
 *
 * Cost: O(distance from the window's end back to the last delimiter) for a
 * border-free delimiter, O(len) with memmem for one with a border, and
 * O(len) for the first occurrence.  No allocation.
 */
#ifndef CC_SCAN_H
#define CC_SCAN_H

#include "cc_common.h"

typedef struct {
    const unsigned char *bytes;  /* borrowed: the caller keeps them alive */
    size_t len;                  /* >= 1 */
    int overlaps;                /* has a border: scan forward */
} cc_delim_t;

/* Describe a delimiter of `len` >= 1 bytes (the bytes are borrowed). */
void cc_delim_init(cc_delim_t *d, const unsigned char *bytes, size_t len);

/* Offset just after the last record boundary in data[0:len) (data starts
 * at a boundary), or 0 when no delimiter lies wholly inside. */
size_t cc_scan_last(const unsigned char *data, size_t len, const cc_delim_t *d);

/* Offset just after the first delimiter that starts at or after `from` and
 * lies wholly in data[0:len), or 0 when there is none.  With `from` at a
 * boundary (or within len(delimiter) - 1 bytes after the end of a region
 * known to hold no delimiter since a boundary) that is the next boundary. */
size_t cc_scan_first(const unsigned char *data, size_t len, size_t from, const cc_delim_t *d);

#endif /* CC_SCAN_H */
