#!/bin/sh
# tools/stress.sh: the long forms of the hardening tests
#
#   1000 crash rounds (writers and lock holders killed with SIGKILL), and
#   64 session processes x 100 register/unregister cycles at once with
#   8 counters x 100 updates and 4 lock-free readers.
#
# Sizes can be changed with GSM_CRASH_ROUNDS, GSM_LOAD_PROCS,
# GSM_LOAD_CYCLES, GSM_LOAD_COUNTERS, GSM_LOAD_COUNTS, GSM_LOAD_READERS.
# Prints the figures; exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

builddir=${GSM_BUILDDIR:-_build}
gsm_setup_build "$builddir"

export GSM_CRASH_ROUNDS=${GSM_CRASH_ROUNDS:-1000}
export GSM_LOAD_PROCS=${GSM_LOAD_PROCS:-64}
export GSM_LOAD_CYCLES=${GSM_LOAD_CYCLES:-100}
export GSM_LOAD_COUNTERS=${GSM_LOAD_COUNTERS:-8}
export GSM_LOAD_COUNTS=${GSM_LOAD_COUNTS:-100}
export GSM_LOAD_READERS=${GSM_LOAD_READERS:-4}

status=0
for t in test-crash test-load; do
    echo "== $t"
    meson test -C "$builddir" "$t" --timeout-multiplier 10 --print-errorlogs || status=1
    sed -n "s/^# \(FIGURES .*\)/\1/p" "$builddir/meson-logs/testlog.txt" | tail -n 1
done
exit $status
