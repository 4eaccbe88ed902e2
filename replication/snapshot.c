/*
 * Snapshots (snapshot.h): written and read as frames of SnapshotChunk messages, with the
 * zones rebuilt through zone_from_records(), the function that builds zones from entries.
 */
#include "fennec/snapshot.h"
#include "fennec/common.h"
#include "fennec/entry.h"
#include "fennec/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef Fennec__Replication__SnapshotChunk chunk_t;

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int say(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void snapshot_data_free(snapshot_data_t *d)
{
    for (size_t i = 0; d->zones && i < d->zone_count; i++)
        zone_unref(d->zones[i]);
    free(d->zones);
    free(d->members);
    health_config_unref(d->health);
    free(d->overrides);
    memset(d, 0, sizeof(*d));
}

/* ---- the file ---- */

struct snapshot_file {
    int fd;
    char dir[4096];
    char tmp[4200];
};

int snapshot_file_begin(const char *dir, snapshot_file_t **out)
{
    snapshot_file_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    snprintf(f->dir, sizeof(f->dir), "%s", dir);
    snprintf(f->tmp, sizeof(f->tmp), "%s/%s.new", dir, SNAPSHOT_FILE);
    f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (f->fd < 0) {
        int rc = -errno;
        free(f);
        return rc;
    }
    *out = f;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int snapshot_file_add(snapshot_file_t *f, const chunk_t *c)
{
    Fennec__Replication__Frame fr = FENNEC__REPLICATION__FRAME__INIT;
    fr.kind_case = FENNEC__REPLICATION__FRAME__KIND_SNAPSHOT;
    fr.snapshot = (chunk_t *)c;
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    int rc = frame_encode(&fr, FRAME_MAX_DEFAULT, &buf, &len, err, sizeof(err));
    if (rc == 0)
        rc = write_all(f->fd, buf, len);
    free(buf);
    return rc;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

int snapshot_file_end(snapshot_file_t *f, bool commit)
{
    if (!f)
        return 0;
    int rc = 0;
    if (commit && fsync(f->fd) != 0)
        rc = -errno;
    if (close(f->fd) != 0 && rc == 0 && commit)
        rc = -errno;
    if (commit && rc == 0) {
        char path[4200];
        snprintf(path, sizeof(path), "%s/%s", f->dir, SNAPSHOT_FILE);
        if (rename(f->tmp, path) != 0)
            rc = -errno;
        else
            rc = fsync_dir(f->dir);
    }
    if (!commit || rc != 0)
        unlink(f->tmp);
    free(f);
    return rc;
}

/* ---- writing one from served data ---- */

typedef struct writer {
    snapshot_file_t *file;
    chunk_t chunk;
    frame_rrs_t rrs;
    uint32_t seq;
} writer_t;

static int writer_flush(writer_t *w)
{
    w->chunk.records = (ProtobufCBinaryData){.len = w->rrs.len, .data = w->rrs.buf};
    w->chunk.seq = w->seq++;
    int rc = snapshot_file_add(w->file, &w->chunk);
    /* What follows is the same zone, not its first chunk. */
    w->chunk.zone_first = false;
    w->chunk.file = (char *)"";
    w->chunk.file_digest = 0;
    w->chunk.serial = 0;
    w->rrs.len = 0;
    w->rrs.count = 0;
    return rc;
}

static int writer_record(const zone_change_t *ch, void *arg)
{
    writer_t *w = arg;
    int rc = frame_rrs_add(&w->rrs, ch->owner, (size_t)wire_name_len(ch->owner, WIRE_NAME_MAX),
                           ch->type, ch->ttl, ch->rdata, ch->rdlen);
    if (rc)
        return rc;
    return w->rrs.len >= SNAPSHOT_CHUNK_BYTES ? writer_flush(w) : 0;
}

int snapshot_write(const char *dir, const snapshot_data_t *d, char *err, size_t errlen)
{
    writer_t w = {0};
    int rc = snapshot_file_begin(dir, &w.file);
    if (rc)
        return say(err, errlen, rc, "%s/%s.new: %s", dir, SNAPSHOT_FILE, fennec_strerror(rc));

    /* The header: members and what the snapshot holds. */
    Fennec__Replication__Membership ms = FENNEC__REPLICATION__MEMBERSHIP__INIT;
    Fennec__Replication__Member *mi = calloc(d->member_count + 1, sizeof(*mi));
    Fennec__Replication__Member **mp = calloc(d->member_count + 1, sizeof(*mp));
    if (!mi || !mp) {
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < d->member_count; i++) {
        fennec__replication__member__init(&mi[i]);
        mi[i].id = (char *)d->members[i].id;
        mi[i].address = (char *)d->members[i].address;
        mp[i] = &mi[i];
    }
    ms.members = mp;
    ms.n_members = d->member_count;
    Fennec__Replication__HealthConfig hc = FENNEC__REPLICATION__HEALTH_CONFIG__INIT;
    Fennec__Replication__HealthOverride *ov = calloc(d->override_count + 1, sizeof(*ov));
    Fennec__Replication__HealthOverride **ovp = calloc(d->override_count + 1, sizeof(*ovp));
    if (!ov || !ovp) {
        free(ov);
        free(ovp);
        rc = -ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < d->override_count; i++) {
        fennec__replication__health_override__init(&ov[i]);
        ov[i].check = (char *)d->overrides[i].check;
        ov[i].state = (uint32_t)d->overrides[i].state;
        ovp[i] = &ov[i];
    }
    fennec__replication__snapshot_chunk__init(&w.chunk);
    if (d->health) {
        hc.yaml =
            (ProtobufCBinaryData){.len = d->health->yaml_len, .data = (uint8_t *)d->health->yaml};
        hc.name = d->health->name ? d->health->name : (char *)"";
        hc.folder = d->health->base ? d->health->base : (char *)"";
        hc.first_line = d->health->first_line;
        w.chunk.health = &hc;
    }
    w.chunk.overrides = ovp;
    w.chunk.n_overrides = d->override_count;
    w.chunk.index = d->index;
    w.chunk.members = &ms;
    w.chunk.commit_time_ns = d->commit_ns;
    w.chunk.zone_count = (uint32_t)d->zone_count;
    rc = writer_flush(&w);
    free(ov);
    free(ovp);
    w.chunk.health = NULL;
    w.chunk.overrides = NULL;
    w.chunk.n_overrides = 0;
    if (rc != 0)
        goto done;
    w.chunk.members = NULL;
    w.chunk.commit_time_ns = 0;
    w.chunk.zone_count = 0;

    for (size_t i = 0; i < d->zone_count; i++) {
        const zone_t *z = d->zones[i];
        uint64_t digest = 0;
        const char *file = zone_source(z, &digest);
        w.chunk.zone = (char *)zone_name(z);
        w.chunk.zone_first = true;
        w.chunk.serial = zone_serial(z);
        w.chunk.file = (char *)(file ? file : "");
        w.chunk.file_digest = digest;
        if ((rc = zone_records(z, writer_record, &w)) != 0)
            goto done;
        if ((w.rrs.count || w.chunk.zone_first) && (rc = writer_flush(&w)) != 0)
            goto done;
    }
    w.chunk.zone = (char *)"";
    w.chunk.last = true;
    rc = writer_flush(&w);
done:
    free(mi);
    free(mp);
    frame_rrs_free(&w.rrs);
    int erc = snapshot_file_end(w.file, rc == 0);
    if (rc == 0)
        rc = erc;
    if (rc)
        say(err, errlen, rc, "%s/%s: %s", dir, SNAPSHOT_FILE, fennec_strerror(rc));
    return rc;
}

/* ---- building one from chunks ---- */

struct snapshot_builder {
    snapshot_data_t data;
    size_t zones_cap;
    uint32_t next_seq;
    bool done;
    uint32_t zone_count; /* as the header says */
    /* the zone being received: its records point into the chunks' record bytes, which are
     * kept (a decoded frame taken over, or a copy of a borrowed chunk's bytes) until the
     * zone is built */
    char zone[WIRE_NAME_TEXT_MAX];
    uint32_t serial;
    char *file;
    uint64_t file_digest;
    zone_change_t *recs;
    size_t nrecs, recs_cap;
    frame_t **frames; /* taken over */
    size_t nframes, frames_cap;
    uint8_t **blobs; /* copies */
    size_t nblobs, blobs_cap;
};

/* Lets go of the record bytes held for the zone being received. */
static void held_free(snapshot_builder_t *b)
{
    for (size_t i = 0; i < b->nframes; i++)
        frame_free(b->frames[i]);
    for (size_t i = 0; i < b->nblobs; i++)
        free(b->blobs[i]);
    b->nframes = b->nblobs = 0;
}

static int ptr_push(void ***arr, size_t *n, size_t *cap, void *p)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        void **a = realloc(*arr, ncap * sizeof(*a));
        if (!a)
            return -ENOMEM;
        *arr = a;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return 0;
}

int snapshot_builder_new(snapshot_builder_t **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void snapshot_builder_free(snapshot_builder_t *b)
{
    if (!b)
        return;
    snapshot_data_free(&b->data);
    free(b->file);
    free(b->recs);
    held_free(b);
    free(b->frames);
    free(b->blobs);
    free(b);
}

/* Builds the zone received so far and adds it to the data. */
static int zone_finish(snapshot_builder_t *b, char *err, size_t errlen)
{
    if (!b->zone[0])
        return 0;
    zone_t *z = NULL;
    char name[300];
    snprintf(name, sizeof(name), "snapshot of %.256s", b->zone);
    int rc = zone_from_records(b->zone, b->recs, b->nrecs, name, &z, err, errlen);
    if (rc == 0 && zone_serial(z) != b->serial)
        rc = say(err, errlen, FENNEC_EDAMAGED, "%s: serial %u, the snapshot says %u", b->zone,
                 zone_serial(z), b->serial);
    if (rc == 0)
        rc = zone_source_set(z, b->file, b->file_digest);
    if (rc == 0 && b->data.zone_count == b->zones_cap) {
        size_t ncap = b->zones_cap ? b->zones_cap * 2 : 8;
        zone_t **nz = realloc(b->data.zones, ncap * sizeof(*nz));
        if (!nz)
            rc = -ENOMEM;
        else {
            b->data.zones = nz;
            b->zones_cap = ncap;
        }
    }
    if (rc != 0) {
        zone_unref(z);
        return rc == -ENOMEM ? rc : FENNEC_EDAMAGED;
    }
    b->data.zones[b->data.zone_count++] = z;
    b->zone[0] = '\0';
    b->nrecs = 0;
    held_free(b);
    free(b->file);
    b->file = NULL;
    return 0;
}

/* Takes chunk C; OWNER (or NULL: C is borrowed) is its frame, which the builder takes over. */
static int builder_add(snapshot_builder_t *b, const chunk_t *c, frame_t *owner, char *err,
                       size_t errlen);

int snapshot_builder_add(snapshot_builder_t *b, const chunk_t *c, char *err, size_t errlen)
{
    return builder_add(b, c, NULL, err, errlen);
}

int snapshot_builder_add_frame(snapshot_builder_t *b, frame_t *f, char *err, size_t errlen)
{
    if (!f || f->kind_case != FENNEC__REPLICATION__FRAME__KIND_SNAPSHOT) {
        frame_free(f);
        return say(err, errlen, FENNEC_EDAMAGED, "a frame that is not a snapshot chunk");
    }
    return builder_add(b, f->snapshot, f, err, errlen);
}

static int builder_take(snapshot_builder_t *b, const chunk_t *c, frame_t *owner, bool *kept,
                        char *err, size_t errlen);

static int builder_add(snapshot_builder_t *b, const chunk_t *c, frame_t *owner, char *err,
                       size_t errlen)
{
    bool kept = false;
    int rc = builder_take(b, c, owner, &kept, err, errlen);
    if (owner && !kept)
        frame_free(owner);
    return rc;
}

static int builder_take(snapshot_builder_t *b, const chunk_t *c, frame_t *owner, bool *kept,
                        char *err, size_t errlen)
{
    if (b->done)
        return say(err, errlen, FENNEC_EDAMAGED, "a chunk after the last one");
    if (c->seq != b->next_seq)
        return say(err, errlen, FENNEC_EDAMAGED, "chunk %u where %u was due", c->seq, b->next_seq);
    if (c->seq == 0) {
        if (c->zone[0] || c->records.len)
            return say(err, errlen, FENNEC_EDAMAGED, "the first chunk is not a header");
        b->data.index = c->index;
        b->data.commit_ns = c->commit_time_ns;
        b->zone_count = c->zone_count;
        int n = entry_members(c->members, &b->data.members);
        if (n < 0)
            return n;
        b->data.member_count = (size_t)n;
        int rc = entry_health(c->health, &b->data.health, err, errlen);
        if (rc != 0)
            return rc == -ENOMEM ? rc : FENNEC_EDAMAGED;
        b->data.overrides = calloc(c->n_overrides + 1, sizeof(*b->data.overrides));
        if (!b->data.overrides)
            return -ENOMEM;
        for (size_t i = 0; i < c->n_overrides; i++) {
            snprintf(b->data.overrides[i].check, sizeof(b->data.overrides[i].check), "%s",
                     c->overrides[i]->check);
            b->data.overrides[i].state = (health_override_t)c->overrides[i]->state;
        }
        b->data.override_count = c->n_overrides;
    } else if (c->index != b->data.index) {
        return say(err, errlen, FENNEC_EDAMAGED, "chunk %u is of index %llu, not %llu", c->seq,
                   (unsigned long long)c->index, (unsigned long long)b->data.index);
    }
    b->next_seq++;
    int rc;
    if (c->seq > 0 && (c->zone_first || c->last)) {
        if ((rc = zone_finish(b, err, errlen)) != 0)
            return rc;
    }
    if (c->zone_first) {
        snprintf(b->zone, sizeof(b->zone), "%s", c->zone);
        b->serial = c->serial;
        b->file_digest = c->file_digest;
        if (c->file[0] && !(b->file = strdup(c->file)))
            return -ENOMEM;
    } else if (c->records.len && (!b->zone[0] || strcmp(c->zone, b->zone) != 0)) {
        return say(err, errlen, FENNEC_EDAMAGED, "chunk %u has records of %s without its start",
                   c->seq, c->zone);
    }
    /* The records stay where they are until the zone is built: in the frame taken over, or
     * in one copy of a borrowed chunk's bytes. */
    const uint8_t *base = c->records.data;
    size_t len = c->records.len;
    if (len && owner) {
        if (ptr_push((void ***)&b->frames, &b->nframes, &b->frames_cap, owner) != 0)
            return -ENOMEM;
        *kept = true;
    } else if (len) {
        uint8_t *copy = malloc(len);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, base, len);
        if (ptr_push((void ***)&b->blobs, &b->nblobs, &b->blobs_cap, copy) != 0) {
            free(copy);
            return -ENOMEM;
        }
        base = copy;
    }
    size_t pos = 0;
    frame_rr_t rr;
    while ((rc = frame_rr_next(base, len, &pos, &rr, NULL)) == 1) {
        if (b->nrecs == b->recs_cap) {
            size_t ncap = b->recs_cap ? b->recs_cap * 2 : 4096;
            zone_change_t *nr = realloc(b->recs, ncap * sizeof(*nr));
            if (!nr)
                return -ENOMEM;
            b->recs = nr;
            b->recs_cap = ncap;
        }
        b->recs[b->nrecs++] = (zone_change_t){.add = true,
                                              .owner = rr.owner,
                                              .type = rr.type,
                                              .ttl = rr.ttl,
                                              .rdata = rr.rdata,
                                              .rdlen = rr.rdlen};
    }
    if (rc != 0)
        return say(err, errlen, FENNEC_EDAMAGED, "chunk %u: records that do not decode", c->seq);
    if (c->last) {
        if (b->data.zone_count != b->zone_count)
            return say(err, errlen, FENNEC_EDAMAGED, "%zu zones, the header says %u",
                       b->data.zone_count, b->zone_count);
        b->done = true;
        return 1;
    }
    return 0;
}

int snapshot_builder_finish(snapshot_builder_t *b, snapshot_data_t *out, char *err, size_t errlen)
{
    if (!b->done)
        return say(err, errlen, FENNEC_EDAMAGED, "the snapshot ends before its last chunk");
    *out = b->data;
    memset(&b->data, 0, sizeof(b->data));
    return 0;
}

/* ---- reading the file ---- */

struct snapshot_reader {
    FILE *f;
};

int snapshot_reader_open(const char *dir, snapshot_reader_t **out)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE);
    FILE *f = fopen(path, "rbe");
    if (!f)
        return errno == ENOENT ? FENNEC_ENOTFOUND : -errno;
    snapshot_reader_t *r = calloc(1, sizeof(*r));
    if (!r) {
        fclose(f);
        return -ENOMEM;
    }
    r->f = f;
    *out = r;
    return 0;
}

