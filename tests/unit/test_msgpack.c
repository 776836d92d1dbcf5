/*  gl_msgpack: round trips of every type and width, and malformed frames rejected with a reason. */
/* ctest: timeout=120 */
#include "gl/gl_msgpack.h"
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

//  A msgpack-c packer writing into an sbuffer, for frames built by hand.
typedef struct {
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
} frame_t;

static void
s_frame_init (frame_t *f)
{
    msgpack_sbuffer_init (&f->sbuf);
    msgpack_packer_init (&f->pk, &f->sbuf, msgpack_sbuffer_write);
}

//  Decode must fail and name want in its reason.
static void
s_reject (const void *buf, size_t len, const gl_mp_limits_t *limits, const char *want)
{
    char err[256] = "";
    json_t *v = gl_mp_decode (buf, len, limits, err, sizeof err);
    if (v || !strstr (err, want))
        fail_msg ("expected a reject naming '%s', got %s '%s'", want, v ? "a value" : "", err);
}

#define REJECT(want, ...) do { \
        const uint8_t bytes_[] = {__VA_ARGS__}; \
        s_reject (bytes_, sizeof bytes_, NULL, want); \
    } while (0)

//  Encode value, check the encoded size and first byte, decode, and compare.
static void
s_round_trip (json_t *value, size_t want_len, int want_first)
{
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (value, &buf, &len), 0);
    if (want_len)
        assert_int_equal (len, want_len);
    if (want_first >= 0)
        assert_int_equal ((uint8_t) buf[0], want_first);
    char err[256];
    json_t *back = gl_mp_decode (buf, len, NULL, err, sizeof err);
    if (!back)
        fail_msg ("decode of own encoding failed: %s", err);
    assert_true (json_equal (value, back));
    json_decref (back);
    free (buf);
    json_decref (value);
}

static void
test_nil_bool (void **state)
{
    s_round_trip (json_null (), 1, 0xc0);
    s_round_trip (json_true (), 1, 0xc3);
    s_round_trip (json_false (), 1, 0xc2);
}

