/* Unit tests of the control plane's pure parts: token derivation, Bearer parsing and
 * comparison, record request validation, the Prometheus text, the replication views
 * (status object, node rows), the ?wait=all query, the health view (GET /v1/health, its
 * metrics and its tables on the page) and the status page with its lag chart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fennec/common.h"
#include "fennec/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Known vectors, computed with OpenSSL's command line:
 *   printf 'fennec-control' | openssl dgst -sha256 -hmac \
 *       '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'
 *   printf 'fennec-control' | openssl dgst -sha256 -hmac 'k'
 */
#define KEY1    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define TOKEN1  "a2c9cebdd2579d603ea26409bb232a04833b5b10e529b37edca32f0685fdd56a"
#define TOKEN_K "f438f59865abf86ab55815d200eace0333731a96be5956452c66f0a02f06c447"

static void test_token_vectors(void **state)
{
    (void)state;
    char tok[CONTROL_TOKEN_LEN + 1];
    assert_int_equal(control_token_derive((const uint8_t *)KEY1, strlen(KEY1), tok), 0);
    assert_string_equal(tok, TOKEN1);
    assert_int_equal(control_token_derive((const uint8_t *)"k", 1, tok), 0);
    assert_string_equal(tok, TOKEN_K);
}

static char *write_temp(const char *content, size_t len)
{
    char *path = strdup("/tmp/fennec-test-key-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_key_read(void **state)
{
    (void)state;
    uint8_t key[CONTROL_MAX_KEY];
    size_t keylen = 0;
    char err[256];

    /* The key is the first line without its newline; later lines are ignored. */
    char *p = write_temp(KEY1 "\nsecond line\n", strlen(KEY1) + 13);
    assert_int_equal(control_key_read(p, key, &keylen, err, sizeof(err)), 0);
    assert_int_equal(keylen, strlen(KEY1));
    assert_memory_equal(key, KEY1, keylen);
    char tok[CONTROL_TOKEN_LEN + 1];
    assert_int_equal(control_token_derive(key, keylen, tok), 0);
    assert_string_equal(tok, TOKEN1);
    unlink(p);
    free(p);

    /* No newline at all. */
    p = write_temp("k", 1);
    assert_int_equal(control_key_read(p, key, &keylen, err, sizeof(err)), 0);
    assert_int_equal(keylen, 1);
    assert_int_equal(key[0], 'k');
    unlink(p);
    free(p);

    /* Empty first line. */
    p = write_temp("\nk\n", 3);
    assert_int_equal(control_key_read(p, key, &keylen, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "empty"));
    unlink(p);
    free(p);

    /* A line longer than the limit. */
    char *big = malloc(CONTROL_MAX_KEY + 10);
    memset(big, 'a', CONTROL_MAX_KEY + 10);
    p = write_temp(big, CONTROL_MAX_KEY + 10);
    assert_int_equal(control_key_read(p, key, &keylen, err, sizeof(err)), FENNEC_EMALFORMED);
    unlink(p);
    free(p);
    free(big);

    /* A missing file names the path. */
    assert_int_equal(control_key_read("/nonexistent/fennec.key", key, &keylen, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/fennec.key"));
}

static void test_bearer_parse(void **state)
{
    (void)state;
    const char *tok;
    size_t len;
    assert_int_equal(control_bearer_parse("Bearer abc", &tok, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(tok, "abc", 3);
    assert_int_equal(control_bearer_parse("bearer abc", &tok, &len), 0);
    assert_int_equal(control_bearer_parse("BEARER\tabc", &tok, &len), 0);
    assert_int_equal(control_bearer_parse("  Bearer   abc  ", &tok, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(tok, "abc", 3);

    assert_int_equal(control_bearer_parse(NULL, &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Bearer", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Bearer ", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Bearerabc", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Basic abc", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Bearer abc def", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse("Bearer ab\x01", &tok, &len), FENNEC_EMALFORMED);
    assert_int_equal(control_bearer_parse(TOKEN1, &tok, &len), FENNEC_EMALFORMED);
}

static void test_bearer_check(void **state)
{
    (void)state;
    assert_true(control_bearer_check("Bearer " TOKEN1, TOKEN1));
    assert_true(control_bearer_check("bearer  " TOKEN1 " ", TOKEN1));

    char wrong[] = "Bearer " TOKEN1;
    wrong[strlen(wrong) - 1] = wrong[strlen(wrong) - 1] == 'a' ? 'b' : 'a';
    assert_false(control_bearer_check(wrong, TOKEN1));
    wrong[7] = wrong[7] == 'a' ? 'b' : 'a';
    assert_false(control_bearer_check(wrong, TOKEN1));

    /* A prefix or an extension of the token is not the token. */
    char prefix[80];
    snprintf(prefix, sizeof(prefix), "Bearer %.63s", TOKEN1);
    assert_false(control_bearer_check(prefix, TOKEN1));
    assert_false(control_bearer_check("Bearer " TOKEN1 "0", TOKEN1));
    /* Tokens are lower-case hex, compared byte for byte. */
    assert_false(control_bearer_check("Bearer A2C9CEBDD2579D603EA26409BB232A04833B5B10E529B37ED"
                                      "CA32F0685FDD56A",
                                      TOKEN1));
    assert_false(control_bearer_check(NULL, TOKEN1));
    assert_false(control_bearer_check("Bearer " TOKEN1, NULL));
    assert_false(control_bearer_check("Basic " TOKEN1, TOKEN1));
}

/* ---- record requests ---- */

static control_record_req_t *g_req;

static int setup_req(void **state)
{
    (void)state;
    g_req = calloc(1, sizeof(*g_req));
    return g_req ? 0 : -1;
}

static int teardown_req(void **state)
{
    (void)state;
    free(g_req);
    return 0;
}

static int parse(const char *body, char *err, size_t errlen)
{
    memset(g_req, 0, sizeof(*g_req));
    return control_record_parse("example.com", body, strlen(body), g_req, err, errlen);
}

/* Asserts that BODY is refused with a message containing WANT. */
#define assert_refused(body, want)                                                                 \
    do {                                                                                           \
        char err_[1024] = "";                                                                      \
        assert_int_equal(parse(body, err_, sizeof(err_)), FENNEC_EMALFORMED);                      \
        if (!strstr(err_, want))                                                                   \
            fail_msg("message \"%s\" lacks \"%s\"", err_, want);                                   \
    } while (0)

static void test_record_valid(void **state)
{
    (void)state;
    char err[1024];
    assert_int_equal(parse("{\"action\":\"add\",\"name\":\"WWW\",\"ttl\":300,\"type\":\"a\","
                           "\"rdata\":\"192.0.2.1\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->op, CONTROL_RECORD_ADD);
    assert_string_equal(g_req->owner, "www.example.com");
    static const uint8_t wire[] = "\3www\7example\3com";
    assert_int_equal(g_req->owner_len, sizeof(wire));
    assert_memory_equal(g_req->owner_wire, wire, sizeof(wire));
    assert_int_equal(g_req->ttl, 300);
    assert_int_equal(g_req->type, 1);
    assert_string_equal(g_req->type_name, "A");
    assert_int_equal(g_req->rdata_len, 4);
    assert_memory_equal(g_req->rdata, "\xc0\x00\x02\x01", 4);

    /* Apex, MX with a relative target, delete. */
    assert_int_equal(parse("{\"action\":\"delete\",\"name\":\"@\",\"ttl\":0,\"type\":\"MX\","
                           "\"rdata\":\"10 mail\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->op, CONTROL_RECORD_DELETE);
    assert_string_equal(g_req->owner, "example.com");
    assert_int_equal(g_req->type, 15);
    static const uint8_t mx[] = "\0\x0a\4mail\7example\3com";
    assert_int_equal(g_req->rdata_len, sizeof(mx));
    assert_memory_equal(g_req->rdata, mx, sizeof(mx));

    /* An absolute name inside the zone, a TXT with spaces, the largest TTL. */
    assert_int_equal(parse("{\"action\":\"add\",\"name\":\"a.b.Example.COM.\",\"ttl\":2147483647,"
                           "\"type\":\"TXT\",\"rdata\":\"\\\"hello world\\\"\"}",
                           err, sizeof(err)),
                     0);
    assert_string_equal(g_req->owner, "a.b.example.com");
    assert_int_equal(g_req->ttl, 2147483647u);
    assert_int_equal(g_req->rdata_len, 12);

    /* RFC 3597 generic type and data. */
    assert_int_equal(parse("{\"action\":\"add\",\"name\":\"x\",\"ttl\":1,\"type\":\"TYPE65280\","
                           "\"rdata\":\"\\\\# 2 abcd\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->type, 65280);
    assert_int_equal(g_req->rdata_len, 2);
    assert_memory_equal(g_req->rdata, "\xab\xcd", 2);
}

static void test_record_missing(void **state)
{
    (void)state;
    assert_refused("{\"name\":\"w\",\"ttl\":1,\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                   "missing field \"action\"");
    assert_refused("{\"action\":\"add\",\"ttl\":1,\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                   "missing field \"name\"");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                   "missing field \"ttl\"");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"rdata\":\"192.0.2.1\"}",
                   "missing field \"type\"");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\"}",
                   "missing field \"rdata\"");
    assert_refused(
        "{\"action\":\"add\",\"name\":\"\",\"ttl\":1,\"type\":\"A\",\"rdata\":\"1.2.3.4\"}",
        "\"name\" is empty");
}

static void test_record_bad_types(void **state)
{
    (void)state;
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":\"300\",\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "\"ttl\" must be an integer number of seconds, not a string");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1.5,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "must be an integer");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":-1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "between 0 and 2147483647");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":4294967296,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "between 0 and 2147483647");
    assert_refused("{\"action\":\"add\",\"name\":5,\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "\"name\" must be a string");
    assert_refused("{\"action\":true,\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "\"action\" must be a string");
    assert_refused("{\"action\":\"upsert\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "\"add\" or \"delete\"");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"BOGUS\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "unknown record type");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "unknown record type");
    assert_refused("{\"action\":\"add\",\"name\":\"@\",\"ttl\":1,\"type\":\"SOA\","
                   "\"rdata\":\"ns h 1 2 3 4 5\"}",
                   "cannot be edited");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"ANY\","
                   "\"rdata\":\"x\"}",
                   "cannot be edited");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.300\"}",
                   "does not parse");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"MX\","
                   "\"rdata\":\"mail\"}",
                   "does not parse");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1 (\"}",
                   "does not parse");
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\",\"weight\":3}",
                   "unknown field \"weight\"");
}

static void test_record_hostile(void **state)
{
    (void)state;
    /* A newline would smuggle a second record or a directive into the parser. */
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\\n$INCLUDE /etc/passwd\"}",
                   "control characters");
    assert_refused("{\"action\":\"add\",\"name\":\"$INCLUDE\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "master-file syntax");
    assert_refused("{\"action\":\"add\",\"name\":\"a b\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "master-file syntax");
    assert_refused("{\"action\":\"add\",\"name\":\"w\\u0000x\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "NUL");
    assert_refused("{\"action\":\"add\",\"name\":\"www.example.org.\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "not inside zone example.com");
    assert_refused("{\"action\":\"add\",\"name\":\"notexample.com.\",\"ttl\":1,\"type\":\"A\","
                   "\"rdata\":\"192.0.2.1\"}",
                   "not inside zone");
    /* Not JSON, not an object, duplicate keys, empty. */
    assert_refused("{\"action\":", "not valid JSON");
    assert_refused("garbage", "not valid JSON");
    assert_refused("[1,2]", "must be a JSON object, not an array");
    assert_refused("{\"action\":\"add\",\"action\":\"delete\"}", "not valid JSON");
    assert_refused("", "needs a JSON object");

    /* Bodies over the limit are refused before parsing. */
    size_t n = CONTROL_MAX_BODY + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    big[n] = '\0';
    char err[256];
    assert_int_equal(control_record_parse("example.com", big, n, g_req, err, sizeof(err)),
                     FENNEC_ESPACE);
    /* The same object within the limit parses as JSON (and misses fields). */
    big[CONTROL_MAX_BODY - 1] = '}';
    assert_int_equal(
        control_record_parse("example.com", big, CONTROL_MAX_BODY, g_req, err, sizeof(err)),
        FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "missing field"));
    free(big);

    /* A field longer than its limit. */
    char *longname = malloc(3000);
    strcpy(longname,
           "{\"action\":\"add\",\"ttl\":1,\"type\":\"A\",\"rdata\":\"1.2.3.4\",\"name\":\"");
    size_t l = strlen(longname);
    memset(longname + l, 'a', 1100);
    strcpy(longname + l + 1100, "\"}");
    assert_refused(longname, "longer than 1024");
    free(longname);
}

/* ---- Prometheus text ---- */

static char *escaped(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    control_prom_escape(f, s);
    fclose(f);
    return buf;
}

/* Parses a batch BODY for example.com; *AT and ERR as control_batch_parse() sets them. */
static int batch(const char *body, control_batch_t *b, size_t *at, char *err, size_t errlen)
{
    return control_batch_parse("example.com", body, strlen(body), b, at, err, errlen);
}

/* Asserts that the batch BODY is refused with RC, change AT at fault and WANT in the message,
 * and that nothing is left to free. */
static void batch_refused(const char *body, int rc, size_t at, const char *want)
{
    control_batch_t b;
    size_t got_at = 12345;
    char err[1024] = "";
    int got = batch(body, &b, &got_at, err, sizeof(err));
    if (got != rc || got_at != at || !strstr(err, want))
        fail_msg("%s: got %d at %zu \"%s\", expected %d at %zu with \"%s\"", body, got, got_at, err,
                 rc, at, want);
    assert_null(b.changes);
    assert_null(b.data);
    assert_int_equal(b.count, 0);
}

/* A 32-bit TTL with the top bit set is capped as in a zone file (RFC 2181 8); an add says
 * what it asked for, a delete (whose TTL is not compared) does not. */
static void test_record_ttl_capped(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(parse("{\"action\":\"add\",\"name\":\"w\",\"ttl\":4294967295,"
                           "\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->ttl, ZONE_TTL_MAX);
    assert_int_equal(g_req->ttl_asked, 4294967295u);
    assert_int_equal(parse("{\"action\":\"add\",\"name\":\"w\",\"ttl\":2147483647,"
                           "\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->ttl, ZONE_TTL_MAX);
    assert_int_equal(g_req->ttl_asked, 0);
    assert_int_equal(parse("{\"action\":\"delete\",\"name\":\"w\",\"ttl\":2147483648,"
                           "\"type\":\"A\",\"rdata\":\"192.0.2.1\"}",
                           err, sizeof(err)),
                     0);
    assert_int_equal(g_req->ttl, ZONE_TTL_MAX);
    assert_int_equal(g_req->ttl_asked, 0);

    control_batch_t b;
    size_t at = 0;
    assert_int_equal(
        batch("{\"changes\":[{\"action\":\"add\",\"name\":\"a\",\"ttl\":60,\"type\":\"A\","
              "\"rdata\":\"192.0.2.1\"},{\"action\":\"add\",\"name\":\"b\",\"ttl\":2147483648,"
              "\"type\":\"A\",\"rdata\":\"192.0.2.2\"}]}",
              &b, &at, err, sizeof(err)),
        0);
    assert_non_null(b.ttl_asked);
    assert_int_equal(b.ttl_asked[0], 0);
    assert_int_equal(b.ttl_asked[1], 2147483648u);
    assert_int_equal(b.changes[1].ttl, ZONE_TTL_MAX);
    control_batch_deinit(&b);
    assert_int_equal(
        batch("{\"changes\":[{\"action\":\"add\",\"name\":\"a\",\"ttl\":60,\"type\":\"A\","
              "\"rdata\":\"192.0.2.1\"}]}",
              &b, &at, err, sizeof(err)),
        0);
    assert_null(b.ttl_asked);
    control_batch_deinit(&b);
}

static void test_batch_valid(void **state)
{
    (void)state;
    control_batch_t b;
    size_t at = 0;
    char err[1024];
    assert_int_equal(batch("{\"changes\": ["
                           "{\"action\":\"add\",\"name\":\"WWW\",\"ttl\":300,\"type\":\"A\","
                           "\"rdata\":\"192.0.2.1\"},"
                           "{\"action\":\"delete\",\"name\":\"@\",\"ttl\":0,\"type\":\"MX\","
                           "\"rdata\":\"10 mail\"},"
                           "{\"action\":\"add\",\"name\":\"t.example.com.\",\"ttl\":5,"
                           "\"type\":\"TXT\",\"rdata\":\"\\\"hi\\\"\"}]}",
                           &b, &at, err, sizeof(err)),
                     0);
    assert_int_equal(at, SIZE_MAX);
    assert_int_equal(b.count, 3);
    static const uint8_t www[] = "\3www\7example\3com";
    assert_true(b.changes[0].add);
    assert_memory_equal(b.changes[0].owner, www, sizeof(www));
    assert_int_equal(b.changes[0].type, 1);
    assert_int_equal(b.changes[0].ttl, 300);
    assert_int_equal(b.changes[0].rdlen, 4);
    assert_memory_equal(b.changes[0].rdata, "\xc0\x00\x02\x01", 4);
    static const uint8_t apex[] = "\7example\3com";
    static const uint8_t mx[] = "\0\x0a\4mail\7example\3com";
    assert_false(b.changes[1].add);
    assert_memory_equal(b.changes[1].owner, apex, sizeof(apex));
    assert_int_equal(b.changes[1].type, 15);
    assert_int_equal(b.changes[1].rdlen, sizeof(mx));
    assert_memory_equal(b.changes[1].rdata, mx, sizeof(mx));
    static const uint8_t t[] = "\1t\7example\3com";
    assert_memory_equal(b.changes[2].owner, t, sizeof(t));
    assert_int_equal(b.changes[2].type, 16);
    assert_int_equal(b.changes[2].rdlen, 3);
    assert_memory_equal(b.changes[2].rdata, "\2hi", 3);
    control_batch_deinit(&b);
    assert_null(b.changes);
    control_batch_deinit(&b); /* twice is fine */
    control_batch_deinit(NULL);

    /* Many changes: the storage grows and every change still points at its own data. */
    char *body = malloc(CONTROL_MAX_BODY);
    assert_non_null(body);
    size_t n = (size_t)snprintf(body, CONTROL_MAX_BODY, "{\"changes\":[");
    for (int i = 0; i < 600; i++)
        n += (size_t)snprintf(body + n, CONTROL_MAX_BODY - n,
                              "%s{\"action\":\"add\",\"name\":\"h%d\",\"ttl\":1,\"type\":\"A\","
                              "\"rdata\":\"10.0.%d.%d\"}",
                              i ? "," : "", i, i >> 8, i & 255);
    n += (size_t)snprintf(body + n, CONTROL_MAX_BODY - n, "]}");
    assert_true(n < CONTROL_MAX_BODY);
    assert_int_equal(batch(body, &b, &at, err, sizeof(err)), 0);
    assert_int_equal(b.count, 600);
    for (int i = 0; i < 600; i++) {
        char name[16];
        int l = snprintf(name, sizeof(name), "h%d", i);
        assert_int_equal(b.changes[i].owner[0], l);
        assert_memory_equal(b.changes[i].owner + 1, name, (size_t)l);
        uint8_t ip[4] = {10, 0, (uint8_t)(i >> 8), (uint8_t)(i & 255)};
        assert_memory_equal(b.changes[i].rdata, ip, 4);
    }
    control_batch_deinit(&b);
    free(body);
}

static void test_batch_refused(void **state)
{
    (void)state;
    const char *good = "{\"action\":\"add\",\"name\":\"w\",\"ttl\":1,\"type\":\"A\","
                       "\"rdata\":\"192.0.2.1\"}";
    char body[2048];

    batch_refused("", FENNEC_EMALFORMED, SIZE_MAX, "JSON object");
    batch_refused("[]", FENNEC_EMALFORMED, SIZE_MAX, "must be a JSON object");
    batch_refused("{}", FENNEC_EMALFORMED, SIZE_MAX, "missing field \"changes\"");
    batch_refused("{\"changes\": []}", FENNEC_EMALFORMED, SIZE_MAX, "empty");
    batch_refused("{\"changes\": {}}", FENNEC_EMALFORMED, SIZE_MAX, "must be an array");
    batch_refused("{\"changes\": [], \"zone\": 1}", FENNEC_EMALFORMED, SIZE_MAX,
                  "unknown field \"zone\"");
    batch_refused("{\"changes\": [], \"changes\": []}", FENNEC_EMALFORMED, SIZE_MAX, "duplicate");

    /* Each change is validated as a record edit, and its position is named (0-based). */
    snprintf(body, sizeof(body), "{\"changes\": [%s, 7]}", good);
    batch_refused(body, FENNEC_EMALFORMED, 1, "changes[1]: a record edit must be a JSON object");
    snprintf(body, sizeof(body),
             "{\"changes\": [%s, %s, {\"action\":\"add\",\"name\":\"w\",\"ttl\":1,"
             "\"type\":\"A\",\"rdata\":\"192.0.2.300\"}]}",
             good, good);
    batch_refused(body, FENNEC_EMALFORMED, 2, "changes[2]: the record");
    snprintf(body, sizeof(body),
             "{\"changes\": [{\"action\":\"add\",\"name\":\"www.example.org.\",\"ttl\":1,"
             "\"type\":\"A\",\"rdata\":\"192.0.2.1\"}, %s]}",
             good);
    batch_refused(body, FENNEC_EMALFORMED, 0, "not inside zone");
    snprintf(body, sizeof(body),
             "{\"changes\": [%s, {\"action\":\"replace\",\"name\":\"w\",\"ttl\":1,"
             "\"type\":\"A\",\"rdata\":\"192.0.2.1\"}]}",
             good);
    batch_refused(body, FENNEC_EMALFORMED, 1, "changes[1]: field \"action\"");
    snprintf(body, sizeof(body),
             "{\"changes\": [%s, {\"action\":\"add\",\"name\":\"@\",\"ttl\":1,"
             "\"type\":\"SOA\",\"rdata\":\"a b 1 2 3 4 5\"}]}",
             good);
    batch_refused(body, FENNEC_EMALFORMED, 1, "SOA");
    snprintf(body, sizeof(body), "{\"changes\": [%s, {\"action\":\"add\"}]}", good);
    batch_refused(body, FENNEC_EMALFORMED, 1, "changes[1]: missing field");

    /* Too big: refused before parsing, as a record edit is. */
    char *big = malloc(CONTROL_MAX_BODY + 2);
    assert_non_null(big);
    memset(big, ' ', CONTROL_MAX_BODY + 1);
    big[CONTROL_MAX_BODY + 1] = '\0';
    control_batch_t b;
    size_t at = 0;
    char err[256];
    assert_int_equal(
        control_batch_parse("example.com", big, CONTROL_MAX_BODY + 1, &b, &at, err, sizeof(err)),
        FENNEC_ESPACE);
    assert_int_equal(at, SIZE_MAX);
    assert_non_null(strstr(err, "larger than"));
    free(big);
}

static void test_prom_escape(void **state)
{
    (void)state;
    char *e = escaped("plain.example");
    assert_string_equal(e, "plain.example");
    free(e);
    e = escaped("a\"b\\c\nd");
    assert_string_equal(e, "a\\\"b\\\\c\\nd");
    free(e);
    e = escaped("");
    assert_string_equal(e, "");
    free(e);
}

static void test_metrics_render(void **state)
{
    (void)state;
    control_zone_info_t zones[2] = {
        {.name = "example.com", .serial = 2026112201, .records = 12},
        {.name = "we\"ird\\zone\n", .serial = 7, .records = 1},
    };
    control_snapshot_t snap = {
        .node_id = "ns1",
        .role = "primary",
        .version = "9.9.9",
        .start_time = 1700000000.5,
        .now = 1700000100.0,
        .zones = zones,
        .zone_count = 2,
    };
    snap.stats.workers = 2;
    snap.stats.query.queries[QUERY_UDP] = 40;
    snap.stats.query.queries[QUERY_TCP] = 2;
    snap.stats.query.rcode[0] = 30;
    snap.stats.query.rcode[3] = 11;
    snap.stats.query.rcode[16] = 1;
    snap.stats.query.rcode[12] = 5;
    snap.stats.query.qtype[1] = 41;
    snap.stats.query.qtype[99] = 1;
    snap.stats.query.qtype_other = 3;
    snap.stats.tcp_open = 1;

    char *text = NULL;
    size_t len = 0;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    static const char *const want[] = {
        "# TYPE fennec_dns_queries_total counter\n",
        "# HELP fennec_dns_queries_total ",
        "fennec_dns_queries_total{transport=\"udp\"} 40\n",
        "fennec_dns_queries_total{transport=\"tcp\"} 2\n",
        "# TYPE fennec_dns_responses_total counter\n",
        "fennec_dns_responses_total{rcode=\"NOERROR\"} 30\n",
        "fennec_dns_responses_total{rcode=\"NXDOMAIN\"} 11\n",
        "fennec_dns_responses_total{rcode=\"REFUSED\"} 0\n",
        "fennec_dns_responses_total{rcode=\"BADVERS\"} 1\n",
        "fennec_dns_responses_total{rcode=\"RCODE12\"} 5\n",
        "fennec_dns_queries_by_qtype_total{qtype=\"A\"} 41\n",
        "fennec_dns_queries_by_qtype_total{qtype=\"AAAA\"} 0\n",
        "fennec_dns_queries_by_qtype_total{qtype=\"SPF\"} 1\n",
        "fennec_dns_queries_by_qtype_total{qtype=\"OTHER\"} 3\n",
        "fennec_zone_serial{zone=\"example.com\"} 2026112201\n",
        "fennec_zone_serial{zone=\"we\\\"ird\\\\zone\\n\"} 7\n",
        "fennec_zone_records{zone=\"example.com\"} 12\n",
        "# TYPE fennec_zone_serial gauge\n",
        "fennec_zones 2\n",
        "fennec_workers 2\n",
        "fennec_tcp_connections_open 1\n",
        "process_start_time_seconds 1700000000.500\n",
        "fennec_build_info{version=\"9.9.9\",node=\"ns1\",role=\"primary\"} 1\n",
        "# TYPE fennec_dns_answer_latency_seconds histogram\n",
        "fennec_dns_answer_latency_seconds_bucket{le=\"+Inf\"} ",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack \"%s\":\n%s", want[i], text);
    /* Rcodes without a name and without answers are left out; every line ends in \n. */
    assert_null(strstr(text, "RCODE13"));
    assert_int_equal(text[len - 1], '\n');
    /* Every sample belongs to a family announced by a TYPE line before it. */
    char *save = NULL;
    char *copy = strdup(text);
    char families[96][80];
    size_t nf = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_true(nf < 96);
            sscanf(line + 7, "%79s", families[nf++]);
            continue;
        }
        if (line[0] == '#')
            continue;
        char name[80];
        assert_int_equal(sscanf(line, "%79[a-z_]", name), 1);
        bool found = false;
        for (size_t f = 0; f < nf; f++) {
            size_t fl = strlen(families[f]);
            /* A histogram's samples are its name plus _bucket, _sum or _count. */
            if (strcmp(families[f], name) == 0 ||
                (strncmp(families[f], name, fl) == 0 &&
                 (strcmp(name + fl, "_bucket") == 0 || strcmp(name + fl, "_sum") == 0 ||
                  strcmp(name + fl, "_count") == 0)))
                found = true;
        }
        if (!found)
            fail_msg("sample without TYPE: %s", line);
    }
    free(copy);
    free(text);
}

/* ---- replication views -------------------------------------------------------------------- */

static const repl_member_t g_members[3] = {
    {"ns1", "127.0.0.1:8053"},
    {"ns2", "127.0.0.1:8054"},
    {"n\"s<3>", "127.0.0.1:8055"},
};

/* A primary ns1 with ns2 streaming 2 behind and a third node never heard from. */
static void primary_snapshot(control_snapshot_t *snap, repl_status_t *r, repl_node_status_t *n)
{
    memset(r, 0, sizeof(*r));
    r->primary = true;
    snprintf(r->node_id, sizeof(r->node_id), "ns1");
    r->index = 1042;
    r->commit_time = 1764500000.125;
    memset(n, 0, 2 * sizeof(*n));
    snprintf(n[0].id, sizeof(n[0].id), "ns2");
    snprintf(n[0].address, sizeof(n[0].address), "127.0.0.1:8054");
    n[0].connected = true;
    n[0].state = REPL_STREAMING;
    n[0].applied_index = 1040;
    n[0].entries_behind = 2;
    n[0].seconds_behind = 0.004;
    n[0].last_contact_seconds = 0.25;
    snprintf(n[1].id, sizeof(n[1].id), "n\"s<3>");
    snprintf(n[1].address, sizeof(n[1].address), "127.0.0.1:8055");
    n[1].state = REPL_NEVER_CONNECTED;
    n[1].entries_behind = 1042;
    n[1].seconds_behind = 60;
    n[1].last_contact_seconds = -1;
    r->nodes = n;
    r->node_count = 2;
    memset(snap, 0, sizeof(*snap));
    snap->node_id = "ns1";
    snap->role = "primary";
    snap->version = "9.9.9";
    snap->now = 1764500100.0;
    snap->control_address = "127.0.0.1:8053";
    snap->repl = r;
    snap->members = g_members;
    snap->member_count = 3;
}

static void secondary_snapshot(control_snapshot_t *snap, repl_status_t *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->node_id, sizeof(r->node_id), "ns2");
    snprintf(r->primary_addr, sizeof(r->primary_addr), "127.0.0.1:5380");
    r->index = 1040;
    r->connected = false;
    r->state = REPL_DISCONNECTED;
    r->applied_index = 1040;
    r->primary_index = 1042;
    r->entries_behind = 2;
    r->seconds_behind = 31.5;
    r->last_contact_seconds = 30;
    memset(snap, 0, sizeof(*snap));
    snap->node_id = "ns2";
    snap->role = "secondary";
    snap->version = "9.9.9";
    snap->now = 1764500100.0;
    snap->control_address = "127.0.0.1:9999";
    snap->repl = r;
    snap->members = g_members;
    snap->member_count = 3;
}

static double num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    assert_true(json_is_number(v));
    return json_number_value(v);
}

static void test_repl_json_primary(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    repl_node_status_t n[2];
    primary_snapshot(&snap, &r, n);
    json_t *o = control_repl_json(&snap);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "role")), "primary");
    assert_int_equal(json_integer_value(json_object_get(o, "index")), 1042);
    assert_true(num(o, "commit_time") == 1764500000.125);
    json_t *nodes = json_object_get(o, "nodes");
    assert_int_equal(json_array_size(nodes), 2);
    json_t *a = json_array_get(nodes, 0);
    assert_string_equal(json_string_value(json_object_get(a, "id")), "ns2");
    assert_string_equal(json_string_value(json_object_get(a, "address")), "127.0.0.1:8054");
    assert_true(json_is_true(json_object_get(a, "connected")));
    assert_string_equal(json_string_value(json_object_get(a, "state")), "streaming");
    assert_int_equal(json_integer_value(json_object_get(a, "applied_index")), 1040);
    assert_int_equal(json_integer_value(json_object_get(a, "entries_behind")), 2);
    assert_true(num(a, "seconds_behind") == 0.004);
    assert_true(num(a, "last_contact_seconds") == 0.25);
    /* Exactly the keys of the status contract. */
    assert_int_equal(json_object_size(a), 8);
    json_t *b = json_array_get(nodes, 1);
    assert_true(json_is_null(json_object_get(b, "last_contact_seconds")));
    assert_string_equal(json_string_value(json_object_get(b, "state")), "never_connected");
    assert_true(json_is_false(json_object_get(b, "connected")));
    json_decref(o);

    /* No entry yet: no commit time rather than 1970. */
    r.index = 0;
    r.commit_time = 0;
    o = control_repl_json(&snap);
    assert_true(json_is_null(json_object_get(o, "commit_time")));
    json_decref(o);
    snap.repl = NULL;
    assert_null(control_repl_json(&snap));
}

static void test_repl_json_secondary(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    secondary_snapshot(&snap, &r);
    json_t *o = control_repl_json(&snap);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "role")), "secondary");
    assert_string_equal(json_string_value(json_object_get(o, "primary")), "127.0.0.1:5380");
    assert_true(json_is_false(json_object_get(o, "connected")));
    assert_string_equal(json_string_value(json_object_get(o, "state")), "disconnected");
    assert_int_equal(json_integer_value(json_object_get(o, "applied_index")), 1040);
    assert_int_equal(json_integer_value(json_object_get(o, "primary_index")), 1042);
    assert_int_equal(json_integer_value(json_object_get(o, "entries_behind")), 2);
    assert_true(num(o, "seconds_behind") == 31.5);
    assert_true(num(o, "last_contact_seconds") == 30);
    assert_null(json_object_get(o, "nodes"));
    json_decref(o);
}

static void test_nodes_json_primary_self_first(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    repl_node_status_t n[2];
    primary_snapshot(&snap, &r, n);
    json_t *o = control_nodes_json(&snap);
    assert_non_null(o);
    json_t *rows = json_object_get(o, "nodes");
    assert_int_equal(json_array_size(rows), 3);
    json_t *me = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(me, "id")), "ns1");
    assert_string_equal(json_string_value(json_object_get(me, "role")), "primary");
    assert_string_equal(json_string_value(json_object_get(me, "address")), "127.0.0.1:8053");
    assert_true(json_is_true(json_object_get(me, "self")));
    assert_int_equal(json_integer_value(json_object_get(me, "applied_index")), 1042);
    assert_int_equal(json_integer_value(json_object_get(me, "entries_behind")), 0);
    json_t *b = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(b, "id")), "ns2");
    assert_string_equal(json_string_value(json_object_get(b, "role")), "secondary");
    assert_false(json_is_true(json_object_get(b, "self")));
    assert_int_equal(json_integer_value(json_object_get(b, "entries_behind")), 2);
    /* The keys fennecctl's table reads. */
    static const char *const keys[] = {"id",
                                       "address",
                                       "role",
                                       "connected",
                                       "state",
                                       "applied_index",
                                       "entries_behind",
                                       "seconds_behind",
                                       "last_contact_seconds"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        for (size_t k = 0; k < 3; k++)
            if (!json_object_get(json_array_get(rows, k), keys[i]))
                fail_msg("row %zu lacks %s", k, keys[i]);
    json_t *c = json_array_get(rows, 2);
    assert_string_equal(json_string_value(json_object_get(c, "id")), "n\"s<3>");
    assert_int_equal(json_integer_value(json_object_get(c, "entries_behind")), 1042);
    assert_true(json_is_null(json_object_get(c, "last_contact_seconds")));
    json_decref(o);

    /* No member list yet: the primary alone, at its listen.control. */
    snap.member_count = 0;
    r.node_count = 0;
    o = control_nodes_json(&snap);
    rows = json_object_get(o, "nodes");
    assert_int_equal(json_array_size(rows), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "address")),
                        "127.0.0.1:8053");
    json_decref(o);
}

