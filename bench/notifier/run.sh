#!/usr/bin/env bash
#  run.sh — notifier under load: a burst of e-mails (STARTTLS + AUTH each) into a local SMTP
#  server, a burst of SMS into Kannel (bearerbox, smsbox, fakesmsc), and emergency SMS latency
#  from notification.requested to Kannel's acceptance. Every message must arrive exactly once.
#      bench/notifier/run.sh            (builds build/bench first; GL_BENCH_BUILD to change it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${GL_BENCH_BUILD:-$ROOT/build/bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target bench_notifier gl-notifier >/dev/null
GL_SOURCE_DIR=$ROOT GL_BUILD_DIR=$BUILD "$BUILD/bench/bench_notifier"
