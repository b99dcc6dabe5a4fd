#!/bin/sh
# make demo: runs examples/create_contact.lua against the bundled local
# server, or against StackOne itself when STACKONE_API_KEY and
# STACKONE_ACCOUNT_ID are set.
set -eu
export LUA_PATH="./lua/?.lua;./lua/?/init.lua;;"
export LUA_CPATH="./build/?.so;;"

if [ -n "${STACKONE_API_KEY:-}" ] && [ -n "${STACKONE_ACCOUNT_ID:-}" ]; then
  echo "talking to ${STACKONE_BASE_URL:-https://api.stackone.com}"
  exec lua5.4 examples/create_contact.lua
fi

mkdir -p build
out=build/demo-server.out
lua5.4 server/stackone_server.lua --api-key demo-key > "$out" 2>build/demo-server.err &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT INT TERM
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$out")
  [ -n "$port" ] && break
  sleep 0.05
done
if [ -z "$port" ]; then
  echo "the local server did not start:" >&2
  cat build/demo-server.err >&2
  exit 1
fi
echo "local StackOne-compatible server on http://127.0.0.1:$port"
STACKONE_API_KEY=demo-key STACKONE_ACCOUNT_ID=acc-123 STACKONE_BASE_URL="http://127.0.0.1:$port" \
  lua5.4 examples/create_contact.lua