static void test_nodes_json_secondary(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    secondary_snapshot(&snap, &r);
    json_t *o = control_nodes_json(&snap);
    json_t *rows = json_object_get(o, "nodes");
    assert_int_equal(json_array_size(rows), 3);
    json_t *me = json_array_get(rows, 0);
    assert_string_equal(json_string_value(json_object_get(me, "id")), "ns2");
    /* Its address from the member list, not its listen.control. */
    assert_string_equal(json_string_value(json_object_get(me, "address")), "127.0.0.1:8054");
    assert_string_equal(json_string_value(json_object_get(me, "state")), "disconnected");
    assert_int_equal(json_integer_value(json_object_get(me, "entries_behind")), 2);
    assert_true(num(me, "seconds_behind") == 31.5);
    /* The others from the member list: no lag it could know, no role before the primary's
     * id is known. */
    json_t *p = json_array_get(rows, 1);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "ns1");
    assert_true(json_is_null(json_object_get(p, "entries_behind")));
    assert_true(json_is_null(json_object_get(p, "role")));
    json_decref(o);
    snprintf(r.primary_id, sizeof(r.primary_id), "ns1");
    o = control_nodes_json(&snap);
    rows = json_object_get(o, "nodes");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 1), "role")),
                        "primary");
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 2), "role")),
                        "secondary");
    json_decref(o);
}

