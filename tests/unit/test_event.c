/*  gl_event: the envelope round trip, and every kind of bad frame refused with the right reason. */
/* ctest: timeout=120 */
#include "gl/gl_clock.h"
#include "gl/gl_event.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ID "0123456789abcdef0123456789abcdef"

//  The fields of a valid envelope, in wire order; tests edit them before packing.
static json_t *
s_fields (void)
{
    json_t *f = json_pack ("{s:i,s:s,s:s,s:s,s:I,s:I,s:s,s:{s:s,s:i}}", "v", 1, "id", ID,
                           "type", "call.offered", "src", "intake-1", "seq", (json_int_t) 7,
                           "ts", (json_int_t) 1700000000000, "corr", "", "data", "lang", "ar",
                           "n", 3);
    assert_non_null (f);
    return f;
}

//  Pack fields as the envelope map, then `extra_entries` more entries given as raw bytes.
//  Takes fields. The frame is malloc'd.
static char *
s_pack (json_t *fields, const void *extra, size_t extra_len, uint32_t extra_entries, size_t *len)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, json_object_size (fields) + extra_entries);
    const char *key;
    json_t *value;
    json_object_foreach (fields, key, value) {
        msgpack_pack_str_with_body (&pk, key, strlen (key));
        assert_int_equal (gl_mp_pack_json (&pk, value), 0);
    }
    if (extra_len)
        msgpack_sbuffer_write (&sbuf, extra, extra_len);
    json_decref (fields);
    *len = sbuf.size;
    return msgpack_sbuffer_release (&sbuf);
}

//  Decode must refuse buf with reason want and a message holding text.
static void
s_refused (const void *buf, size_t len, gl_event_err_t want, const char *text)
{
    gl_event_err_t why = GL_EVENT_OK;
    char err[256] = "";
    gl_event_t *e = gl_event_decode (buf, len, &why, err, sizeof err);
    if (e || why != want || !strstr (err, text))
        fail_msg ("wanted %s naming '%s', got %s: '%s'", gl_event_err_name (want), text,
                  e ? "an event" : gl_event_err_name (why), err);
}

//  Pack fields (taken) and expect a refusal.
static void
s_refused_fields (json_t *fields, gl_event_err_t want, const char *text)
{
    size_t len;
    char *buf = s_pack (fields, NULL, 0, 0, &len);
    s_refused (buf, len, want, text);
    free (buf);
}

static gl_event_t *
s_decode_ok (const void *buf, size_t len)
{
    gl_event_err_t why;
    char err[256] = "";
    gl_event_t *e = gl_event_decode (buf, len, &why, err, sizeof err);
    if (!e)
        fail_msg ("decode failed (%s): %s", gl_event_err_name (why), err);
    assert_int_equal (why, GL_EVENT_OK);
    return e;
}

static void
s_assert_same (const gl_event_t *a, const gl_event_t *b)
{
    assert_int_equal (a->v, b->v);
    assert_string_equal (a->id, b->id);
    assert_string_equal (a->type, b->type);
    assert_string_equal (a->src, b->src);
    assert_true (a->seq == b->seq);
    assert_true (a->ts == b->ts);
    assert_string_equal (a->corr, b->corr);
    assert_true (json_equal (a->data, b->data));
}

static void
test_round_trip (void **state)
{
    gl_event_t *e = gl_event_new ("referral.created");
    assert_non_null (e);
    strcpy (e->src, "intake-1");
    e->seq = 42;
    gl_event_set_corr (e, "9f86d081884c7d659a2feaa0c55ad015");
    json_t *nested = json_pack ("{s:[i,I,f,n,b,s],s:{}}", "list", -5, (json_int_t) INT64_MIN,
                                0.125, 0, "x", "empty", NULL);
    json_object_set_new (nested, "empty", json_object ());
    json_object_set_new (e->data, "note", json_string ("يحتاج المتصل إلى مترجم"));
    json_object_set_new (e->data, "n", json_integer (INT64_MAX));
    json_object_set_new (e->data, "ratio", json_real (0.75));
    json_object_set_new (e->data, "none", json_null ());
    json_object_set_new (e->data, "urgent", json_true ());
    json_object_set_new (e->data, "nested", nested);
    json_object_set_new (e->data, "arr", json_array ());

    char *buf;
    size_t len;
    assert_int_equal (gl_event_encode (e, &buf, &len), 0);
    gl_event_t *d = s_decode_ok (buf, len);
    s_assert_same (e, d);
    assert_string_equal (gl_event_str (d, "note", "?"), "يحتاج المتصل إلى مترجم");
    assert_string_equal (gl_event_str (d, "n", "def"), "def");
    assert_string_equal (gl_event_str (d, "missing", "def"), "def");
    assert_true (gl_event_int (d, "n", 0) == INT64_MAX);
    assert_int_equal (gl_event_int (d, "note", -1), -1);
    assert_int_equal (gl_event_int (d, "ratio", -1), -1);
    gl_event_destroy (&d);
    assert_null (d);
    gl_event_destroy (&d);
    free (buf);
    gl_event_destroy (&e);
}

