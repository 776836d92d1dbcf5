#!/usr/bin/env bash
#  run.sh — referral's emergency latency: from POST /api/v1/emergencies at intake to referral's
#  alarm (notification.requested) published, while intake is kept busy with contact writes.
#  Prints p50, p99, max and the background rate; every alarm must arrive, once.
#      bench/referral/run.sh            (builds build/bench first; GL_BENCH_BUILD to change it)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${GL_BENCH_BUILD:-$ROOT/build/bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target bench_emergency gl-intake gl-referral >/dev/null
GL_SOURCE_DIR=$ROOT GL_BUILD_DIR=$BUILD "$BUILD/bench/bench_emergency"
