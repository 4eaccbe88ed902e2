/* DNS wire format: safe name reading, name text conversion and answer compression. */
#include "fennec/wire.h"
#include "fennec/common.h"

#include <stdio.h>
#include <string.h>

int wire_name_read(const uint8_t *pkt, size_t len, size_t *pos, uint8_t *out, bool lower)
{
    size_t p = *pos;
    size_t end = 0;   /* where the name ends in the message (set at the first pointer) */
    size_t limit = p; /* every pointer must point strictly before this */
    size_t outlen = 0;
    bool jumped = false;

    for (;;) {
        if (p >= len)
            return FENNEC_EMALFORMED;
        uint8_t l = pkt[p];
        if ((l & 0xC0) == 0xC0) {
            if (p + 1 >= len)
                return FENNEC_EMALFORMED;
            size_t target = (size_t)(l & 0x3F) << 8 | pkt[p + 1];
            if (!jumped) {
                end = p + 2;
                jumped = true;
            }
            /* Strictly backwards, and before every earlier target: no loops possible. */
            if (target >= limit || target < WIRE_HEADER_LEN)
                return FENNEC_EMALFORMED;
            limit = target;
            p = target;
            continue;
        }
        if (l & 0xC0)
            return FENNEC_EMALFORMED; /* 0x40 and 0x80 label types are obsolete/unknown */
        if (p + 1 + l > len || outlen + 1 + l > WIRE_NAME_MAX)
            return FENNEC_EMALFORMED;
        out[outlen++] = l;
        if (l == 0)
            break;
        if (lower) {
            for (unsigned i = 1; i <= l; i++)
                out[outlen++] = wire_lower(pkt[p + i]);
        } else {
            memcpy(out + outlen, pkt + p + 1, l);
            outlen += l;
        }
        p += 1 + l;
    }
    *pos = jumped ? end : p + 1;
    return (int)outlen;
}

int wire_name_len(const uint8_t *name, size_t max)
{
    size_t p = 0;
    for (;;) {
        if (p >= max || p >= WIRE_NAME_MAX)
            return FENNEC_EMALFORMED;
        uint8_t l = name[p];
        if (l > WIRE_LABEL_MAX)
            return FENNEC_EMALFORMED;
        p += 1 + l;
        if (l == 0)
            return (int)p;
    }
}

int wire_name_labels(const uint8_t *name)
{
    int n = 0;
    while (*name) {
        name += 1 + *name;
        n++;
    }
    return n;
}

void wire_name_lower(uint8_t *name)
{
    while (*name) {
        uint8_t l = *name++;
        for (unsigned i = 0; i < l; i++, name++)
            *name = wire_lower(*name);
    }
}

bool wire_name_equal(const uint8_t *a, const uint8_t *b)
{
    for (;;) {
        if (*a != *b)
            return false;
        uint8_t l = *a;
        if (l == 0)
            return true;
        a++;
        b++;
        for (unsigned i = 0; i < l; i++)
            if (wire_lower(a[i]) != wire_lower(b[i]))
                return false;
        a += l;
        b += l;
    }
}

bool wire_name_in(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen)
{
    if (plen > len)
        return false;
    /* Walk labels until the remaining length equals the parent's, then compare. */
    size_t p = 0;
    while (len - p > plen)
        p += 1 + name[p];
    return len - p == plen && memcmp(name + p, parent, plen) == 0;
}