//  Keys go out in the documented order, the header fields in their smallest encoding.
static void
test_wire_order (void **state)
{
    gl_clock_set_manual (1700000000123);
    gl_event_t *e = gl_event_new ("a.b");
    gl_clock_use_system ();
    strcpy (e->src, "s");
    e->seq = 1;
    char *buf;
    size_t len;
    assert_int_equal (gl_event_encode (e, &buf, &len), 0);
    uint8_t want[128];
    size_t n = 0;
    want[n++] = 0x88;
    want[n++] = 0xa1, want[n++] = 'v', want[n++] = 0x01;
    want[n++] = 0xa2, want[n++] = 'i', want[n++] = 'd', want[n++] = 0xd9, want[n++] = 32;
    memcpy (want + n, e->id, 32), n += 32;
    memcpy (want + n, "\xa4type\xa3" "a.b", 9), n += 9;
    memcpy (want + n, "\xa3src\xa1s", 6), n += 6;
    memcpy (want + n, "\xa3seq\x01", 5), n += 5;
    memcpy (want + n, "\xa2ts\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x7b", 12), n += 12;
    memcpy (want + n, "\xa4" "corr\xa0", 6), n += 6;
    memcpy (want + n, "\xa4" "data\x80", 6), n += 6;
    assert_int_equal (len, n);
    assert_memory_equal (buf, want, n);
    free (buf);
    gl_event_destroy (&e);
}

