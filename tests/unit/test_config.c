/*  gl_config, gl_clock, gl_id: the small pieces every service reads at start.
    ctest: timeout=60 */
#include "gl/gl_clock.h"
#include "gl/gl_config.h"
#include "gl/gl_id.h"
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

static char *
s_write_tmp (const char *text)
{
    static char path[64];
    snprintf (path, sizeof path, "/tmp/gl-config-XXXXXX");
    int fd = mkstemp (path);
    assert_true (fd >= 0);
    assert_int_equal (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    close (fd);
    return path;
}

static void
test_file_env_default (void **state)
{
    char *path = s_write_tmp ("# comment\n\nGL_A = one \nGL_B=2\n");
    gl_config_t *c = gl_config_new ();
    char err[256];
    assert_int_equal (gl_config_load_file (c, path, err, sizeof err), 0);
    assert_string_equal (gl_config_str (c, "GL_A", "x"), "one");
    assert_int_equal (gl_config_int (c, "GL_B", 0, 0, 10), 2);
    assert_string_equal (gl_config_str (c, "GL_MISSING", "def"), "def");
    setenv ("GL_A", "env", 1);
    assert_string_equal (gl_config_str (c, "GL_A", "x"), "env");
    unsetenv ("GL_A");
    assert_null (gl_config_error (c));
    gl_config_destroy (&c);
    assert_null (c);
    unlink (path);
}

static void
test_bad_values_named (void **state)
{
    gl_config_t *c = gl_config_new ();
    gl_config_set (c, "GL_N", "12x");
    gl_config_set (c, "GL_B", "maybe");
    gl_config_set (c, "GL_R", "99");
    assert_int_equal (gl_config_int (c, "GL_N", 7, 0, 100), 7);
    assert_non_null (gl_config_error (c));
    assert_non_null (strstr (gl_config_error (c), "GL_N"));
    assert_true (gl_config_bool (c, "GL_B", true));
    assert_int_equal (gl_config_int (c, "GL_R", 5, 0, 10), 5);
    gl_config_destroy (&c);
}

static void
test_bad_file_names_line (void **state)
{
    char *path = s_write_tmp ("GL_A=1\nthis is not a setting\n");
    gl_config_t *c = gl_config_new ();
    char err[256];
    assert_int_equal (gl_config_load_file (c, path, err, sizeof err), -1);
    assert_non_null (strstr (err, ":2:"));
    gl_config_destroy (&c);
    unlink (path);
    path = s_write_tmp ("lower=1\n");
    c = gl_config_new ();
    assert_int_equal (gl_config_load_file (c, path, err, sizeof err), -1);
    assert_non_null (strstr (err, ":1: bad key"));
    gl_config_destroy (&c);
    unlink (path);
    c = gl_config_new ();
    assert_int_equal (gl_config_load_file (c, "/nonexistent/gl.env", err, sizeof err), -1);
    gl_config_destroy (&c);
}

static void
test_clock_manual_and_file (void **state)
{
    gl_clock_set_manual (1000);
    assert_int_equal (gl_now_ms (), 1000);
    gl_clock_advance (500);
    assert_int_equal (gl_now_ms (), 1500);
    gl_clock_use_system ();
    char *path = s_write_tmp ("1234567\n");
    setenv ("GL_CLOCK_FILE", path, 1);
    assert_int_equal (gl_now_ms (), 1234567);
    unsetenv ("GL_CLOCK_FILE");
    assert_true (gl_now_ms () > 1700000000000LL);
    unlink (path);
}

static void
test_ids (void **state)
{
    char a[GL_ID_LEN + 1], b[GL_ID_LEN + 1];
    gl_id_new (a);
    gl_id_new (b);
    assert_true (gl_id_valid (a));
    assert_string_not_equal (a, b);
    assert_false (gl_id_valid ("xyz"));
    assert_false (gl_id_valid ("0123456789ABCDEF0123456789abcdef"));
    assert_false (gl_id_valid (NULL));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_file_env_default),
        cmocka_unit_test (test_bad_values_named),
        cmocka_unit_test (test_bad_file_names_line),
        cmocka_unit_test (test_clock_manual_and_file),
        cmocka_unit_test (test_ids),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
