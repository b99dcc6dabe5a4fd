#!/bin/sh
# Runs the whole busted suite under each Lua given (default: lua5.4), each
# against its own build of the module (build/ for 5.4, build/<lua>/ for the
# others: `make modules` builds them), and ends with the plain line
# "N passed, N failed" that CI reads, summed over the versions. lua5.5 is
# the interpreter `make lua5.5` builds, build/lua5.5/bin/lua5.5.
#
#   sh scripts/test.sh lua5.1 luajit lua5.2 lua5.3 lua5.4 lua5.5 [-- busted args]
set -u
mkdir -p build
luas=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do luas="$luas $1"; shift; done
[ $# -gt 0 ] && shift
[ -n "$luas" ] || luas=lua5.4

total_passed=0 total_failed=0 total_skipped=0 summary=""
for lua in $luas; do
  if [ "$lua" = lua5.4 ]; then build=./build; else build=./build/$lua; fi
  interpreter=$lua
  [ "$lua" = lua5.5 ] && interpreter=$PWD/build/lua5.5/bin/lua5.5
  out=build/test-output-$lua.tap
  start=$(date +%s)
  STACKONE_BUILD=$build busted --lua="$interpreter" -o TAP "$@" > "$out" 2>&1
  status=$?
  cat "$out"
  passed=$(grep -c '^ok ' "$out")
  failed=$(grep -c '^not ok ' "$out")
  skipped=$(grep -c '^ok .*# SKIP' "$out")
  passed=$((passed - skipped))
  if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1 # busted itself failed (a spec file did not load)
  fi
  if [ "$passed" -eq 0 ]; then
    failed=$((failed + 1)) # a suite that ran nothing
  fi
  summary="$summary
$lua: $passed passed, $failed failed, $skipped skipped ($(( $(date +%s) - start )) s)"
  total_passed=$((total_passed + passed))
  total_failed=$((total_failed + failed))
  total_skipped=$((total_skipped + skipped))
done
echo "$summary"
echo "$total_passed passed, $total_failed failed, $total_skipped skipped"
[ "$total_failed" -eq 0 ]
