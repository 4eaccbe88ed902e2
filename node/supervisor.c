/*
 * The supervisor's pure parts: restart intensity with backoff, rise and fall of the
 * self-check, the state a node is in, and the report sent to fennecd. Time is passed in, so
 * the unit tests check each rule without waiting.
 */
#include "fennec/supervisor.h"

#include "fennec/common.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

void supervisor_restart_init(supervisor_restart_t *r, const cfg_anycast_t *a)
{
    memset(r, 0, sizeof(*r));
    r->backoff_ns = a->restart_backoff_ns;
    r->backoff_max_ns = a->restart_backoff_max_ns;
    r->intensity = a->restart_intensity > SUPERVISOR_INTENSITY_MAX ? SUPERVISOR_INTENSITY_MAX
                                                                   : a->restart_intensity;
    r->period_ns = a->restart_period_ns;
}

static void forget_old(supervisor_restart_t *r, uint64_t now_ns)
{
    size_t drop = 0;
    while (drop < r->count && now_ns - r->crashes[drop] >= r->period_ns)
        drop++;
    if (drop) {
        memmove(r->crashes, r->crashes + drop, (r->count - drop) * sizeof(r->crashes[0]));
        r->count -= drop;
    }
}

size_t supervisor_restart_recent(const supervisor_restart_t *r, uint64_t now_ns)
{
    size_t n = 0;
    for (size_t i = 0; i < r->count; i++)
        if (now_ns - r->crashes[i] < r->period_ns)
            n++;
    return n;
}

bool supervisor_restart_crash(supervisor_restart_t *r, uint64_t now_ns, uint64_t *delay_ns)
{
    forget_old(r, now_ns);
    if (r->count == sizeof(r->crashes) / sizeof(r->crashes[0])) {
        memmove(r->crashes, r->crashes + 1, (r->count - 1) * sizeof(r->crashes[0]));
        r->count--;
    }
    r->crashes[r->count++] = now_ns;
    if (r->count > r->intensity)
        return false;
    uint64_t d = r->backoff_ns;
    for (size_t k = 1; k < r->count && d < r->backoff_max_ns; k++)
        d = d > r->backoff_max_ns / 2 ? r->backoff_max_ns : d * 2;
    *delay_ns = d < r->backoff_max_ns ? d : r->backoff_max_ns;
    return true;
}

void supervisor_check_init(supervisor_check_t *c, uint32_t rise, uint32_t fall)
{
    memset(c, 0, sizeof(*c));
    c->rise = rise ? rise : 1;
    c->fall = fall ? fall : 1;
}

bool supervisor_check_result(supervisor_check_t *c, bool ok)
{
    if (ok) {
        c->fail_run = 0;
        if (c->ok_run < UINT32_MAX)
            c->ok_run++;
        if (!c->up && c->ok_run >= c->rise) {
            c->up = true;
            return true;
        }
    } else {
        c->ok_run = 0;
        if (c->fail_run < UINT32_MAX)
            c->fail_run++;
        if (c->up && c->fail_run >= c->fall) {
            c->up = false;
            return true;
        }
    }
    return false;
}

bool supervisor_want_announce(const supervisor_inputs_t *in)
{
    return in->running && in->check_up && !in->drain && !in->stopping && !in->gave_up;
}

repl_announce_t supervisor_state_of(const supervisor_inputs_t *in)
{
    if (!in->running || in->gave_up || in->stopping)
        return REPL_ANNOUNCE_DOWN;
    if (in->drain)
        return in->bird == BIRD_DISABLED ? REPL_ANNOUNCE_DRAINED : REPL_ANNOUNCE_DRAINING;
    if (supervisor_want_announce(in) && in->bird == BIRD_ENABLED)
        return REPL_ANNOUNCE_ANNOUNCED;
    return REPL_ANNOUNCE_WITHDRAWN;
}

int supervisor_report_encode(const supervisor_report_t *r, char *buf, size_t cap)
{
    json_t *tr = json_object();
    for (int i = 1; tr && i < REPL_ANNOUNCE_COUNT; i++)
        json_object_set_new(tr, repl_announce_name((repl_announce_t)i),
                            json_integer((json_int_t)r->transitions[i]));
    json_t *o =
        json_pack("{s:s, s:s, s:f, s:s, s:o, s:I, s:b, s:b, s:s, s:I}", "type", "report", "state",
                  repl_announce_name(r->state), "since", r->since, "reason", r->reason,
                  "transitions", tr ? tr : json_object(), "restarts", (json_int_t)r->restarts,
                  "drain", r->drain, "bird_connected", r->bird_connected, "bird_error",
                  r->bird_error, "reply", (json_int_t)r->reply);
    if (!o)
        return -ENOMEM;
    size_t need = json_dumpb(o, buf, cap, JSON_COMPACT);
    json_decref(o);
    if (need == 0 || need >= cap)
        return -ENOSPC;
    buf[need] = '\0';
    return (int)need;
}

void supervisor_text_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src && src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = c < 0x80 ? (char)c : '?';
    }
    if (cap)
        dst[i] = '\0';
}

static void copy_string(char *dst, size_t cap, const json_t *v)
{
    supervisor_text_copy(dst, cap, json_is_string(v) ? json_string_value(v) : "");
}

int supervisor_report_decode(const char *buf, size_t len, supervisor_report_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len > SUPERVISOR_MSG_MAX)
        return FENNEC_EMALFORMED;
    json_t *o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = FENNEC_EMALFORMED;
    if (!json_is_object(o))
        goto done;
    const json_t *type = json_object_get(o, "type");
    const json_t *state = json_object_get(o, "state");
    if (!json_is_string(type) || strcmp(json_string_value(type), "report") != 0 ||
        !json_is_string(state))
        goto done;
    int st = repl_announce_parse(json_string_value(state));
    if (st < 0)
        goto done;
    out->state = (repl_announce_t)st;
    const json_t *v = json_object_get(o, "since");
    out->since = json_is_number(v) ? json_number_value(v) : 0;
    copy_string(out->reason, sizeof(out->reason), json_object_get(o, "reason"));
    copy_string(out->bird_error, sizeof(out->bird_error), json_object_get(o, "bird_error"));
    const json_t *tr = json_object_get(o, "transitions");
    for (int i = 1; json_is_object(tr) && i < REPL_ANNOUNCE_COUNT; i++) {
        v = json_object_get(tr, repl_announce_name((repl_announce_t)i));
        out->transitions[i] =
            json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    }
    v = json_object_get(o, "restarts");
    out->restarts =
        json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    out->drain = json_is_true(json_object_get(o, "drain"));
    out->bird_connected = json_is_true(json_object_get(o, "bird_connected"));
    v = json_object_get(o, "reply");
    out->reply =
        json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
    rc = 0;
done:
    json_decref(o);
    return rc;
}