static void test_metrics_render_replication(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    repl_node_status_t n[2];
    primary_snapshot(&snap, &r, n);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    static const char *const want[] = {
        "# TYPE fennec_replication_index gauge\n",
        "fennec_replication_index 1042\n",
        "fennec_replication_applied_index 1042\n",
        "# TYPE fennec_replication_entries_behind gauge\n",
        "fennec_replication_entries_behind{node=\"ns2\"} 2\n",
        "fennec_replication_entries_behind{node=\"n\\\"s<3>\"} 1042\n",
        "fennec_replication_seconds_behind{node=\"ns2\"} 0.004000\n",
        "fennec_replication_seconds_behind{node=\"n\\\"s<3>\"} 60.000000\n",
        "fennec_replication_connected{node=\"ns2\"} 1\n",
        "fennec_replication_connected{node=\"n\\\"s<3>\"} 0\n",
        "fennec_replication_last_contact_seconds{node=\"ns2\"} 0.250000\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack \"%s\":\n%s", want[i], text);
    /* Never heard from: no last-contact sample; the primary has no row of its own. */
    assert_null(strstr(text, "fennec_replication_last_contact_seconds{node=\"n\\\""));
    assert_null(strstr(text, "{node=\"ns1\"}"));
    free(text);

    repl_status_t sr;
    secondary_snapshot(&snap, &sr);
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    static const char *const want2[] = {
        "fennec_replication_index 1042\n",
        "fennec_replication_applied_index 1040\n",
        "fennec_replication_entries_behind{node=\"ns2\"} 2\n",
        "fennec_replication_seconds_behind{node=\"ns2\"} 31.500000\n",
        "fennec_replication_connected{node=\"ns2\"} 0\n",
        "fennec_replication_last_contact_seconds{node=\"ns2\"} 30.000000\n",
    };
    for (size_t i = 0; i < sizeof(want2) / sizeof(want2[0]); i++)
        if (!strstr(text, want2[i]))
            fail_msg("secondary metrics lack \"%s\":\n%s", want2[i], text);
    free(text);

    /* Without replication state, no replication families. */
    snap.repl = NULL;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_null(strstr(text, "fennec_replication_"));
    free(text);
}

