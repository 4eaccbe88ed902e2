/*
 * Unit tests for the stream's proofs (replication/stream.c): a proof is HMAC-SHA256 of the
 * role, both nonces and the sender's id under the cluster key, so it changes with each of
 * them: a proof made for one connection (one pair of nonces), one direction or one node id
 * is worth nothing for another. The streams themselves run between real processes in
 * tests/integration_repl.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "fennec/stream.h"

static const uint8_t g_key[] = "0123456789abcdef0123456789abcdef";

static void proof(const char *role, uint8_t a, uint8_t b, const char *id, uint8_t *mac)
{
    uint8_t na[32], nb[32];
    memset(na, a, sizeof(na));
    memset(nb, b, sizeof(nb));
    assert_int_equal(stream_proof(g_key, sizeof(g_key) - 1, role, na, nb, id, mac), 0);
}

static void test_proof_is_hmac_of_its_inputs(void **state)
{
    (void)state;
    uint8_t mac[32], want[32];
    proof("fennec-secondary-v1", 1, 2, "ns2", mac);
    /* computed independently: role || their nonce || my nonce || id */
    uint8_t msg[19 + 64 + 3];
    memcpy(msg, "fennec-secondary-v1", 19);
    memset(msg + 19, 1, 32);
    memset(msg + 51, 2, 32);
    memcpy(msg + 83, "ns2", 3);
    unsigned len = 0;
    assert_non_null(HMAC(EVP_sha256(), g_key, sizeof(g_key) - 1, msg, sizeof(msg), want, &len));
    assert_int_equal(len, 32);
    assert_memory_equal(mac, want, 32);
}

static void test_proof_changes_with_each_input(void **state)
{
    (void)state;
    uint8_t base[32], other[32];
    proof("fennec-secondary-v1", 1, 2, "ns2", base);
    proof("fennec-primary-v1", 1, 2, "ns2", other); /* the other direction */
    assert_memory_not_equal(base, other, 32);
    proof("fennec-secondary-v1", 3, 2, "ns2", other); /* a new challenge: a replay fails */
    assert_memory_not_equal(base, other, 32);
    proof("fennec-secondary-v1", 1, 3, "ns2", other);
    assert_memory_not_equal(base, other, 32);
    proof("fennec-secondary-v1", 2, 1, "ns2", other); /* nonces swapped */
    assert_memory_not_equal(base, other, 32);
    proof("fennec-secondary-v1", 1, 2, "ns3", other); /* another node's id */
    assert_memory_not_equal(base, other, 32);
    uint8_t na[32] = {0}, nb[32] = {0};
    assert_int_equal(
        stream_proof((const uint8_t *)"other key", 9, "fennec-secondary-v1", na, nb, "ns2", other),
        0);
    proof("fennec-secondary-v1", 0, 0, "ns2", base);
    assert_memory_not_equal(base, other, 32);
}

static void test_proof_refuses_bad_arguments(void **state)
{
    (void)state;
    uint8_t n[32] = {0}, mac[32];
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_true(stream_proof(g_key, sizeof(g_key) - 1, "fennec-secondary-v1", n, n, long_id, mac) <
                0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proof_is_hmac_of_its_inputs),
        cmocka_unit_test(test_proof_changes_with_each_input),
        cmocka_unit_test(test_proof_refuses_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
