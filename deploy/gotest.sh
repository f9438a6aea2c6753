#!/usr/bin/env bash
# Runs go test verbosely into a log, shows package results as they come,
# the output of failed tests at the end, and one summary line:
# "N passed, N failed, N skipped".
set -uo pipefail
log=${TEST_LOG:-.cache/test.log}
mkdir -p "$(dirname "$log")"
go test "$@" -v 2>&1 | tee "$log" | grep -E --line-buffered '^(ok|FAIL|panic:|--- FAIL|matprofile:)'
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
  echo "---- output around failures (full log: $log) ----"
  grep -n -B 40 -E '^\s*--- FAIL|^panic:' "$log" | tail -400
fi
passed=$(grep -c -E '^\s*--- PASS' "$log")
failed=$(grep -c -E '^\s*--- FAIL' "$log")
skipped=$(grep -c -E '^\s*--- SKIP' "$log")
echo "go test: $passed passed, $failed failed, $skipped skipped (full log: $log)"
exit $rc