int wire_name_from_text(const char *text, uint8_t *out)
{
    size_t o = 0;
    const char *s = text;
    if (strcmp(s, ".") == 0) {
        out[0] = 0;
        return 1;
    }
    while (*s) {
        size_t lenpos = o++;
        unsigned l = 0;
        if (*s == '.')
            return FENNEC_EMALFORMED; /* empty label */
        while (*s && *s != '.') {
            unsigned c = (unsigned char)*s++;
            if (c == '\\') {
                if (s[0] >= '0' && s[0] <= '9') {
                    if (!(s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9'))
                        return FENNEC_EMALFORMED;
                    c = (unsigned)((s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'));
                    if (c > 255)
                        return FENNEC_EMALFORMED;
                    s += 3;
                } else if (*s) {
                    c = (unsigned char)*s++;
                } else {
                    return FENNEC_EMALFORMED;
                }
            }
            if (++l > WIRE_LABEL_MAX || o + 1 >= WIRE_NAME_MAX)
                return FENNEC_EMALFORMED;
            out[o++] = (uint8_t)c;
        }
        out[lenpos] = (uint8_t)l;
        if (*s == '.')
            s++;
    }
    if (o + 1 > WIRE_NAME_MAX)
        return FENNEC_EMALFORMED;
    out[o++] = 0;
    return (int)o;
}

void wire_name_to_text(const uint8_t *name, char *out)
{
    size_t o = 0;
    if (*name == 0) {
        strcpy(out, ".");
        return;
    }
    while (*name) {
        uint8_t l = *name++;
        if (o)
            out[o++] = '.';
        for (unsigned i = 0; i < l; i++) {
            uint8_t c = *name++;
            if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' || c == '@' ||
                c == '$') {
                out[o++] = '\\';
                out[o++] = (char)c;
            } else if (c <= 0x20 || c >= 0x7f) {
                o += (size_t)snprintf(out + o, 5, "\\%03u", c);
            } else {
                out[o++] = (char)c;
            }
        }
    }
    out[o] = 0;
}

void wire_compr_trim(wire_compr_t *c, size_t pos)
{
    while (c->n > 0 && c->off[c->n - 1] >= pos)
        c->n--;
}

void wire_compr_add(wire_compr_t *c, const uint8_t *pkt, size_t off)
{
    /* Labels after a pointer are already known through the name it points to. */
    while (off < 0x4000 && c->n < WIRE_COMPR_MAX) {
        uint8_t l = pkt[off];
        if (l == 0 || (l & 0xC0))
            return;
        c->off[c->n++] = (uint16_t)off;
        off += 1 + l;
    }
}

/* Whether the name in our own message at OFF equals the uncompressed NAME (ignoring case).
 * Only names we wrote ourselves are walked: pointers there are valid and backwards. */
static bool compr_match(const uint8_t *pkt, size_t off, const uint8_t *name)
{
    for (;;) {
        uint8_t l = pkt[off];
        if ((l & 0xC0) == 0xC0) {
            off = (size_t)(l & 0x3F) << 8 | pkt[off + 1];
            continue;
        }
        if (l != *name)
            return false;
        if (l == 0)
            return true;
        for (unsigned i = 1; i <= l; i++)
            if (wire_lower(pkt[off + i]) != wire_lower(name[i]))
                return false;
        off += 1 + l;
        name += 1 + l;
    }
}

int wire_name_write(uint8_t *pkt, size_t cap, size_t *pos, const uint8_t *name, wire_compr_t *c)
{
    size_t p = *pos;
    size_t start = p;
    const uint8_t *s = name;
    while (*s) {
        if (c) {
            for (unsigned i = 0; i < c->n; i++) {
                if (compr_match(pkt, c->off[i], s)) {
                    if (p + 2 > cap)
                        return FENNEC_ESPACE;
                    wire_put_u16(pkt + p, (uint16_t)(0xC000 | c->off[i]));
                    p += 2;
                    goto done;
                }
            }
        }
        size_t l = (size_t)*s + 1;
        if (p + l > cap)
            return FENNEC_ESPACE;
        memcpy(pkt + p, s, l);
        p += l;
        s += l;
    }
    if (p + 1 > cap)
        return FENNEC_ESPACE;
    pkt[p++] = 0;
done:
    if (c)
        wire_compr_add(c, pkt, start);
    *pos = p;
    return 0;
}
