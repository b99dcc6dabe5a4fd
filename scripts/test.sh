#!/bin/sh
# Runs the whole busted suite under Lua 5.4 and ends with the plain line
# "N passed, N failed" that CI reads.
set -u
mkdir -p build
out=build/test-output.tap
busted --lua=lua5.4 -o TAP "$@" > "$out" 2>&1
status=$?
cat "$out"
passed=$(grep -c '^ok ' "$out")
failed=$(grep -c '^not ok ' "$out")
skipped=$(grep -c '^ok .*# SKIP' "$out")
passed=$((passed - skipped))
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1 # busted itself failed (a spec file did not load)
fi
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