static void
test_new_and_names (void **state)
{
    assert_null (gl_event_new (NULL));
    assert_null (gl_event_new (""));
    assert_null (gl_event_new ("Call.offered"));
    gl_clock_set_manual (5000);
    gl_event_t *e = gl_event_new ("call.offered");
    gl_clock_use_system ();
    assert_non_null (e);
    assert_true (gl_id_valid (e->id));
    assert_int_equal (e->v, GL_EVENT_VERSION);
    assert_true (e->ts == 5000);
    assert_true (e->seq == 0);
    assert_string_equal (e->corr, "");
    assert_string_equal (e->src, "");
    assert_true (json_is_object (e->data) && json_object_size (e->data) == 0);
    gl_event_t *f = gl_event_new ("call.offered");
    assert_string_not_equal (e->id, f->id);
    gl_event_destroy (&e);
    gl_event_destroy (&f);

    char longest[64], too_long[65];
    memset (longest, 'a', 63), longest[63] = 0;
    memset (too_long, 'a', 64), too_long[64] = 0;
    const char *good_types[] = {"a", "call.offered", "referral.sla_breached", "x1.y2.z3", longest};
    const char *bad_types[] = {NULL, "", ".a", "a.", "a..b", "A", "call-offered", "call offered",
                               "é", too_long, "a/b"};
    for (size_t i = 0; i < sizeof good_types / sizeof *good_types; i++)
        assert_true (gl_event_type_valid (good_types[i]));
    for (size_t i = 0; i < sizeof bad_types / sizeof *bad_types; i++)
        assert_false (gl_event_type_valid (bad_types[i]));
    const char *good_srcs[] = {"intake-1", "a", "referral_2", "-", longest};
    const char *bad_srcs[] = {NULL, "", "intake.1", "Intake-1", "a b", too_long};
    for (size_t i = 0; i < sizeof good_srcs / sizeof *good_srcs; i++)
        assert_true (gl_event_src_valid (good_srcs[i]));
    for (size_t i = 0; i < sizeof bad_srcs / sizeof *bad_srcs; i++)
        assert_false (gl_event_src_valid (bad_srcs[i]));
    const char *good_locations[] = {"amman", "Zaatari-camp.D4", "a", "_", "12345678901234567890123456789012"};
    const char *bad_locations[] = {NULL, "", "a b", "amman/east", "Ã©", "123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof good_locations / sizeof *good_locations; i++)
        assert_true (gl_event_location_valid (good_locations[i]));
    for (size_t i = 0; i < sizeof bad_locations / sizeof *bad_locations; i++)
        assert_false (gl_event_location_valid (bad_locations[i]));

    assert_string_equal (gl_event_err_name (GL_EVENT_OK), "ok");
    assert_string_equal (gl_event_err_name (GL_EVENT_ERR_MSGPACK), "msgpack");
    assert_string_equal (gl_event_err_name (GL_EVENT_ERR_SHAPE), "shape");
    assert_string_equal (gl_event_err_name (GL_EVENT_ERR_TYPE), "type");
    assert_string_equal (gl_event_err_name (GL_EVENT_ERR_VERSION), "version");
    assert_string_equal (gl_event_err_name (GL_EVENT_ERR__COUNT), "unknown");
}

//  Every proper prefix of a valid frame is a msgpack error.
static void
test_truncated_at_every_offset (void **state)
{
    size_t len;
    char *buf = s_pack (s_fields (), NULL, 0, 0, &len);
    gl_event_t *whole = s_decode_ok (buf, len);
    gl_event_destroy (&whole);
    for (size_t k = 0; k < len; k++) {
        gl_event_err_t why = GL_EVENT_OK;
        char err[256] = "";
        gl_event_t *e = gl_event_decode (buf, k, &why, err, sizeof err);
        if (e || why != GL_EVENT_ERR_MSGPACK)
            fail_msg ("prefix of %zu bytes: %s %s", k, gl_event_err_name (why), err);
        assert_non_null (strstr (err, "offset"));
    }
    free (buf);
}

static void
test_wrong_types (void **state)
{
    char s63[64], s64[65];
    memset (s63, 'a', 63), s63[63] = 0;
    memset (s64, 'a', 64), s64[64] = 0;
    struct {
        const char *key;
        json_t *value;
        const char *text;
    } cases[] = {
        {"v", json_string ("1"), "'v' at offset 3: not an integer"},
        {"v", json_real (1.0), "'v' at offset 3: not an integer"},
        {"v", json_true (), "'v'"},
        {"id", json_integer (5), "'id' at offset 7: not a string"},
        {"id", json_string ("0123456789ABCDEF0123456789abcdef"), "'id' at offset 7: not 32 lowercase"},
        {"id", json_string ("0123456789abcdef0123456789abcde"), "not 32 lowercase"},
        {"id", json_string ("0123456789abcdef0123456789abcdef0"), "'id' at offset 7: too long"},
        {"id", json_string (""), "'id'"},
        {"id", json_null (), "'id'"},
        {"type", json_integer (1), "'type' at offset 46: not a string"},
        {"type", json_string (""), "'type' at offset 46: not a valid type name"},
        {"type", json_string ("Call.offered"), "not a valid type name"},
        {"type", json_string (".call"), "not a valid type name"},
        {"type", json_string ("call..offered"), "not a valid type name"},
        {"type", json_string ("مكالمة"), "not a valid type name"},
        {"type", json_string (s64), "'type' at offset 46: too long"},
        {"type", json_array (), "'type'"},
        {"src", json_string ("intake.1"), "'src' at offset 63: not a valid source name"},
        {"src", json_string (""), "'src'"},
        {"src", json_string (s64), "'src' at offset 63: too long"},
        {"src", json_false (), "'src'"},
        {"seq", json_integer (-1), "'seq' at offset 76: negative"},
        {"seq", json_string ("1"), "'seq' at offset 76: not an integer"},
        {"seq", json_real (1.5), "'seq'"},
        {"ts", json_integer (-1), "'ts' at offset 80: negative"},
        {"ts", json_integer (INT64_MIN), "'ts'"},
        {"ts", json_string ("2024-01-01"), "'ts' at offset 80: not an integer"},
        {"corr", json_string (s64), "'corr' at offset 94: too long"},
        {"corr", json_integer (5), "'corr' at offset 94: not a string"},
        {"corr", json_null (), "'corr'"},
        {"data", json_array (), "'data' at offset 100: not a map"},
        {"data", json_string ("{}"), "'data'"},
        {"data", json_null (), "'data'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *f = s_fields ();
        assert_int_equal (json_object_set_new (f, cases[i].key, cases[i].value), 0);
        s_refused_fields (f, GL_EVENT_ERR_TYPE, cases[i].text);
    }
    //  The first bad field in envelope order is named, whatever the wire order.
    json_t *f = s_fields ();
    json_object_set_new (f, "data", json_null ());
    json_object_set_new (f, "ts", json_integer (-1));
    s_refused_fields (f, GL_EVENT_ERR_TYPE, "'ts'");
}

//  The edges of every range are accepted.
static void
test_boundaries_accepted (void **state)
{
    char s63[64];
    memset (s63, 'b', 63), s63[63] = 0;
    json_t *f = s_fields ();
    json_object_set_new (f, "type", json_string (s63));
    json_object_set_new (f, "src", json_string (s63));
    json_object_set_new (f, "corr", json_string (s63));
    json_object_set_new (f, "seq", json_integer (INT64_MAX));
    json_object_set_new (f, "ts", json_integer (INT64_MAX));
    size_t len;
    char *buf = s_pack (f, NULL, 0, 0, &len);
    gl_event_t *e = s_decode_ok (buf, len);
    assert_string_equal (e->type, s63);
    assert_string_equal (e->corr, s63);
    assert_true (e->seq == INT64_MAX);
    assert_true (e->ts == INT64_MAX);
    gl_event_destroy (&e);
    free (buf);

    f = s_fields ();
    json_object_set_new (f, "seq", json_integer (0));
    json_object_set_new (f, "ts", json_integer (0));
    json_object_set_new (f, "corr", json_string ("ملف-٤٢"));
    json_object_set_new (f, "data", json_object ());
    buf = s_pack (f, NULL, 0, 0, &len);
    e = s_decode_ok (buf, len);
    assert_true (e->seq == 0 && e->ts == 0);
    assert_string_equal (e->corr, "ملف-٤٢");
    gl_event_destroy (&e);
    free (buf);

    //  A seq beyond INT64_MAX cannot be carried: the msgpack layer refuses it.
    f = s_fields ();
    json_object_del (f, "seq");
    const uint8_t huge_seq[] = {0xa3, 's', 'e', 'q', 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    buf = s_pack (f, huge_seq, sizeof huge_seq, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "exceeds INT64_MAX");
    free (buf);
}

static void
test_version (void **state)
{
    int64_t versions[] = {0, 2, 255, 65536, -1, INT64_MAX};
    for (size_t i = 0; i < sizeof versions / sizeof *versions; i++) {
        json_t *f = s_fields ();
        json_object_set_new (f, "v", json_integer (versions[i]));
        s_refused_fields (f, GL_EVENT_ERR_VERSION, "unsupported version");
    }
    //  A newer producer may have changed anything else too: still a version problem.
    json_t *f = s_fields ();
    json_object_set_new (f, "v", json_integer (2));
    json_object_del (f, "corr");
    json_object_set_new (f, "tenant", json_string ("x"));
    json_object_set_new (f, "data", json_array ());
    s_refused_fields (f, GL_EVENT_ERR_VERSION, "unsupported version 2 at offset 3");
    //  ... unless the frame is not even well-formed msgpack.
    f = s_fields ();
    json_object_set_new (f, "v", json_integer (2));
    json_object_del (f, "data");
    const uint8_t bad_data[] = {0xa4, 'd', 'a', 't', 'a', 0xc1};
    size_t len;
    char *buf = s_pack (f, bad_data, sizeof bad_data, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "0xc1");
    free (buf);
}

static void
test_shape (void **state)
{
    const char *keys[] = {"v", "id", "type", "src", "seq", "ts", "corr", "data"};
    for (size_t i = 0; i < 8; i++) {
        json_t *f = s_fields ();
        json_object_del (f, keys[i]);
        char want[64];
        snprintf (want, sizeof want, "missing envelope key '%s'", keys[i]);
        s_refused_fields (f, GL_EVENT_ERR_SHAPE, want);

        //  The same key twice, even with the same value.
        f = s_fields ();
        uint8_t dup[64];
        size_t n = 0;
        dup[n++] = (uint8_t) (0xa0 | strlen (keys[i]));
        memcpy (dup + n, keys[i], strlen (keys[i])), n += strlen (keys[i]);
        dup[n++] = 0x80;
        size_t len;
        char *buf = s_pack (f, dup, n, 1, &len);
        snprintf (want, sizeof want, "duplicate envelope key '%s' at offset", keys[i]);
        s_refused (buf, len, GL_EVENT_ERR_SHAPE, want);
        free (buf);
    }
    json_t *f = s_fields ();
    json_object_set_new (f, "extra", json_integer (1));
    s_refused_fields (f, GL_EVENT_ERR_SHAPE, "unknown envelope key 'extra' at offset");
    //  Unknown keys are named safely in the reason.
    f = s_fields ();
    json_object_set_new (f, "bad\nkey مرحبا", json_integer (1));
    s_refused_fields (f, GL_EVENT_ERR_SHAPE, "unknown envelope key 'bad?key");
    //  An unknown key replacing a known one: the unknown key is met first.
    f = s_fields ();
    json_object_del (f, "corr");
    json_object_set_new (f, "Corr", json_string (""));
    s_refused_fields (f, GL_EVENT_ERR_SHAPE, "unknown envelope key 'Corr'");
    //  The key "v" spelled wider is still "v"; a key "" is unknown.
    f = s_fields ();
    json_object_set_new (f, "", json_null ());
    s_refused_fields (f, GL_EVENT_ERR_SHAPE, "unknown envelope key ''");

    //  Not a map at all.
    s_refused ("\x93\x01\x02\x03", 4, GL_EVENT_ERR_SHAPE, "not a map");
    s_refused ("\x07", 1, GL_EVENT_ERR_SHAPE, "not a map");
    s_refused ("\xa2hi", 3, GL_EVENT_ERR_SHAPE, "not a map");
    s_refused ("\x80", 1, GL_EVENT_ERR_SHAPE, "missing envelope key 'v'");
    s_refused ("\xc1", 1, GL_EVENT_ERR_MSGPACK, "0xc1");
    s_refused ("\x93\x01\x02", 3, GL_EVENT_ERR_MSGPACK, "claims 3 elements");
    s_refused ("", 0, GL_EVENT_ERR_MSGPACK, "offset 0");
    s_refused ("\xde\x00", 2, GL_EVENT_ERR_MSGPACK, "truncated map16");

    //  A key that is not a string is not well-formed for us.
    f = s_fields ();
    const uint8_t int_key[] = {0x01, 0x02};
    size_t len;
    char *buf = s_pack (f, int_key, sizeof int_key, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "is not a string");
    free (buf);
    //  A key with invalid UTF-8 is a msgpack problem, not an unknown key.
    f = s_fields ();
    const uint8_t bad_key[] = {0xa2, 0xc3, 0x28, 0x02};
    buf = s_pack (f, bad_key, sizeof bad_key, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "invalid UTF-8");
    free (buf);
}

//  Frames other producers might write: keys in any order, wider encodings than needed.
static void
test_other_spellings_accepted (void **state)
{
    const uint8_t frame[] = {
        0xde, 0x00, 0x08,                                           //  map16
        0xa4, 'd', 'a', 't', 'a', 0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xd0, 0x05,
        0xd9, 0x01, 'v', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1,              //  "v" as str8, uint64 1
        0xa2, 't', 's', 0xd3, 0, 0, 0, 0, 0, 0, 0x03, 0xe8,         //  ts as int64
        0xa3, 's', 'e', 'q', 0xd0, 0x09,                            //  seq as int8
        0xdb, 0, 0, 0, 3, 's', 'r', 'c', 0xd9, 1, 'q',              //  str32 key, str8 value
        0xa4, 'c', 'o', 'r', 'r', 0xda, 0, 1, 'c',
        0xa4, 't', 'y', 'p', 'e', 0xa1, 't',
        0xa2, 'i', 'd', 0xd9, 32,
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', 'a', 'b', 'c', 'd', 'e', 'f',
    };
    gl_event_t *e = s_decode_ok (frame, sizeof frame);
    assert_string_equal (e->id, ID);
    assert_string_equal (e->type, "t");
    assert_string_equal (e->src, "q");
    assert_string_equal (e->corr, "c");
    assert_true (e->seq == 9);
    assert_true (e->ts == 1000);
    assert_int_equal (gl_event_int (e, "k", 0), 5);
    gl_event_destroy (&e);
}

static void
test_huge_counts_small_frames (void **state)
{
    s_refused ("\xdf\xff\xff\xff\xff\xa1v\x01", 8, GL_EVENT_ERR_MSGPACK,
               "map at offset 0 claims 4294967295 entries, 3 bytes remain");
    s_refused ("\xdd\xff\xff\xff\xff\x01\x02", 7, GL_EVENT_ERR_MSGPACK,
               "array32 at offset 0 claims 4294967295 elements");
    s_refused ("\x81\xa1v\xdb\xff\xff\xff\xff", 8, GL_EVENT_ERR_MSGPACK,
               "str32 at offset 3 claims 4294967295 bytes, 0 remain");
    s_refused ("\x81\xa4" "data\xc6\xff\xff\xff\xff", 11, GL_EVENT_ERR_MSGPACK, "bin at offset 6");
    s_refused ("\x81\xa4" "data\xdf\xff\xff\xff\xff", 11, GL_EVENT_ERR_MSGPACK,
               "map32 at offset 6 claims 4294967295 entries, 0 bytes remain");
    s_refused ("\x81\xdb\xff\xff\xff\xff\x01", 7, GL_EVENT_ERR_MSGPACK, "str32 at offset 1 claims");

    //  Inside a full envelope too.
    json_t *f = s_fields ();
    json_object_del (f, "data");
    const uint8_t data[] = {0xa4, 'd', 'a', 't', 'a', 0xdd, 0xff, 0xff, 0xff, 0xff};
    size_t len;
    char *buf = s_pack (f, data, sizeof data, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "claims 4294967295 elements, 0 bytes remain");
    free (buf);
}

//  The default limits apply to the whole frame, the envelope being level 1.
static void
test_limits (void **state)
{
    //  100000 nested arrays in data: refused at the limit, not walked.
    size_t depth = 100000;
    uint8_t *nest = malloc (5 + depth + 1);
    memcpy (nest, "\xa4" "data", 5);
    memset (nest + 5, 0x91, depth);
    nest[5 + depth] = 0xc0;
    json_t *f = s_fields ();
    json_object_del (f, "data");
    size_t len;
    char *buf = s_pack (f, nest, 5 + depth + 1, 1, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "nesting deeper than 16");
    free (buf);
    free (nest);

    //  data is level 2; 14 arrays below it reach 16, 15 are too many.
    for (int arrays = 14; arrays <= 15; arrays++) {
        uint8_t data[32];
        memcpy (data, "\xa4" "data\x81\xa1x", 8);
        memset (data + 8, 0x91, arrays);
        data[8 + arrays] = 0xc0;
        f = s_fields ();
        json_object_del (f, "data");
        buf = s_pack (f, data, 8 + arrays + 1, 1, &len);
        if (arrays == 14) {
            gl_event_t *e = s_decode_ok (buf, len);
            gl_event_destroy (&e);
        }
        else
            s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "nesting deeper than 16");
        free (buf);
    }

    //  The element limit counts the envelope: a data array of 65535 nils does not fit.
    f = s_fields ();
    json_t *arr = json_array ();
    for (int i = 0; i < 65535; i++)
        json_array_append_new (arr, json_null ());
    json_object_set_new (json_object_get (f, "data"), "a", arr);
    s_refused_fields (f, GL_EVENT_ERR_MSGPACK, "more than 65536 values");

    //  Over 1 MiB.
    f = s_fields ();
    char *big = malloc (1 << 20);
    memset (big, 'x', 1 << 20);
    json_object_set_new (json_object_get (f, "data"), "big", json_stringn (big, 1 << 20));
    free (big);
    s_refused_fields (f, GL_EVENT_ERR_MSGPACK, "exceeds the limit of 1048576 at offset 0");
}

static void
test_trailing_garbage (void **state)
{
    json_t *f = s_fields ();
    const uint8_t junk[] = {0xc0};
    size_t len;
    //  0 extra entries: the junk byte follows the map.
    char *buf = s_pack (f, junk, sizeof junk, 0, &len);
    s_refused (buf, len, GL_EVENT_ERR_MSGPACK, "1 trailing bytes at offset");
    free (buf);
}

static uint32_t
s_rand (uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t) (*s >> 33);
}

//  Random and mutated frames from a fixed seed: nothing crashes or leaks, every refusal has a
//  reason, and whatever decodes survives a re-encode unchanged.
static void
test_random_frames (void **state)
{
    uint64_t seed = 7;
    size_t valid_len;
    char *valid = s_pack (s_fields (), NULL, 0, 0, &valid_len);
    uint8_t buf[256];
    int decoded = 0;
    int reasons[GL_EVENT_ERR__COUNT] = {0};
    for (int i = 0; i < 6000; i++) {
        size_t len;
        if (i % 3 == 0) {
            len = s_rand (&seed) % sizeof buf;
            for (size_t k = 0; k < len; k++)
                buf[k] = (uint8_t) s_rand (&seed);
            if (len)
                buf[0] = 0x88;
        }
        else {
            len = valid_len;
            memcpy (buf, valid, len);
            for (int m = 1 + s_rand (&seed) % 3; m > 0; m--)
                buf[s_rand (&seed) % len] ^= (uint8_t) (1u << (s_rand (&seed) % 8));
        }
        gl_event_err_t why = GL_EVENT_OK;
        char err[256] = "";
        gl_event_t *e = gl_event_decode (buf, len, &why, err, sizeof err);
        assert_true (why >= 0 && why < GL_EVENT_ERR__COUNT);
        reasons[why]++;
        if (!e) {
            assert_int_not_equal (why, GL_EVENT_OK);
            assert_true (strlen (err) > 0);
            continue;
        }
        decoded++;
        char *again;
        size_t again_len;
        assert_int_equal (gl_event_encode (e, &again, &again_len), 0);
        gl_event_t *e2 = s_decode_ok (again, again_len);
        s_assert_same (e, e2);
        gl_event_destroy (&e2);
        gl_event_destroy (&e);
        free (again);
    }
    //  Bit flips reach every reason; a decoder refusing all or nothing would show here.
    assert_true (decoded > 0);
    for (int r = GL_EVENT_ERR_MSGPACK; r < GL_EVENT_ERR__COUNT; r++)
        assert_true (reasons[r] > 0);
    free (valid);
}

//  What the decoder would refuse, the encoder refuses.
static void
test_encode_refuses_invalid (void **state)
{
    gl_event_t *e = gl_event_new ("call.ended");
    char *buf = NULL;
    size_t len;
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);       //  no src yet
    strcpy (e->src, "intake-1");
    assert_int_equal (gl_event_encode (e, &buf, &len), 0);
    free (buf);
    buf = NULL;
    e->seq = (uint64_t) INT64_MAX + 1;
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    e->seq = 1;
    e->ts = -5;
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    e->ts = 1;
    strcpy (e->type, "Bad");
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    strcpy (e->type, "ok");
    e->id[0] = 'X';
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    e->id[0] = 'a';
    json_object_set_new (e->data, "nul", json_stringn ("a\0b", 3));
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    json_object_del (e->data, "nul");
    json_decref (e->data);
    e->data = json_array ();
    assert_int_equal (gl_event_encode (e, &buf, &len), -1);
    assert_null (buf);
    gl_event_destroy (&e);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_wire_order),
        cmocka_unit_test (test_new_and_names),
        cmocka_unit_test (test_truncated_at_every_offset),
        cmocka_unit_test (test_wrong_types),
        cmocka_unit_test (test_boundaries_accepted),
        cmocka_unit_test (test_version),
        cmocka_unit_test (test_shape),
        cmocka_unit_test (test_other_spellings_accepted),
        cmocka_unit_test (test_huge_counts_small_frames),
        cmocka_unit_test (test_limits),
        cmocka_unit_test (test_trailing_garbage),
        cmocka_unit_test (test_random_frames),
        cmocka_unit_test (test_encode_refuses_invalid),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