static void
test_integers_every_width (void **state)
{
    struct {
        int64_t v;
        size_t len;
        int first;
    } cases[] = {
        {0, 1, 0x00}, {1, 1, 0x01}, {127, 1, 0x7f},
        {128, 2, 0xcc}, {255, 2, 0xcc},
        {256, 3, 0xcd}, {65535, 3, 0xcd},
        {65536, 5, 0xce}, {4294967295LL, 5, 0xce},
        {4294967296LL, 9, 0xcf}, {INT64_MAX, 9, 0xcf},
        {-1, 1, 0xff}, {-32, 1, 0xe0},
        {-33, 2, 0xd0}, {-128, 2, 0xd0},
        {-129, 3, 0xd1}, {-32768, 3, 0xd1},
        {-32769, 5, 0xd2}, {INT32_MIN, 5, 0xd2},
        {(int64_t) INT32_MIN - 1, 9, 0xd3}, {INT64_MIN, 9, 0xd3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_round_trip (json_integer (cases[i].v), cases[i].len, cases[i].first);
        //  And the value itself, not only equality.
        char *buf;
        size_t len;
        json_t *v = json_integer (cases[i].v);
        assert_int_equal (gl_mp_encode (v, &buf, &len), 0);
        json_t *back = gl_mp_decode (buf, len, NULL, NULL, 0);
        assert_true (json_is_integer (back));
        assert_true (json_integer_value (back) == cases[i].v);
        json_decref (back);
        json_decref (v);
        free (buf);
    }
}

//  Other encoders may use a wider form than needed; every form decodes.
static void
test_integers_wide_forms (void **state)
{
    const uint8_t u64_one[] = {0xcf, 0, 0, 0, 0, 0, 0, 0, 1};
    const uint8_t i64_minus[] = {0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
    const uint8_t i8_pos[] = {0xd0, 0x05};
    const uint8_t u16[] = {0xcd, 0x12, 0x34};
    const uint8_t u32[] = {0xce, 0x80, 0, 0, 0};
    const uint8_t i16[] = {0xd1, 0x80, 0x00};
    const uint8_t i32[] = {0xd2, 0x80, 0, 0, 0};
    struct {
        const uint8_t *b;
        size_t n;
        int64_t v;
    } cases[] = {
        {u64_one, sizeof u64_one, 1}, {i64_minus, sizeof i64_minus, -2}, {i8_pos, 2, 5},
        {u16, 3, 0x1234}, {u32, 5, 0x80000000LL}, {i16, 3, -32768}, {i32, 5, INT32_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *v = gl_mp_decode (cases[i].b, cases[i].n, NULL, NULL, 0);
        assert_true (json_is_integer (v));
        assert_true (json_integer_value (v) == cases[i].v);
        json_decref (v);
    }
}

static void
test_reals (void **state)
{
    double values[] = {0.0, -0.0, 0.5, -1.25, 1e300, -1e-300, 4.9e-324, DBL_MAX, 3.141592653589793};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        s_round_trip (json_real (values[i]), 9, 0xcb);

    //  float32 from another producer decodes to the same double.
    frame_t f;
    s_frame_init (&f);
    msgpack_pack_float (&f.pk, 1.5f);
    msgpack_pack_float (&f.pk, -0.1f);
    assert_int_equal ((uint8_t) f.sbuf.data[0], 0xca);
    size_t pos = 0, elements = 0;
    json_t *v = gl_mp_decode_at (f.sbuf.data, f.sbuf.size, &pos, 0, &elements, NULL, NULL, 0);
    assert_true (json_is_real (v));
    assert_true (json_real_value (v) == 1.5);
    json_decref (v);
    v = gl_mp_decode_at (f.sbuf.data, f.sbuf.size, &pos, 0, &elements, NULL, NULL, 0);
    assert_true (json_real_value (v) == (double) -0.1f);
    assert_int_equal (pos, f.sbuf.size);
    assert_int_equal (elements, 2);
    json_decref (v);
    msgpack_sbuffer_destroy (&f.sbuf);
}

static void
test_non_finite_rejected (void **state)
{
    REJECT ("NaN or infinite", 0xca, 0x7f, 0xc0, 0x00, 0x00);                    //  float32 NaN
    REJECT ("NaN or infinite", 0xca, 0xff, 0x80, 0x00, 0x00);                    //  float32 -Inf
    REJECT ("NaN or infinite", 0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0);              //  float64 +Inf
    REJECT ("NaN or infinite", 0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1);              //  float64 NaN
    REJECT ("offset 1", 0x91, 0xcb, 0xff, 0xf8, 0, 0, 0, 0, 0, 0);
}

static void
test_strings_every_length_class (void **state)
{
    struct {
        size_t n;
        size_t head;
        int first;
    } cases[] = {
        {0, 1, 0xa0}, {1, 1, 0xa1}, {31, 1, 0xbf}, {32, 2, 0xd9}, {255, 2, 0xd9},
        {256, 3, 0xda}, {65535, 3, 0xda}, {65536, 5, 0xdb}, {200000, 5, 0xdb},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = malloc (cases[i].n + 1);
        for (size_t k = 0; k < cases[i].n; k++)
            s[k] = (char) ('a' + k % 26);
        s[cases[i].n] = 0;
        s_round_trip (json_stringn (s, cases[i].n), cases[i].head + cases[i].n, cases[i].first);
        free (s);
    }
}

static void
test_unicode (void **state)
{
    const char *texts[] = {
        "مرحبا، أحتاج إلى مساعدة بخصوص الإقامة",        //  Arabic
        "سلام، به کمک نیاز دارم",                        //  Persian
        "ሰላም",                                           //  Ge'ez (Tigrinya)
        "Привет", "é", "€", "𝄞 and 😀",                   //  2, 3 and 4 byte forms
        "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",               //  U+FFFF, U+10FFFF
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        json_t *s = json_string (texts[i]);
        assert_non_null (s);
        s_round_trip (s, 0, -1);
    }
    //  Non-ASCII keys as well.
    json_t *o = json_object ();
    json_object_set_new (o, "الاسم", json_string ("قيمة"));
    json_object_set_new (o, "ключ", json_integer (7));
    s_round_trip (o, 0, 0x82);
}

//  Every way a string can be bad: NUL, and each kind of invalid UTF-8, in values and keys.
static void
test_bad_strings_rejected (void **state)
{
    REJECT ("NUL byte at offset 2", 0xa3, 'a', 0, 'b');
    REJECT ("invalid UTF-8 at offset 1", 0xa2, 0xc0, 0x80);         //  overlong NUL
    REJECT ("invalid UTF-8 at offset 1", 0xa3, 0xe0, 0x80, 0x80);   //  overlong
    REJECT ("invalid UTF-8 at offset 1", 0xa3, 0xed, 0xa0, 0x80);   //  surrogate
    REJECT ("invalid UTF-8 at offset 1", 0xa4, 0xf4, 0x90, 0x80, 0x80);   //  above U+10FFFF
    REJECT ("invalid UTF-8 at offset 1", 0xa1, 0xf5);
    REJECT ("invalid UTF-8 at offset 1", 0xa1, 0x80);               //  lone continuation
    REJECT ("invalid UTF-8 at offset 2", 0xa2, 'x', 0xc3);          //  cut short
    REJECT ("invalid UTF-8 at offset 11", 0xab, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i',
            'j', 0xff);
    REJECT ("NUL byte at offset 3", 0x81, 0xa2, 'k', 0, 0x01);      //  in a key
    REJECT ("invalid UTF-8", 0x81, 0xa1, 0xfe, 0x01);
}

//  jansson and our validator must agree exactly: we skip jansson's own check.
static void
test_utf8_agrees_with_jansson (void **state)
{
    uint32_t x = 2463534242u;
    uint8_t frame[1 + 12];
    for (int i = 0; i < 200000; i++) {
        size_t n = 1 + i % 12;
        frame[0] = (uint8_t) (0xa0 | n);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            //  Mostly bytes that matter to UTF-8: leads, continuations, ASCII.
            uint8_t pick[] = {0x80, 0xbf, 0x8f, 0x90, 0x9f, 0xa0, 0xc2, 0xdf, 0xe0, 0xed,
                              0xef, 0xf0, 0xf4, 0xf5, 'a', 0x00};
            frame[1 + k] = (x >> 8) % 3 ? pick[x % 16] : (uint8_t) (x >> 16);
        }
        json_t *ours = gl_mp_decode (frame, 1 + n, NULL, NULL, 0);
        json_t *theirs = memchr (frame + 1, 0, n) ? NULL : json_stringn ((char *) frame + 1, n);
        if (!ours != !theirs)
            fail_msg ("validators disagree on case %d", i);
        json_decref (ours);
        json_decref (theirs);
    }
}

//  A str whose header is wider than needed still decodes.
static void
test_wide_string_headers (void **state)
{
    const uint8_t s8[] = {0xd9, 2, 'h', 'i'};
    const uint8_t s16[] = {0xda, 0, 2, 'h', 'i'};
    const uint8_t s32[] = {0xdb, 0, 0, 0, 2, 'h', 'i'};
    const uint8_t *frames[] = {s8, s16, s32};
    size_t lens[] = {sizeof s8, sizeof s16, sizeof s32};
    for (int i = 0; i < 3; i++) {
        json_t *v = gl_mp_decode (frames[i], lens[i], NULL, NULL, 0);
        assert_string_equal (json_string_value (v), "hi");
        json_decref (v);
    }
}

static void
test_containers (void **state)
{
    s_round_trip (json_array (), 1, 0x90);
    s_round_trip (json_object (), 1, 0x80);
    json_t *a = json_array ();
    for (int i = 0; i < 15; i++)
        json_array_append_new (a, json_integer (i));
    s_round_trip (a, 16, 0x9f);
    a = json_array ();
    for (int i = 0; i < 16; i++)
        json_array_append_new (a, json_null ());
    s_round_trip (a, 3 + 16, 0xdc);
    //  array32 needs more members than the default element limit allows.
    a = json_array ();
    for (int i = 0; i < 65536; i++)
        json_array_append_new (a, json_true ());
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (a, &buf, &len), 0);
    assert_int_equal (len, 5 + 65536);
    assert_int_equal ((uint8_t) buf[0], 0xdd);
    s_reject (buf, len, NULL, "more than 65536 values");
    gl_mp_limits_t roomy = gl_mp_limits_default ();
    roomy.max_elements = 65537;
    json_t *back = gl_mp_decode (buf, len, &roomy, NULL, 0);
    assert_true (json_equal (a, back));
    json_decref (back);
    json_decref (a);
    free (buf);
    json_t *o = json_object ();
    for (int i = 0; i < 16; i++) {
        char key[8];
        snprintf (key, sizeof key, "k%d", i);
        json_object_set_new (o, key, json_integer (i));
    }
    s_round_trip (o, 0, 0xde);

    json_t *nested = json_pack ("{s:[i,s,[],{},[[n]]],s:{s:{s:[b,f]}},s:s}", "list", 1, "x",
                                "map", "in", "deeper", 1, 2.5, "s", "مرحبا");
    assert_non_null (nested);
    s_round_trip (nested, 0, 0x83);
}

//  Keys keep their order on the wire, so a producer's frame is stable.
static void
test_key_order_kept (void **state)
{
    json_t *o = json_object ();
    json_object_set_new (o, "zeta", json_integer (1));
    json_object_set_new (o, "alpha", json_integer (2));
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (o, &buf, &len), 0);
    const uint8_t want[] = {0x82, 0xa4, 'z', 'e', 't', 'a', 0x01, 0xa5, 'a', 'l', 'p', 'h', 'a', 0x02};
    assert_int_equal (len, sizeof want);
    assert_memory_equal (buf, want, sizeof want);
    free (buf);
    json_decref (o);
}

