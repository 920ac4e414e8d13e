/* cc_scan.c: see cc_scan.h for what is searched and why. */
#include "cc_scan.h"

#include <string.h>

#if defined(__GLIBC__) || defined(__linux__)
#define CC_HAVE_MEMRCHR 1
#define CC_HAVE_MEMMEM 1
#endif

static const unsigned char *rev_chr(const unsigned char *s, int c, size_t n)
{
#ifdef CC_HAVE_MEMRCHR
    return (const unsigned char *)memrchr(s, c, n);
#else
    while (n--)
        if (s[n] == (unsigned char)c)
            return s + n;
    return NULL;
#endif
}

static const unsigned char *find(const unsigned char *s, size_t n, const unsigned char *d, size_t dn)
{
#ifdef CC_HAVE_MEMMEM
    return (const unsigned char *)memmem(s, n, d, dn);
#else
    const unsigned char *end = s + n;
    if (dn > n)
        return NULL;
    while ((size_t)(end - s) >= dn) {
        const unsigned char *p = (const unsigned char *)memchr(s, d[0], (size_t)(end - s) - dn + 1);
        if (p == NULL)
            return NULL;
        if (memcmp(p + 1, d + 1, dn - 1) == 0)
            return p;
        s = p + 1;
    }
    return NULL;
#endif
}

void cc_delim_init(cc_delim_t *d, const unsigned char *bytes, size_t len)
{
    size_t k;
    d->bytes = bytes;
    d->len = len;
    d->overlaps = 0;
    for (k = 1; k < len; k++) {
        if (memcmp(bytes, bytes + len - k, k) == 0) {
            d->overlaps = 1;
            break;
        }
    }
}

size_t cc_scan_first(const unsigned char *data, size_t len, size_t from, const cc_delim_t *d)
{
    const unsigned char *p;
    if (from >= len || len - from < d->len)
        return 0;
    if (d->len == 1)
        p = (const unsigned char *)memchr(data + from, d->bytes[0], len - from);
    else
        p = find(data + from, len - from, d->bytes, d->len);
    return p ? (size_t)(p - data) + d->len : 0;
}

size_t cc_scan_last(const unsigned char *data, size_t len, const cc_delim_t *d)
{
    const unsigned char *p;
    size_t n, dn = d->len;
    if (len < dn)
        return 0;
    if (dn == 1) {
        p = rev_chr(data, d->bytes[0], len);
        return p ? (size_t)(p - data) + 1 : 0;
    }
    if (d->overlaps) {
        size_t end = 0, e;
        while ((e = cc_scan_first(data, len, end, d)) != 0)
            end = e;
        return end;
    }
    /* the delimiter's last byte, at index >= dn - 1, then the rest */
    n = len - (dn - 1);
    while (n) {
        p = rev_chr(data + dn - 1, d->bytes[dn - 1], n);
        if (p == NULL)
            return 0;
        if (memcmp(p - (dn - 1), d->bytes, dn - 1) == 0)
            return (size_t)(p - data) + 1;
        n = (size_t)(p - (data + dn - 1));
    }
    return 0;
}
