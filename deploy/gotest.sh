#!/usr/bin/env bash
# Runs go test verbosely into a log, shows package results and failures,
# and ends with one summary line: "N passed, N failed, N skipped".
set -uo pipefail
log=${TEST_LOG:-.cache/test.log}
mkdir -p "$(dirname "$log")"
go test "$@" -v 2>&1 | tee "$log" | grep -E --line-buffered '^(ok|FAIL|panic:|--- FAIL|    --- FAIL|.*_test.go:[0-9]+: )' | grep -v -E '^\s+[a-z_]+_test.go:[0-9]+: (time=|burst|reconnected)' 
rc=${PIPESTATUS[0]}
passed=$(grep -c -E '^\s*--- PASS' "$log")
failed=$(grep -c -E '^\s*--- FAIL' "$log")
skipped=$(grep -c -E '^\s*--- SKIP' "$log")
echo "go test: $passed passed, $failed failed, $skipped skipped (full log: $log)"
exit $rc