/* The journal's commit histogram: cumulative buckets, +Inf equal to the count, sum and count;
 * no journal, no journal families. */
static void test_metrics_render_journal(void **state)
{
    (void)state;
    change_journal_stats_t j = {0};
    for (unsigned b = 0; b < CHANGE_FSYNC_BUCKETS; b++)
        j.bucket_le[b] = 0.001 * (b + 1);
    j.bucket[0] = 2;
    j.bucket[1] = 5;
    for (unsigned b = 2; b < CHANGE_FSYNC_BUCKETS; b++)
        j.bucket[b] = 7;
    j.count = 7;
    j.sum = 0.0123;
    j.entries = 40;
    j.snapshot_index = 33;
    control_snapshot_t snap = {.node_id = "ns1", .role = "primary", .version = "1", .journal = &j};
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    static const char *const want[] = {
        "# TYPE fennec_journal_fsync_seconds histogram\n",
        "fennec_journal_fsync_seconds_bucket{le=\"0.001\"} 2\n",
        "fennec_journal_fsync_seconds_bucket{le=\"0.002\"} 5\n",
        "fennec_journal_fsync_seconds_bucket{le=\"0.012\"} 7\n",
        "fennec_journal_fsync_seconds_bucket{le=\"+Inf\"} 7\n",
        "fennec_journal_fsync_seconds_sum 0.012300000\n",
        "fennec_journal_fsync_seconds_count 7\n",
        "fennec_journal_entries_total 40\n",
        "fennec_journal_snapshot_index 33\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack \"%s\":\n%s", want[i], text);
    free(text);
    snap.journal = NULL;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_null(strstr(text, "fennec_journal_"));
    free(text);
}