static void
test_types_rejected (void **state)
{
    REJECT ("reserved type byte 0xc1 at offset 0", 0xc1);
    REJECT ("reserved type byte 0xc1 at offset 2", 0x92, 0x01, 0xc1);
    REJECT ("bin at offset 0", 0xc4, 0x01, 0x00);
    REJECT ("bin at offset 1", 0x91, 0xc5, 0x00, 0x01, 0x00);
    REJECT ("bin at offset 0", 0xc6, 0, 0, 0, 1, 0);
    REJECT ("ext at offset 0", 0xd4, 0x01, 0x00);
    REJECT ("ext at offset 0", 0xc7, 0x01, 0x05, 0x00);
    REJECT ("ext at offset 0", 0xd8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    REJECT ("uint64 at offset 0 exceeds INT64_MAX", 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0);
    REJECT ("uint64 at offset 0 exceeds INT64_MAX", 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
    REJECT ("map key at offset 1 is not a string", 0x81, 0x01, 0x02);
    REJECT ("map key at offset 1 is not a string", 0x81, 0xc0, 0x02);
    REJECT ("map key at offset 1 is not a string", 0x81, 0x90, 0x02);
    REJECT ("duplicate map key at offset 4", 0x82, 0xa1, 'a', 0x01, 0xa1, 'a', 0x02);
    //  The same key spelled with a wider header is still the same key.
    REJECT ("duplicate map key at offset 4", 0x82, 0xa1, 'a', 0x01, 0xd9, 1, 'a', 0x02);
}

static void
test_truncated_and_trailing (void **state)
{
    s_reject ("", 0, NULL, "truncated: value expected at offset 0");
    REJECT ("truncated uint16 at offset 0", 0xcd, 0x01);
    REJECT ("truncated int64 at offset 1", 0x91, 0xd3, 1, 2, 3);
    REJECT ("truncated float64 at offset 0", 0xcb, 0, 0);
    REJECT ("truncated str16 at offset 0", 0xda, 0x01);
    REJECT ("truncated: value expected at offset 3", 0x92, 0x91, 0xc0);
    REJECT ("truncated: map key expected at offset 5", 0x82, 0xa0, 0x91, 0x91, 0xc0);
    REJECT ("truncated: value expected at offset 3", 0x81, 0xd9, 0x00);
    REJECT ("fixarray at offset 0 claims 3 elements, 2 bytes remain", 0x93, 0x01, 0x02);
    REJECT ("fixstr at offset 0 claims 3 bytes, 2 remain", 0xa3, 'a', 'b');
    REJECT ("1 trailing bytes at offset 1", 0xc0, 0xc0);
    REJECT ("3 trailing bytes at offset 2", 0x91, 0x01, 0xff, 0xff, 0xff);

    //  Every proper prefix of a valid frame is refused.
    json_t *v = json_pack ("{s:[i,i,s],s:{s:f},s:I}", "a", 1, 300, "text", "m", "x", 1.5,
                           "big", (json_int_t) 1 << 40);
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (v, &buf, &len), 0);
    for (size_t k = 0; k < len; k++) {
        char err[256];
        json_t *part = gl_mp_decode (buf, k, NULL, err, sizeof err);
        if (part)
            fail_msg ("prefix of %zu bytes decoded", k);
        //  Either a header runs past the end or a count no longer fits in what remains.
        assert_true (strstr (err, "truncated") || strstr (err, "remain"));
    }
    free (buf);
    json_decref (v);
}

//  A count far beyond the bytes in a tiny frame is refused from the header, before anything is
//  allocated for it (the reason is the count check, which comes first).
static void
test_huge_counts_in_tiny_frames (void **state)
{
    REJECT ("array32 at offset 0 claims 4294967295 elements, 3 bytes remain",
            0xdd, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03);
    REJECT ("map32 at offset 0 claims 4294967295 entries, 4 bytes remain",
            0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'a', 0x01, 0x02);
    REJECT ("map32 at offset 0 claims 3 entries, 5 bytes remain",
            0xdf, 0, 0, 0, 3, 0xa1, 'a', 1, 0xa1, 'b');
    REJECT ("str32 at offset 0 claims 4294967295 bytes, 2 remain", 0xdb, 0xff, 0xff, 0xff, 0xff, 'a', 'b');
    REJECT ("str32 at offset 1 claims 2147483648 bytes", 0x91, 0xdb, 0x80, 0, 0, 0, 'a');
    REJECT ("bin at offset 0", 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00);
    REJECT ("array16 at offset 2 claims 65535 elements, 1 bytes remain",
            0x91, 0x91, 0xdc, 0xff, 0xff, 0xc0);
    REJECT ("map16 at offset 0 claims 65535 entries", 0xde, 0xff, 0xff, 0xa0, 0xc0);
    REJECT ("fixarray at offset 0 claims 15 elements, 0 bytes remain", 0x9f);
    REJECT ("fixmap at offset 0 claims 1 entries, 1 bytes remain", 0x81, 0xa0);
}

static void
test_element_and_size_limits (void **state)
{
    //  65537 nils in one array: over the default of 65536 values.
    size_t n = 65537;
    uint8_t *buf = malloc (5 + n);
    buf[0] = 0xdd;
    buf[1] = 0, buf[2] = 1, buf[3] = 0, buf[4] = 1;
    memset (buf + 5, 0xc0, n);
    s_reject (buf, 5 + n, NULL, "more than 65536 values at offset 65540");
    //  65535 members fit (the array itself is a value too).
    buf[2] = 0, buf[3] = 0xff, buf[4] = 0xff;
    json_t *v = gl_mp_decode (buf, 5 + 65535, NULL, NULL, 0);
    assert_int_equal (json_array_size (v), 65535);
    json_decref (v);
    free (buf);

    //  Map keys count.
    gl_mp_limits_t small = gl_mp_limits_default ();
    small.max_elements = 4;
    const uint8_t two[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x02};
    s_reject (two, sizeof two, &small, "more than 4 values at offset 6");
    small.max_elements = 5;
    v = gl_mp_decode (two, sizeof two, &small, NULL, 0);
    assert_non_null (v);
    json_decref (v);

    //  Frame size.
    small = gl_mp_limits_default ();
    small.max_bytes = 6;
    s_reject (two, sizeof two, &small, "frame of 7 bytes exceeds the limit of 6");
    buf = calloc (1, (1 << 20) + 1);
    s_reject (buf, (1 << 20) + 1, NULL, "exceeds the limit of 1048576");
    free (buf);
}

static uint8_t *
s_nested (size_t depth, uint8_t open, size_t *len)
{
    //  depth containers, each holding the next; the innermost holds nil. Maps use key "".
    size_t per = open == 0x91 ? 1 : 2;
    uint8_t *buf = malloc (depth * per + 1);
    for (size_t i = 0; i < depth; i++) {
        buf[i * per] = open;
        if (per == 2)
            buf[i * per + 1] = 0xa0;
    }
    buf[depth * per] = 0xc0;
    *len = depth * per + 1;
    return buf;
}

static void
test_depth_limit (void **state)
{
    size_t len;
    uint8_t *buf = s_nested (100000, 0x91, &len);
    s_reject (buf, len, NULL, "nesting deeper than 16 at offset 16");
    free (buf);
    buf = s_nested (100000, 0x81, &len);
    s_reject (buf, len, NULL, "nesting deeper than 16 at offset 32");
    free (buf);

    buf = s_nested (16, 0x91, &len);
    json_t *v = gl_mp_decode (buf, len, NULL, NULL, 0);
    assert_non_null (v);
    json_decref (v);
    free (buf);
    buf = s_nested (17, 0x91, &len);
    s_reject (buf, len, NULL, "nesting deeper than 16");
    free (buf);

    //  Empty containers count for depth too.
    const uint8_t empty17[] = {0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91,
                               0x91, 0x91, 0x91, 0x91, 0x91, 0x90};
    s_reject (empty17, sizeof empty17, NULL, "nesting deeper than 16 at offset 16");

    //  A raised limit is walked without recursion; it is capped where jansson's own recursion
    //  (freeing, comparing) stays safe.
    gl_mp_limits_t deep = gl_mp_limits_default ();
    deep.max_depth = 1000000;
    buf = s_nested (GL_MP_DEPTH_CAP, 0x91, &len);
    v = gl_mp_decode (buf, len, &deep, NULL, 0);
    assert_non_null (v);
    json_decref (v);
    free (buf);
    buf = s_nested (GL_MP_DEPTH_CAP + 1, 0x81, &len);
    s_reject (buf, len, &deep, "nesting deeper than 1024");
    free (buf);
    deep.max_depth = 0;
    s_reject ("\x90", 1, &deep, "nesting deeper than 0 at offset 0");
}

//  Decode at depth, as gl_event does: the caller's depth and element budget carry over.
static void
test_decode_at_budget (void **state)
{
    const uint8_t frame[] = {0x91, 0x91, 0xc0, 0x07};
    gl_mp_limits_t limits = gl_mp_limits_default ();
    size_t pos = 0, elements = 0;
    char err[128];
    json_t *v = gl_mp_decode_at (frame, sizeof frame, &pos, 14, &elements, &limits, err, sizeof err);
    assert_non_null (v);
    assert_int_equal (pos, 3);
    assert_int_equal (elements, 3);
    json_decref (v);
    pos = 0;
    v = gl_mp_decode_at (frame, sizeof frame, &pos, 15, &elements, &limits, err, sizeof err);
    assert_null (v);
    assert_non_null (strstr (err, "nesting deeper than 16 at offset 1"));
    assert_int_equal (pos, 0);
    pos = 0;
    elements = limits.max_elements - 2;
    v = gl_mp_decode_at (frame, sizeof frame, &pos, 0, &elements, &limits, err, sizeof err);
    assert_null (v);
    assert_non_null (strstr (err, "more than 65536 values at offset 2"));
}

static uint32_t
s_rand (uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t) (*s >> 33);
}

