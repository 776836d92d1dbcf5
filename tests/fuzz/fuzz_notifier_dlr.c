/*  libFuzzer target: the query string of Kannel's delivery-report callbacks (dlr.c), which
    anyone who can reach the listener's port may send. Any input is refused with a reason or
    accepted only with a correct signature, a delivery "<32 hex>:sms", an attempt 1..1000 and
    one of Kannel's report types; never a crash, a leak or an over-read.
    dlr.c and signing.c are compiled in (fuzz targets link glshared only). */
#include "../../services/notifier/signing.c"
#include "../../services/notifier/dlr.c"
#include <stdint.h>

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char *q = malloc (size + 1);
    if (!q)
        return 0;
    memcpy (q, data, size);
    q[size] = 0;
    dlr_report_t r;
    char reason[64];
    if (dlr_parse (q, "fuzz-secret", &r, reason, sizeof reason) == 0) {
        char want[33];
        dlr_sign ("fuzz-secret", r.delivery, r.attempt, want);
        if (strlen (r.delivery) != GL_ID_LEN + 4 || r.attempt < 1 || r.attempt > 1000
            || !(r.status == 1 || r.status == 2 || r.status == 4 || r.status == 8
                 || r.status == 16) || !strstr (q, want))
            abort ();
    }
    else if (!reason[0])
        abort ();
    free (q);
    return 0;
}
