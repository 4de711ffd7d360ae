/* Unit tests: CRC-32C (crc32c.c), hardware and software paths. */
#include <stdint.h>
#include <string.h>

#include "base/crc32c.h"
#include "suites.h"

/* An independent reference: one bit at a time, straight from the definition. */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n-- > 0) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (crc >> 1) ^ 0x82f63b78u : crc >> 1;
    }
    return ~crc;
}

static uint64_t rng_state;

static uint8_t rng_byte(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint8_t)(rng_state >> 56);
}

/* Leave the choice as it was before each test. */
static int saved_force;

static void setup_crc(void)
{
    saved_force = crc32c_force_sw(0);
    crc32c_force_sw(saved_force);
}

static void teardown_crc(void)
{
    crc32c_force_sw(saved_force);
}

/* RFC 3720, appendix B.4 "CRC Examples", and the common check value. */
static void check_vectors(void)
{
    uint8_t buf[32];

    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(crc32c(buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    ck_assert_uint_eq(crc32c(buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    ck_assert_uint_eq(crc32c(buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(crc32c(buf, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(crc32c("123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(crc32c("", 0), 0);
    ck_assert_uint_eq(crc32c("a", 1), 0xC1D04330u);
}

START_TEST(test_crc32c_vectors_sw)
{
    crc32c_force_sw(1);
    ck_assert_int_eq(crc32c_hw_available(), 0);
    check_vectors();
}
END_TEST

START_TEST(test_crc32c_vectors_default)
{
    crc32c_force_sw(0);
    check_vectors(); /* the hardware path where the CPU has SSE4.2 */
}
END_TEST

START_TEST(test_crc32c_force_sw)
{
    int hw;

    crc32c_force_sw(0);
    hw = crc32c_hw_available();
#if defined(__x86_64__)
    ck_assert_int_eq(hw, __builtin_cpu_supports("sse4.2") ? 1 : 0);
#endif
    ck_assert_int_eq(crc32c_force_sw(1), 0); /* returns the old setting */
    ck_assert_int_eq(crc32c_hw_available(), 0);
    ck_assert_int_eq(crc32c_force_sw(1), 1);
    ck_assert_int_eq(crc32c_force_sw(0), 1);
    ck_assert_int_eq(crc32c_hw_available(), hw);
}
END_TEST

/* Hardware, slicing-by-8 and bitwise agree for every length and alignment. */
START_TEST(test_crc32c_hw_equals_sw)
{
    static uint8_t buf[4096 + 64];

    rng_state = 42;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = rng_byte();
    for (size_t align = 0; align < 16; align++) {
        for (size_t len = 0; len <= 300; len++) {
            const uint8_t *p = buf + align;
            uint32_t seed = len % 3 == 0 ? 0 : 0x12345678u * (uint32_t)len;
            uint32_t ref = crc_bitwise(seed, p, len);

            crc32c_force_sw(1);
            ck_assert_uint_eq(crc32c_extend(seed, p, len), ref);
            crc32c_force_sw(0);
            ck_assert_uint_eq(crc32c_extend(seed, p, len), ref);
        }
    }
    /* Longer buffers at random lengths and offsets. */
    for (int i = 0; i < 200; i++) {
        size_t off = rng_byte() % 64;
        size_t len = ((size_t)rng_byte() << 4 | (rng_byte() & 15)) % 4097;
        uint32_t hw, sw;

        crc32c_force_sw(0);
        hw = crc32c(buf + off, len);
        crc32c_force_sw(1);
        sw = crc32c(buf + off, len);
        ck_assert_uint_eq(hw, sw);
        ck_assert_uint_eq(sw, crc_bitwise(0, buf + off, len));
    }
}
END_TEST

/* crc32c_extend(crc32c(a), b) == crc32c(a || b), at every split point. */
START_TEST(test_crc32c_extend_concat)
{
    uint8_t buf[257];

    rng_state = 7;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = rng_byte();
    for (int sw = 0; sw <= 1; sw++) {
        crc32c_force_sw(sw);
        uint32_t whole = crc32c(buf, sizeof buf);
        for (size_t cut = 0; cut <= sizeof buf; cut++) {
            uint32_t a = crc32c(buf, cut);
            ck_assert_uint_eq(crc32c_extend(a, buf + cut, sizeof buf - cut), whole);
        }
        /* Three pieces, and byte by byte. */
        uint32_t c = crc32c_extend(crc32c(buf, 10), buf + 10, 100);
        ck_assert_uint_eq(crc32c_extend(c, buf + 110, sizeof buf - 110), whole);
        c = 0;
        for (size_t i = 0; i < sizeof buf; i++)
            c = crc32c_extend(c, buf + i, 1);
        ck_assert_uint_eq(c, whole);
        /* An empty extension changes nothing. */
        ck_assert_uint_eq(crc32c_extend(whole, buf, 0), whole);
        ck_assert_uint_eq(crc32c_extend(whole, NULL, 0), whole);
    }
}
END_TEST

/* A flipped bit anywhere changes the CRC (CRCs detect all 1-bit errors). */
START_TEST(test_crc32c_detects_bit_flips)
{
    uint8_t buf[64];
    uint32_t good;

    rng_state = 99;
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = rng_byte();
    good = crc32c(buf, sizeof buf);
    for (size_t bit = 0; bit < sizeof buf * 8; bit++) {
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_uint_ne(crc32c(buf, sizeof buf), good);
        buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    ck_assert_uint_eq(crc32c(buf, sizeof buf), good);
}
END_TEST

Suite *crc32c_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("crc32c");

    tcase_add_checked_fixture(tc, setup_crc, teardown_crc);
    tcase_add_test(tc, test_crc32c_vectors_sw);
    tcase_add_test(tc, test_crc32c_vectors_default);
    tcase_add_test(tc, test_crc32c_force_sw);
    tcase_add_test(tc, test_crc32c_hw_equals_sw);
    tcase_add_test(tc, test_crc32c_extend_concat);
    tcase_add_test(tc, test_crc32c_detects_bit_flips);
    suite_add_tcase(s, tc);
    return s;
}
