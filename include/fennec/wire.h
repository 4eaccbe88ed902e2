/*
 * fennec — DNS wire format helpers (RFC 1035 section 4): big-endian integers, names with
 * compression pointers read safely, and a per-answer compression table for writing.
 */
#ifndef FENNEC_WIRE_H
#define FENNEC_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_LEN 12
#define WIRE_NAME_MAX   255
#define WIRE_LABEL_MAX  63

/* Header flag bits in the 16-bit flags word (bytes 2-3). */
#define WIRE_FLAG_QR 0x8000
#define WIRE_FLAG_AA 0x0400
#define WIRE_FLAG_TC 0x0200
#define WIRE_FLAG_RD 0x0100
#define WIRE_FLAG_RA 0x0080
#define WIRE_FLAG_AD 0x0020
#define WIRE_FLAG_CD 0x0010

enum {
    WIRE_RCODE_NOERROR = 0,
    WIRE_RCODE_FORMERR = 1,
    WIRE_RCODE_SERVFAIL = 2,
    WIRE_RCODE_NXDOMAIN = 3,
    WIRE_RCODE_NOTIMP = 4,
    WIRE_RCODE_REFUSED = 5,
    WIRE_RCODE_YXDOMAIN = 6,
    WIRE_RCODE_NOTAUTH = 9,
    WIRE_RCODE_BADVERS = 16,
};

enum {
    WIRE_TYPE_A = 1,
    WIRE_TYPE_NS = 2,
    WIRE_TYPE_CNAME = 5,
    WIRE_TYPE_SOA = 6,
    WIRE_TYPE_PTR = 12,
    WIRE_TYPE_MX = 15,
    WIRE_TYPE_TXT = 16,
    WIRE_TYPE_AAAA = 28,
    WIRE_TYPE_SRV = 33,
    WIRE_TYPE_DNAME = 39,
    WIRE_TYPE_OPT = 41,
    WIRE_TYPE_DS = 43,
    WIRE_TYPE_RRSIG = 46,
    WIRE_TYPE_NSEC = 47,
    WIRE_TYPE_NSEC3 = 50,
    WIRE_TYPE_SVCB = 64,
    WIRE_TYPE_HTTPS = 65,
    WIRE_TYPE_IXFR = 251,
    WIRE_TYPE_AXFR = 252,
    WIRE_TYPE_ANY = 255,
};

enum {
    WIRE_CLASS_IN = 1,
    WIRE_CLASS_CH = 3,
    WIRE_CLASS_ANY = 255,
};

static inline uint16_t wire_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t wire_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void wire_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ASCII lower case of one byte (DNS names compare case-insensitively in ASCII only). */
static inline uint8_t wire_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/*
 * Reads the name at *pos of the message PKT (LEN bytes), following compression pointers.
 * A pointer must point before the position it was found at and before every earlier
 * target, which bounds the walk. Writes the uncompressed name to OUT (WIRE_NAME_MAX bytes),
 * lower-cased when LOWER, advances *pos past the name as it stands in the message and
 * returns the name's length, or FENNEC_EMALFORMED.
 */
int wire_name_read(const uint8_t *pkt, size_t len, size_t *pos, uint8_t *out, bool lower);

/* Length of the uncompressed wire name at NAME within MAX bytes, or FENNEC_EMALFORMED. */
int wire_name_len(const uint8_t *name, size_t max);

/* Number of labels of an uncompressed wire name (the root has 0). */
int wire_name_labels(const uint8_t *name);

/* Lower-cases an uncompressed wire name in place. */
void wire_name_lower(uint8_t *name);

/* Whether two uncompressed wire names are equal ignoring ASCII case. */
bool wire_name_equal(const uint8_t *a, const uint8_t *b);

/* Whether the uncompressed wire name NAME (LEN bytes) is PARENT or below it; both must be
 * lower-case. */
bool wire_name_in(const uint8_t *name, size_t len, const uint8_t *parent, size_t plen);

/* Text (dotted, "example.com" or "example.com.", "\DDD" and "\c" escapes) to wire form.
 * Returns the length or FENNEC_EMALFORMED. */
int wire_name_from_text(const char *text, uint8_t *out);

/* Wire form to dotted text without the trailing dot ("." for the root); OUT holds at least
 * WIRE_NAME_TEXT_MAX bytes. */
#define WIRE_NAME_TEXT_MAX 1024
void wire_name_to_text(const uint8_t *name, char *out);

/* Compression table of one answer: message offsets of names already written, label by
 * label. Reset before each answer. */
#define WIRE_COMPR_MAX 64
typedef struct wire_compr {
    uint16_t off[WIRE_COMPR_MAX];
    unsigned n;
} wire_compr_t;

static inline void wire_compr_reset(wire_compr_t *c)
{
    c->n = 0;
}

/* Forgets entries at or after message offset POS (after rolling an RRset back). */
void wire_compr_trim(wire_compr_t *c, size_t pos);

/* Remembers that a name starts at message offset OFF (its labels are added one by one). */
void wire_compr_add(wire_compr_t *c, const uint8_t *pkt, size_t off);

/*
 * Writes the uncompressed NAME at *pos of PKT (capacity CAP), replacing its longest suffix
 * already in the message with a pointer, and records the new labels in C (which may be
 * NULL: no compression). Returns 0 or FENNEC_ESPACE.
 */
int wire_name_write(uint8_t *pkt, size_t cap, size_t *pos, const uint8_t *name, wire_compr_t *c);

#endif
