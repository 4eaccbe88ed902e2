/* Unit tests of the control plane's pure parts: token derivation, Bearer parsing and
 * comparison, record request validation and the Prometheus text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "fennec/common.h"
#include "fennec/control.h"

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
    assert_refused("{\"action\":\"add\",\"name\":\"w\",\"ttl\":2147483648,\"type\":\"A\","
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
        cmocka_unit_test_setup_teardown(test_record_hostile, setup_req, teardown_req),
        cmocka_unit_test(test_batch_valid),
        cmocka_unit_test(test_batch_refused),
        cmocka_unit_test(test_prom_escape),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_rcode_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