//  Decoded, re-encoded and decoded again, a value is unchanged.
static void
s_check_round_trip (const json_t *v)
{
    char *buf;
    size_t len;
    assert_int_equal (gl_mp_encode (v, &buf, &len), 0);
    gl_mp_limits_t roomy = gl_mp_limits_default ();
    roomy.max_bytes *= 2;
    json_t *back = gl_mp_decode (buf, len, &roomy, NULL, 0);
    assert_non_null (back);
    assert_true (json_equal (v, back));
    json_decref (back);
    free (buf);
}

//  Random and mutated frames from fixed seeds: no crash, no leak (under ASan), a reason for
//  every refusal, and the round trip holds for whatever decodes.
static void
test_random_frames (void **state)
{
    uint64_t seed = 42;
    json_t *model = json_pack ("{s:[i,i,I,s,f,n,b],s:{s:s,s:[]},s:s}", "a", 1, -200,
                               (json_int_t) 1 << 35, "مرحبا", 0.25, 1, "m", "k", "v", "e",
                               "s", "xyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyzxyz");
    char *valid;
    size_t valid_len;
    assert_int_equal (gl_mp_encode (model, &valid, &valid_len), 0);
    uint8_t buf[128];
    int decoded = 0;
    for (int i = 0; i < 5000; i++) {
        size_t len;
        if (i % 2) {
            len = s_rand (&seed) % sizeof buf;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t) s_rand (&seed);
            //  Often start with a container so the walker gets somewhere.
            if (len && i % 4 == 1)
                buf[0] = (uint8_t) (0x80 + s_rand (&seed) % 32);
        }
        else {
            len = valid_len;
            memcpy (buf, valid, len);
            for (int m = 1 + s_rand (&seed) % 4; m > 0; m--)
                buf[s_rand (&seed) % len] = (uint8_t) s_rand (&seed);
            if (i % 6 == 0)
                len = s_rand (&seed) % (len + 1);
        }
        char err[256] = "";
        json_t *v = gl_mp_decode (buf, len, NULL, err, sizeof err);
        if (v) {
            decoded++;
            s_check_round_trip (v);
            json_decref (v);
        }
        else
            assert_non_null (strstr (err, "offset"));
    }
    //  Mutations that leave a frame valid happen; a decoder that refused everything would fail.
    assert_true (decoded > 0);
    free (valid);
    json_decref (model);
}

