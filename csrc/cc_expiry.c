/* cc_expiry.c: see cc_expiry.h for the structure and its invariant. */
#include "cc_expiry.h"

#include <stdlib.h>
#include <string.h>

void cc_expiry_init(cc_expiry_t *h)
{
    memset(h, 0, sizeof(*h));
}

void cc_expiry_free(cc_expiry_t *h)
{
    free(h->items);
    free(h->pos);
    cc_expiry_init(h);
}

int cc_expiry_reserve_ids(cc_expiry_t *h, uint32_t n)
{
    uint32_t *pos;
    uint32_t i;
    if (n <= h->pos_cap)
        return CC_OK;
    pos = (uint32_t *)realloc(h->pos, (size_t)n * sizeof(uint32_t));
    if (pos == NULL)
        return CC_ENOMEM;
    for (i = h->pos_cap; i < n; i++)
        pos[i] = CC_NIL;
    h->pos = pos;
    h->pos_cap = n;
    return CC_OK;
}

static void place(cc_expiry_t *h, uint32_t i, cc_deadline_t d)
{
    h->items[i] = d;
    h->pos[d.id] = i;
}

static void sift_up(cc_expiry_t *h, uint32_t i)
{
    cc_deadline_t d = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (h->items[parent].at <= d.at)
            break;
        place(h, i, h->items[parent]);
        i = parent;
    }
    place(h, i, d);
}

static void sift_down(cc_expiry_t *h, uint32_t i)
{
    cc_deadline_t d = h->items[i];
    uint32_t n = h->len;
    for (;;) {
        uint32_t child = 2 * i + 1;
        if (child >= n)
            break;
        if (child + 1 < n && h->items[child + 1].at < h->items[child].at)
            child++;
        if (d.at <= h->items[child].at)
            break;
        place(h, i, h->items[child]);
        i = child;
    }
    place(h, i, d);
}

int cc_expiry_set(cc_expiry_t *h, uint32_t id, double at)
{
    uint32_t i;
    CC_CHECK(id < h->pos_cap);
    i = h->pos[id];
    if (i != CC_NIL) {
        double old = h->items[i].at;
        h->items[i].at = at;
        if (at < old)
            sift_up(h, i);
        else
            sift_down(h, i);
        CC_CHECK(h->len > 4096u || cc_expiry_valid(h));
        return CC_OK;
    }
    if (h->len == h->cap) {
        uint32_t cap = h->cap ? (h->cap > UINT32_MAX / 2 ? UINT32_MAX : h->cap * 2) : 16;
        cc_deadline_t *items;
        if (cap <= h->len)
            return CC_ENOMEM;
        items = (cc_deadline_t *)realloc(h->items, (size_t)cap * sizeof(cc_deadline_t));
        if (items == NULL)
            return CC_ENOMEM;
        h->items = items;
        h->cap = cap;
    }
    i = h->len++;
    h->items[i].at = at;
    h->items[i].id = id;
    h->pos[id] = i;
    sift_up(h, i);
    CC_CHECK(h->len > 4096u || cc_expiry_valid(h));
    return CC_OK;
}

void cc_expiry_remove(cc_expiry_t *h, uint32_t id)
{
    uint32_t i, last;
    if (!cc_expiry_contains(h, id))
        return;
    i = h->pos[id];
    h->pos[id] = CC_NIL;
    last = --h->len;
    if (i != last) {
        double removed = h->items[i].at;
        place(h, i, h->items[last]);
        if (h->items[i].at < removed)
            sift_up(h, i);
        else
            sift_down(h, i);
    }
    CC_CHECK(h->len > 4096u || cc_expiry_valid(h));
}

int cc_expiry_valid(const cc_expiry_t *h)
{
    uint32_t i, present = 0;
    for (i = 0; i < h->len; i++) {
        if (h->items[i].id >= h->pos_cap || h->pos[h->items[i].id] != i)
            return 0;
        if (i > 0 && h->items[(i - 1) / 2].at > h->items[i].at)
            return 0;
    }
    for (i = 0; i < h->pos_cap; i++)
        present += h->pos[i] != CC_NIL;
    return present == h->len;
}
