/*  units — auth_unit_valid (auth.h), on its own so that code checking unit ids from outside
    (alertpayload.c) and its fuzz target need no more of auth.c. */
#include "auth.h"
#include <string.h>

bool
auth_unit_valid (const char *s)
{
    size_t n = s ? strlen (s) : 0;
    if (n == 0 || n > HTTP_UNIT_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'
              || s[i] == '-'))
            return false;
    return true;
}
