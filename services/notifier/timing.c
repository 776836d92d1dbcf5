/*  timing — when to try again: quiet hours (routine messages wait for their end; local time is
    business time plus GL_NOTIFIER_UTC_OFFSET_MIN, a fixed offset), exponential backoff with
    jitter between attempts, and the token bucket of the per-channel rate limits.
*/
#include "notifier.h"
#include <stdio.h>

int
notifier_parse_quiet (const char *s, int *from_min, int *to_min)
{
    int h1, m1, h2, m2;
    char tail;
    if (!s || sscanf (s, "%d:%d-%d:%d%c", &h1, &m1, &h2, &m2, &tail) != 4 || h1 < 0 || h1 > 23
        || h2 < 0 || h2 > 23 || m1 < 0 || m1 > 59 || m2 < 0 || m2 > 59)
        return -1;
    *from_min = h1 * 60 + m1;
    *to_min = h2 * 60 + m2;
    return 0;
}

bool
notifier_quiet (const notifier_cfg_t *cfg, int64_t now_ms, int64_t *until_ms)
{
    if (cfg->quiet_from_min == cfg->quiet_to_min)
        return false;
    int64_t local = now_ms + (int64_t) cfg->utc_offset_min * 60000;
    int m = (int) (((local / 60000) % 1440 + 1440) % 1440);
    bool quiet = cfg->quiet_from_min < cfg->quiet_to_min
                 ? m >= cfg->quiet_from_min && m < cfg->quiet_to_min
                 : m >= cfg->quiet_from_min || m < cfg->quiet_to_min;
    if (quiet && until_ms) {
        int left = ((cfg->quiet_to_min - m) % 1440 + 1440) % 1440;
        *until_ms = now_ms - (((now_ms % 60000) + 60000) % 60000) + (int64_t) left * 60000;
    }
    return quiet;
}

int64_t
notifier_backoff (const notifier_cfg_t *cfg, int attempt, uint32_t rnd)
{
    int64_t d = cfg->backoff_base_ms;
    for (int i = 1; i < attempt && d < cfg->backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->backoff_max_ms)
        d = cfg->backoff_max_ms;
    int64_t half = d / 2;
    return half + (half > 0 ? (int64_t) (rnd % (uint64_t) (half + 1)) : 0);
}

bool
rate_take (rate_bucket_t *b, int rate, int64_t now_us)
{
    if (rate <= 0)
        return true;
    if (b->last_us == 0)
        b->tokens = rate;       //  a full bucket at first: a burst of `rate` goes at once
    else if (now_us > b->last_us)
        b->tokens += (double) (now_us - b->last_us) * rate / 1e6;
    if (b->tokens > rate)
        b->tokens = rate;
    b->last_us = now_us;
    if (b->tokens < 1)
        return false;
    b->tokens -= 1;
    return true;
}