int snapshot_reader_next(snapshot_reader_t *r, uint8_t **out, size_t *len)
{
    uint8_t head[FRAME_HEADER_LEN];
    *out = NULL;
    *len = 0;
    size_t got = fread(head, 1, sizeof(head), r->f);
    if (got == 0 && feof(r->f))
        return 0;
    if (got != sizeof(head))
        return ferror(r->f) ? -EIO : FENNEC_EDAMAGED;
    uint32_t n = wire_get_u32(head);
    if (n > FRAME_MAX_DEFAULT)
        return FENNEC_EDAMAGED;
    uint8_t *buf = malloc(FRAME_HEADER_LEN + (size_t)n);
    if (!buf)
        return -ENOMEM;
    memcpy(buf, head, FRAME_HEADER_LEN);
    if (fread(buf + FRAME_HEADER_LEN, 1, n, r->f) != n) {
        int rc = ferror(r->f) ? -EIO : FENNEC_EDAMAGED;
        free(buf);
        return rc;
    }
    *out = buf;
    *len = FRAME_HEADER_LEN + (size_t)n;
    return 0;
}

void snapshot_reader_close(snapshot_reader_t *r)
{
    if (!r)
        return;
    fclose(r->f);
    free(r);
}

/* Decodes the frame in BUF as a snapshot chunk; NULL when it is anything else. */
static Fennec__Replication__Frame *chunk_decode(const uint8_t *buf, size_t len, char *err,
                                                size_t errlen)
{
    if (len < FRAME_HEADER_LEN || wire_get_u32(buf) != len - FRAME_HEADER_LEN)
        return NULL;
    frame_t *f =
        fennec__replication__frame__unpack(NULL, len - FRAME_HEADER_LEN, buf + FRAME_HEADER_LEN);
    if (f && frame_check(f, err, errlen) != 0) {
        frame_free(f);
        return NULL;
    }
    if (f && f->kind_case != FENNEC__REPLICATION__FRAME__KIND_SNAPSHOT) {
        frame_free(f);
        f = NULL;
    }
    return f;
}

