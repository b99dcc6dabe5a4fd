#!/bin/sh
# make demo: runs examples/create_contact.lua against the bundled local
# server, or against StackOne itself when STACKONE_API_KEY and
# STACKONE_ACCOUNT_ID are set.
set -eu
if [ -n "${STACKONE_API_KEY:-}" ] && [ -n "${STACKONE_ACCOUNT_ID:-}" ]; then
  echo "talking to ${STACKONE_BASE_URL:-https://api.stackone.com}"
  exec lua5.4 examples/create_contact.lua
fi

# without credentials the example starts the bundled local server itself
env -u STACKONE_BASE_URL lua5.4 examples/create_contact.lua