static void
test_encode_refuses_what_cannot_decode (void **state)
{
    char *buf = NULL;
    size_t len = 0;
    json_t *s = json_stringn ("a\0b", 3);
    assert_int_equal (gl_mp_encode (s, &buf, &len), -1);
    json_decref (s);
    json_t *o = json_object ();
    json_object_setn_new (o, "k\0", 2, json_true ());
    assert_int_equal (gl_mp_encode (o, &buf, &len), -1);
    json_decref (o);
    assert_null (buf);
}

//  Reasons never exceed the caller's buffer, and a NULL err is allowed.
static void
test_err_buffers (void **state)
{
    char err[8];
    assert_null (gl_mp_decode ("\xc1", 1, NULL, err, sizeof err));
    assert_int_equal (strlen (err), 7);
    assert_null (gl_mp_decode ("\xc1", 1, NULL, NULL, 0));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_nil_bool),
        cmocka_unit_test (test_integers_every_width),
        cmocka_unit_test (test_integers_wide_forms),
        cmocka_unit_test (test_reals),
        cmocka_unit_test (test_non_finite_rejected),
        cmocka_unit_test (test_strings_every_length_class),
        cmocka_unit_test (test_unicode),
        cmocka_unit_test (test_bad_strings_rejected),
        cmocka_unit_test (test_utf8_agrees_with_jansson),
        cmocka_unit_test (test_wide_string_headers),
        cmocka_unit_test (test_containers),
        cmocka_unit_test (test_key_order_kept),
        cmocka_unit_test (test_types_rejected),
        cmocka_unit_test (test_truncated_and_trailing),
        cmocka_unit_test (test_huge_counts_in_tiny_frames),
        cmocka_unit_test (test_element_and_size_limits),
        cmocka_unit_test (test_depth_limit),
        cmocka_unit_test (test_decode_at_budget),
        cmocka_unit_test (test_random_frames),
        cmocka_unit_test (test_encode_refuses_what_cannot_decode),
        cmocka_unit_test (test_err_buffers),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