static int wait_args(control_wait_t *w, bool write, const char *const *kv, size_t n, char *err,
                     size_t errlen)
{
    control_wait_init(w);
    for (size_t i = 0; i < n; i++) {
        int rc = control_wait_arg(w, write, kv[2 * i], kv[2 * i + 1], err, errlen);
        if (rc != 0)
            return rc;
    }
    return control_wait_check(w, err, errlen);
}

static void test_wait_query(void **state)
{
    (void)state;
    control_wait_t w;
    char err[256];
    assert_int_equal(wait_args(&w, true, NULL, 0, err, sizeof(err)), 0);
    assert_false(w.all);
    assert_int_equal(w.timeout_ms, CONTROL_WAIT_DEFAULT_MS);

    const char *ok1[] = {"wait", "all"};
    assert_int_equal(wait_args(&w, true, ok1, 1, err, sizeof(err)), 0);
    assert_true(w.all);
    assert_int_equal(w.timeout_ms, 10000);

    const char *ok2[] = {"timeout_ms", "60000", "wait", "all"};
    assert_int_equal(wait_args(&w, true, ok2, 2, err, sizeof(err)), 0);
    assert_int_equal(w.timeout_ms, 60000);
    const char *ok3[] = {"wait", "all", "timeout_ms", "1"};
    assert_int_equal(wait_args(&w, true, ok3, 2, err, sizeof(err)), 0);
    assert_int_equal(w.timeout_ms, 1);

    static const struct {
        const char *kv[4];
        size_t n;
        const char *says;
    } bad[] = {
        {{"wait", "any"}, 1, "must be \"all\""},
        {{"wait", NULL}, 1, "must be \"all\""},
        {{"wait", "ALL"}, 1, "must be \"all\""},
        {{"wait", "all", "wait", "all"}, 2, "twice"},
        {{"timeout_ms", "500"}, 1, "needs wait=all"},
        {{"wait", "all", "timeout_ms", "0"}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", "60001"}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", "-5"}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", "10s"}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", "99999999999999999999"}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", ""}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout_ms", NULL}, 2, "from 1 to 60000"},
        {{"wait", "all", "timeout", "5"}, 2, "unknown query parameter \"timeout\""},
        {{"callback", "x"}, 1, "unknown query parameter"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (wait_args(&w, true, bad[i].kv, bad[i].n, err, sizeof(err)) != FENNEC_EMALFORMED)
            fail_msg("case %zu accepted", i);
        if (!strstr(err, bad[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].says);
    }
    /* A read takes no parameter at all, not even wait=all. */
    assert_int_equal(wait_args(&w, false, ok1, 1, err, sizeof(err)), FENNEC_EMALFORMED);
    assert_non_null(strstr(err, "no query parameters"));
}

