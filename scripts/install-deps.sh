#!/bin/sh
# Installs what building and testing need, when it is missing. On Debian
# and Ubuntu it uses apt-get (with sudo when not root); elsewhere it prints
# what to install.
set -eu

PACKAGES="lua5.4 liblua5.4-dev lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev lua-luv lua-cqueues lua-lpeg libcurl4-openssl-dev lua-cjson lua-busted lua-socket lua-http lua-check luarocks valgrind clang libclang-rt-14-dev pkg-config gcc make curl neovim nginx-light libnginx-mod-http-lua redis-server lua-redis m4 libssl-dev strace"

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=""
for pkg in $PACKAGES; do
  installed "$pkg" || missing="$missing $pkg"
done

# LuaJIT: Debian's luajit or OpenResty's luajit2 (which nginx's Lua module
# needs and which replaces luajit): either will do, and an install never
# swaps one for the other. With neither, luajit2, so that nginx can come too.
if ! installed luajit && ! installed luajit2; then
  missing="$missing luajit2"
fi
if ! installed libluajit-5.1-dev && ! installed libluajit2-5.1-dev; then
  missing="$missing libluajit2-5.1-dev"
fi

# Node.js and npm run Prism for the conformance tests
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"

if [ -z "$missing" ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<MSG
stackone-lua needs Lua 5.4 with headers, libcurl with headers, lua-cjson,
LuaSocket, busted and luacheck. Install them with your package manager, e.g.
  Fedora:  sudo dnf install lua lua-devel libcurl-devel lua-cjson lua-socket
           (busted and luacheck from LuaRocks)
  macOS:   brew install lua curl && luarocks install lua-cjson luasocket busted luacheck
MSG
  exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "installing:$missing" >&2
$SUDO apt-get update -qq >&2
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends --no-remove $missing >&2