int snapshot_read(const char *dir, snapshot_data_t *out, char *err, size_t errlen)
{
    snapshot_builder_t *b = NULL;
    char path[4200], why[512] = "";
    memset(out, 0, sizeof(*out));
    snprintf(path, sizeof(path), "%s/%s", dir, SNAPSHOT_FILE);
    /* The file is mapped and read in place: a large snapshot is read once, not copied. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = errno == ENOENT ? FENNEC_ENOTFOUND : -errno;
        return say(err, errlen, rc, "%s: %s", path, fennec_strerror(rc));
    }
    struct stat st;
    const uint8_t *map = NULL;
    size_t size = 0;
    int rc = fstat(fd, &st) == 0 ? 0 : -errno;
    if (rc == 0 && st.st_size > 0) {
        size = (size_t)st.st_size;
        void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
        if (m == MAP_FAILED)
            rc = -errno;
        else
            map = m;
    }
    close(fd);
    if (rc == 0)
        rc = snapshot_builder_new(&b);
    for (size_t k = 0, off = 0; rc == 0; k++) {
        if (off >= size) {
            rc = say(why, sizeof(why), FENNEC_EDAMAGED, "it ends before its last chunk");
            break;
        }
        size_t n = size - off >= FRAME_HEADER_LEN ? wire_get_u32(map + off) : SIZE_MAX;
        if (n > FRAME_MAX_DEFAULT || n > size - off - FRAME_HEADER_LEN) {
            snprintf(why, sizeof(why), "frame %zu is cut short or too long", k);
            rc = FENNEC_EDAMAGED;
            break;
        }
        frame_t *f = chunk_decode(map + off, FRAME_HEADER_LEN + n, why, sizeof(why));
        off += FRAME_HEADER_LEN + n;
        if (!f) {
            if (!why[0])
                snprintf(why, sizeof(why), "frame %zu is not a snapshot chunk", k);
            rc = FENNEC_EDAMAGED;
            break;
        }
        rc = snapshot_builder_add_frame(b, f, why, sizeof(why));
        if (rc == 1) {
            rc = snapshot_builder_finish(b, out, why, sizeof(why));
            break;
        }
    }
    if (rc != 0)
        say(err, errlen, rc, "%s: %s", path, why[0] ? why : fennec_strerror(rc));
    snapshot_builder_free(b);
    if (map)
        munmap((void *)map, size);
    return rc;
}

uint64_t snapshot_index(const char *dir)
{
    snapshot_reader_t *r = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t index = 0;
    if (snapshot_reader_open(dir, &r) != 0)
        return 0;
    if (snapshot_reader_next(r, &buf, &len) == 0 && buf) {
        char why[256];
        frame_t *f = chunk_decode(buf, len, why, sizeof(why));
        if (f && f->snapshot->seq == 0)
            index = f->snapshot->index;
        frame_free(f);
    }
    free(buf);
    snapshot_reader_close(r);
    return index;
}