/* ---- status page and lag chart ---------------------------------------------------------- */

static char *chart(const repl_history_t *h, double now)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    control_lag_chart_write(f, h, now);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static size_t count(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void test_lag_chart(void **state)
{
    (void)state;
    enum { POINTS = 120 };
    char ids[3][REPL_ID_MAX] = {"ns1", "ns2", "<b>&\"x'"};
    double *v = calloc(3 * POINTS, sizeof(double));
    assert_non_null(v);
    for (size_t k = 0; k < POINTS; k++) {
        v[k] = 0;                            /* ns1: caught up */
        v[POINTS + k] = (double)k / 10;      /* ns2: lag growing to 11.9 s */
        v[2 * POINTS + k] = k < 60 ? 1 : -1; /* third: connected, then gone */
    }
    double now = 1764500600.0;
    repl_history_t h = {.start = now - 5.0 * (POINTS - 1),
                        .step = 5,
                        .points = POINTS,
                        .series = 3,
                        .ids = ids,
                        .seconds_behind = v};
    char *svg = chart(&h, now);
    assert_true(strncmp(svg, "<svg ", 5) == 0);
    assert_non_null(strstr(svg, "</svg>\n"));
    assert_int_equal(count(svg, "<polyline"), 3);
    assert_int_equal(count(svg, "</polyline>"), 3);
    /* Ids are escaped wherever they appear; the raw one never does. */
    assert_null(strstr(svg, "<b>"));
    assert_non_null(strstr(svg, "&lt;b&gt;&amp;&quot;x&#39;"));
    /* The scale fits the largest sample (11.9 s -> 20 s), axes are labelled. */
    assert_non_null(strstr(svg, ">20 s</text>"));
    assert_non_null(strstr(svg, ">0 s</text>"));
    assert_non_null(strstr(svg, ">-10 min</text>"));
    assert_non_null(strstr(svg, ">now</text>"));
    assert_null(strstr(svg, "<script"));
    assert_null(strstr(svg, "http://www.w3.org/1999/xlink"));
    free(svg);

    /* A hole breaks a line in two; a series with no sample draws none. */
    v[POINTS + 50] = -1;
    for (size_t k = 0; k < POINTS; k++)
        v[2 * POINTS + k] = -1;
    svg = chart(&h, now);
    assert_int_equal(count(svg, "<polyline"), 3);
    free(svg);

    /* Nothing to draw: the chart says so. */
    svg = chart(NULL, now);
    assert_int_equal(count(svg, "<polyline"), 0);
    assert_non_null(strstr(svg, "no sample yet"));
    free(svg);
    repl_history_t empty = {.step = 5};
    svg = chart(&empty, now);
    assert_non_null(strstr(svg, "no sample yet"));
    free(svg);
    free(v);
}

static void test_page_render(void **state)
{
    (void)state;
    control_snapshot_t snap;
    repl_status_t r;
    repl_node_status_t n[2];
    primary_snapshot(&snap, &r, n);
    control_zone_info_t zones[1] = {{.name = "ex<ample>.com", .serial = 7, .records = 3}};
    snap.zones = zones;
    snap.zone_count = 1;
    char ids[2][REPL_ID_MAX] = {"ns1", "ns2"};
    double v[4] = {0, 0, 0.5, 0.25};
    repl_history_t h = {.start = snap.now - 5,
                        .step = 5,
                        .points = 2,
                        .series = 2,
                        .ids = ids,
                        .seconds_behind = v};
    snap.history = &h;
    char *page = NULL;
    size_t len = 0;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_int_equal(strlen(page), len);
    assert_non_null(strstr(page, "<h2>Replication</h2>"));
    assert_non_null(strstr(page, "ex&lt;ample&gt;.com"));
    assert_null(strstr(page, "n\"s<3>"));
    assert_non_null(strstr(page, "<td>n&quot;s&lt;3&gt;</td>"));
    assert_non_null(strstr(page, "<td>never_connected</td>"));
    assert_non_null(strstr(page, "<td>streaming</td>"));
    assert_non_null(strstr(page, "<td>0.004 s</td>"));
    assert_int_equal(count(page, "<svg "), 1);
    assert_int_equal(count(page, "<polyline"), 2);
    assert_null(strstr(page, "<script"));
    /* One table row per node, this node first. */
    const char *self = strstr(page, "<tr><td>ns1</td>");
    const char *other = strstr(page, "<tr><td>ns2</td>");
    assert_non_null(self);
    assert_non_null(other);
    assert_true(self < other);
    free(page);

    /* Without replication state the page has no replication section. */
    snap.repl = NULL;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_null(strstr(page, "Replication"));
    free(page);
}

/* ---- health ------------------------------------------------------------------------------- */

/* A report as health_report_get() gives it, built by hand: web1 (http) down after timeouts,
 * web2 (https) up but overridden down, web3 (tcp, never probed yet) unknown; pool
 * we<ird>.example.com (A, failover) has every member down and serves both (serve_all) at the
 * degraded TTL, v6.example.com (AAAA) serves web3's address. */
typedef struct health_fixture {
    health_config_t cfg;
    health_check_def_t checks[3];
    health_pool_def_t pools[2];
    health_member_def_t m4[2], m6[1];
    health_check_state_t states[3];
    health_probe_counts_t counts[3];
    uint32_t ttl[2];
    size_t serving_count[2];
    uint8_t serving[2][HEALTH_MAX_MEMBERS][16];
    health_report_t r;
} health_fixture_t;

static void health_fixture(health_fixture_t *h)
{
    memset(h, 0, sizeof(*h));
    static const char *const names[3] = {"web1", "web2", "web3"};
    static const char *const targets[3] = {"192.0.2.10", "192.0.2.11", "2001:db8::1"};
    static const health_kind_t kinds[3] = {HEALTH_HTTP, HEALTH_HTTPS, HEALTH_TCP};
    for (int i = 0; i < 3; i++) {
        snprintf(h->checks[i].name, sizeof(h->checks[i].name), "%s", names[i]);
        snprintf(h->checks[i].target, sizeof(h->checks[i].target), "%s", targets[i]);
        h->checks[i].kind = kinds[i];
        h->states[i].last_latency_ms = -1;
        h->states[i].since = 1700000000.0 + i;
    }
    h->states[0] = (health_check_state_t){.status = HEALTH_DOWN,
                                          .since = 1700000040.0,
                                          .last_result = "timeout",
                                          .last_latency_ms = 800.5,
                                          .transitions = 3,
                                          .failures = 4};
    h->counts[0] =
        (health_probe_counts_t){.ok = 10, .fail = 2, .timeout = 3, .to_up = 1, .to_down = 2};
    h->states[1] = (health_check_state_t){.status = HEALTH_UP,
                                          .override = HEALTH_OVERRIDE_DOWN,
                                          .since = 1700000050.0,
                                          .last_ok = true,
                                          .last_result = "200",
                                          .last_latency_ms = 12.25,
                                          .transitions = 1};
    h->counts[1] = (health_probe_counts_t){.ok = 7, .to_up = 1};

    inet_pton(AF_INET, "192.0.2.10", h->m4[0].addr);
    inet_pton(AF_INET, "192.0.2.11", h->m4[1].addr);
    h->m4[0].check = 0;
    h->m4[1].check = 1;
    inet_pton(AF_INET6, "2001:db8::1", h->m6[0].addr);
    h->m6[0].check = 2;
    snprintf(h->pools[0].name, sizeof(h->pools[0].name), "we<ird>.example.com");
    h->pools[0].type = 1;
    h->pools[0].members = h->m4;
    h->pools[0].member_count = 2;
    snprintf(h->pools[1].name, sizeof(h->pools[1].name), "v6.example.com");
    h->pools[1].type = 28;
    h->pools[1].members = h->m6;
    h->pools[1].member_count = 1;
    h->ttl[0] = 10;
    h->ttl[1] = 300;
    h->serving_count[0] = 2;
    memcpy(h->serving[0][0], h->m4[0].addr, 4);
    memcpy(h->serving[0][1], h->m4[1].addr, 4);
    h->serving_count[1] = 1;
    memcpy(h->serving[1][0], h->m6[0].addr, 16);

    h->cfg.checks = h->checks;
    h->cfg.check_count = 3;
    h->cfg.pools = h->pools;
    h->cfg.pool_count = 2;
    h->r = (health_report_t){.config = &h->cfg,
                             .states = h->states,
                             .counts = h->counts,
                             .pool_ttl = h->ttl,
                             .pool_serving_count = h->serving_count,
                             .pool_serving = h->serving};
}

static void test_health_json(void **state)
{
    (void)state;
    health_fixture_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    health_fixture(h);
    json_t *j = control_health_json(&h->r);
    assert_non_null(j);
    json_t *checks = json_object_get(j, "checks");
    assert_int_equal(json_array_size(checks), 3);
    json_t *c = json_array_get(checks, 0);
    assert_int_equal(json_object_size(c), 9); /* exactly DESIGN's keys */
    assert_string_equal(json_string_value(json_object_get(c, "name")), "web1");
    assert_string_equal(json_string_value(json_object_get(c, "type")), "http");
    assert_string_equal(json_string_value(json_object_get(c, "target")), "192.0.2.10");
    assert_string_equal(json_string_value(json_object_get(c, "state")), "down");
    assert_true(json_real_value(json_object_get(c, "since")) == 1700000040.0);
    assert_string_equal(json_string_value(json_object_get(c, "last_result")), "timeout");
    assert_true(json_real_value(json_object_get(c, "last_latency_ms")) == 800.5);
    assert_true(json_is_null(json_object_get(c, "override")));
    assert_int_equal(json_integer_value(json_object_get(c, "transitions")), 3);
    /* An override is shown apart: the state stays the machine's. */
    c = json_array_get(checks, 1);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "https");
    assert_string_equal(json_string_value(json_object_get(c, "state")), "up");
    assert_string_equal(json_string_value(json_object_get(c, "override")), "down");
    /* Never probed: unknown, and no result or latency rather than made-up ones. */
    c = json_array_get(checks, 2);
    assert_string_equal(json_string_value(json_object_get(c, "type")), "tcp");
    assert_string_equal(json_string_value(json_object_get(c, "state")), "unknown");
    assert_true(json_is_null(json_object_get(c, "last_result")));
    assert_true(json_is_null(json_object_get(c, "last_latency_ms")));

    json_t *pools = json_object_get(j, "pools");
    assert_int_equal(json_array_size(pools), 2);
    json_t *p = json_array_get(pools, 0);
    assert_int_equal(json_object_size(p), 5);
    assert_string_equal(json_string_value(json_object_get(p, "name")), "we<ird>.example.com");
    assert_string_equal(json_string_value(json_object_get(p, "type")), "A");
    assert_int_equal(json_integer_value(json_object_get(p, "ttl_now")), 10);
    json_t *serving = json_object_get(p, "serving");
    assert_int_equal(json_array_size(serving), 2);
    assert_string_equal(json_string_value(json_array_get(serving, 0)), "192.0.2.10");
    assert_string_equal(json_string_value(json_array_get(serving, 1)), "192.0.2.11");
    json_t *m = json_array_get(json_object_get(p, "members"), 1);
    assert_string_equal(json_string_value(json_object_get(m, "address")), "192.0.2.11");
    assert_string_equal(json_string_value(json_object_get(m, "check")), "web2");
    assert_string_equal(json_string_value(json_object_get(m, "state")), "down"); /* override */
    p = json_array_get(pools, 1);
    assert_string_equal(json_string_value(json_object_get(p, "type")), "AAAA");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "serving"), 0)),
                        "2001:db8::1");
    m = json_array_get(json_object_get(p, "members"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "state")), "unknown");
    json_decref(j);

    /* No health section (or no report at all): empty lists, not an error. */
    health_report_t none = {0};
    j = control_health_json(&none);
    assert_int_equal(json_array_size(json_object_get(j, "checks")), 0);
    assert_int_equal(json_array_size(json_object_get(j, "pools")), 0);
    json_decref(j);
    j = control_health_json(NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "checks")), 0);
    json_decref(j);
    free(h);
}

static void test_metrics_render_health(void **state)
{
    (void)state;
    health_fixture_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    health_fixture(h);
    control_snapshot_t snap = {
        .node_id = "ns1", .role = "primary", .version = "1", .health = &h->r};
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    static const char *const want[] = {
        "# TYPE fennec_health_check_up gauge\n",
        "fennec_health_check_up{check=\"web1\"} 0\n",
        "fennec_health_check_up{check=\"web2\"} 0\n", /* up, overridden down */
        "fennec_health_check_up{check=\"web3\"} 1\n", /* unknown is served */
        "# TYPE fennec_health_check_latency_seconds gauge\n",
        "fennec_health_check_latency_seconds{check=\"web1\"} 0.800500\n",
        "fennec_health_check_latency_seconds{check=\"web2\"} 0.012250\n",
        "# TYPE fennec_health_transitions_total counter\n",
        "fennec_health_transitions_total{check=\"web1\",to=\"up\"} 1\n",
        "fennec_health_transitions_total{check=\"web1\",to=\"down\"} 2\n",
        "fennec_health_transitions_total{check=\"web3\",to=\"down\"} 0\n",
        "# TYPE fennec_health_probes_total counter\n",
        "fennec_health_probes_total{check=\"web1\",result=\"ok\"} 10\n",
        "fennec_health_probes_total{check=\"web1\",result=\"fail\"} 2\n",
        "fennec_health_probes_total{check=\"web1\",result=\"timeout\"} 3\n",
        "fennec_health_probes_total{check=\"web2\",result=\"ok\"} 7\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (!strstr(text, want[i]))
            fail_msg("metrics lack \"%s\":\n%s", want[i], text);
    /* Never probed: no latency sample. */
    assert_null(strstr(text, "fennec_health_check_latency_seconds{check=\"web3\"}"));
    free(text);

    /* Overridden up, a down check counts as up. */
    h->states[0].override = HEALTH_OVERRIDE_UP;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_non_null(strstr(text, "fennec_health_check_up{check=\"web1\"} 1\n"));
    free(text);

    /* A node without checks has the families and no sample; without a report, none. */
    health_report_t none = {0};
    snap.health = &none;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_non_null(strstr(text, "# TYPE fennec_health_check_up gauge\n"));
    assert_null(strstr(text, "fennec_health_check_up{"));
    free(text);
    snap.health = NULL;
    assert_int_equal(control_metrics_render(&snap, &text, &len), 0);
    assert_null(strstr(text, "fennec_health_"));
    free(text);
    free(h);
}

static void test_page_render_health(void **state)
{
    (void)state;
    health_fixture_t *h = malloc(sizeof(*h));
    assert_non_null(h);
    health_fixture(h);
    control_snapshot_t snap = {.node_id = "ns1",
                               .role = "primary",
                               .version = "1",
                               .start_time = 1700000000.0,
                               .now = 1700000100.0,
                               .health = &h->r};
    char *page = NULL;
    size_t len = 0;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_non_null(strstr(page, "<h2>Health checks</h2>"));
    assert_non_null(strstr(page, "<table id=\"checks\">"));
    /* One row per check: name, type, target, state (with its class), override, since, last
     * result, latency, transitions. */
    assert_non_null(strstr(page, "<tr><td>web1</td><td>http</td><td>192.0.2.10</td>"
                                 "<td class=\"state-down\">down</td><td>-</td>"
                                 "<td>1 min 0 s ago</td><td>timeout</td><td>800.5 ms</td>"
                                 "<td>3</td></tr>"));
    assert_non_null(strstr(page, "<tr><td>web2</td><td>https</td><td>192.0.2.11</td>"
                                 "<td class=\"state-up\">up</td><td>down</td>"));
    assert_non_null(strstr(page, "<td class=\"state-unknown\">unknown</td><td>-</td>"
                                 "<td>1 min 38 s ago</td><td>-</td><td>-</td><td>0</td>"));
    assert_non_null(strstr(page, "<h2>Pools</h2>"));
    assert_non_null(strstr(page, "<tr><td>we&lt;ird&gt;.example.com</td><td>A</td><td>10</td>"
                                 "<td>192.0.2.10 192.0.2.11</td><td>192.0.2.10 (web1: down), "
                                 "192.0.2.11 (web2: down)</td></tr>"));
    assert_non_null(strstr(page, "<td>2001:db8::1 (web3: unknown)</td>"));
    assert_null(strstr(page, "we<ird>"));
    assert_null(strstr(page, "<script"));
    free(page);

    /* A pool that serves nothing says so. */
    h->serving_count[0] = 0;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_non_null(strstr(page, "<td>(nothing: NODATA)</td>"));
    free(page);

    /* No checks: the section says so; no report: no section. */
    health_report_t none = {0};
    snap.health = &none;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_non_null(strstr(page, "no health checks configured"));
    assert_null(strstr(page, "<table id=\"checks\">"));
    free(page);
    snap.health = NULL;
    assert_int_equal(control_page_render(&snap, &page, &len), 0);
    assert_null(strstr(page, "Health checks"));
    free(page);
    free(h);
}

static void test_rcode_names(void **state)
{
    (void)state;
    assert_string_equal(control_rcode_name(0), "NOERROR");
    assert_string_equal(control_rcode_name(5), "REFUSED");
    assert_null(control_rcode_name(12));
    assert_null(control_rcode_name(QUERY_RCODE_MAX));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_vectors),
        cmocka_unit_test(test_key_read),
        cmocka_unit_test(test_bearer_parse),
        cmocka_unit_test(test_bearer_check),
        cmocka_unit_test_setup_teardown(test_record_valid, setup_req, teardown_req),
        cmocka_unit_test_setup_teardown(test_record_missing, setup_req, teardown_req),
        cmocka_unit_test_setup_teardown(test_record_bad_types, setup_req, teardown_req),
        cmocka_unit_test_setup_teardown(test_record_ttl_capped, setup_req, teardown_req),
        cmocka_unit_test_setup_teardown(test_record_hostile, setup_req, teardown_req),
        cmocka_unit_test(test_batch_valid),
        cmocka_unit_test(test_batch_refused),
        cmocka_unit_test(test_prom_escape),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_rcode_names),
        cmocka_unit_test(test_repl_json_primary),
        cmocka_unit_test(test_repl_json_secondary),
        cmocka_unit_test(test_nodes_json_primary_self_first),
        cmocka_unit_test(test_nodes_json_secondary),
        cmocka_unit_test(test_metrics_render_replication),
        cmocka_unit_test(test_metrics_render_journal),
        cmocka_unit_test(test_wait_query),
        cmocka_unit_test(test_lag_chart),
        cmocka_unit_test(test_page_render),
        cmocka_unit_test(test_health_json),
        cmocka_unit_test(test_metrics_render_health),
        cmocka_unit_test(test_page_render_health),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
