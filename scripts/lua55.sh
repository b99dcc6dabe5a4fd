#!/bin/sh
# Builds a Lua 5.5 to test against, into build/lua5.5/ (`make lua5.5`).
# Debian has no Lua 5.5 and no Lua module built for it, so:
#
#   bin/lua5.5   the interpreter, from the Lua 5.5.0 source in the shared
#                toolchains (onelua.c, -DLUA_USE_LINUX, symbols exported
#                so that C modules load). Its default paths are this tree,
#                then Debian's 5.4 Lua trees for the modules that are Lua
#                code (busted, penlight, luassert, LuaSocket's Lua half...);
#                never Debian's 5.4 C modules: 5.4's ABI is not 5.5's (a
#                5.4 lfs refuses with "version mismatch", LuaSocket's core
#                crashes, luv and cqueues miss luaL_openlibs)
#   include/     its headers, for `make LUA=lua5.5`
#   lib/         the C modules the suite loads, built for 5.5: lua-cjson
#                (the shared toolchains), and LuaFileSystem, lua-term,
#                LuaSocket (socket.core, mime.core) and cqueues from
#                Debian's source packages (`apt-get source`, through a list
#                of deb-src entries of its own under apt/, made from the
#                system's sources; the system's apt setup is not touched).
#                Two of them need a word for 5.5, said where they are built
#   share/       system.lua: what busted takes from luasystem (gettime,
#                monotime, sleep) from LuaSocket, as Debian's archive
#                serves no luasystem source (spec/support/lua55_system.lua);
#                and copies of the few Lua files of Debian's 5.4 trees that
#                assign to a loop variable, which 5.5 refuses (penlight's,
#                that busted loads), each such loop given `local k = k`
#                (scripts/lua55_loopvars.lua)
#
# Not built: luv, whose source Debian's archive does not serve here; the
# loop specs that need it are pending under 5.5, saying why.
#
# The toolchains are ../shared/toolchains beside the checkout (CI's
# layout), else ../../shared/toolchains (a worktree under wt/), or
# STACKONE_TOOLCHAINS. Everything is built once; `make clean` removes it.
set -eu
cd "$(dirname "$0")/.."

OUT=build/lua5.5
ROOT=$PWD/$OUT
LUA_TAR=lua-5.5.0.tar.gz
CJSON_TAR=lua-cjson-2.1.0.19.tar.gz
# the Debian source packages of the other C modules
DEBIAN_SOURCES="lua-filesystem luasocket lua-term lua-cqueues"
CC=${CC:-cc}
# their warnings are theirs (a 5.5 API they miss fails at load: RTLD_NOW)
MODULE_CFLAGS="-O2 -g -w -fPIC -shared -I$ROOT/include"

toolchains() {
  for dir in ${STACKONE_TOOLCHAINS:-} ../shared/toolchains ../../shared/toolchains; do
    if [ -f "$dir/$LUA_TAR" ]; then
      echo "$dir"
      return 0
    fi
  done
  echo "lua5.5: $LUA_TAR not found in ../shared/toolchains (set STACKONE_TOOLCHAINS)" >&2
  return 1
}

say() { echo "lua5.5: $*" >&2; }

# the interpreter and its headers
build_lua() {
  [ -x "$OUT/bin/lua5.5" ] && return 0
  src=$OUT/src/lua-5.5.0
  rm -rf "$src"
  mkdir -p "$OUT/src" "$OUT/bin" "$OUT/include"
  tar -xzf "$TOOLCHAINS/$LUA_TAR" -C "$OUT/src"
  say "building the interpreter"
  path="$ROOT/share/?.lua;$ROOT/share/?/init.lua;/usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;./?.lua;./?/init.lua"
  cpath="$ROOT/lib/?.so;./?.so"
  "$CC" -O2 -g -std=c99 -DLUA_USE_LINUX \
    "-DLUA_PATH_DEFAULT=\"$path\"" "-DLUA_CPATH_DEFAULT=\"$cpath\"" \
    -Wl,-E -o "$OUT/bin/lua5.5.tmp" "$src/onelua.c" -lm -ldl
  for h in lua.h luaconf.h lualib.h lauxlib.h; do cp "$src/$h" "$OUT/include/"; done
  mv "$OUT/bin/lua5.5.tmp" "$OUT/bin/lua5.5"
}

build_cjson() {
  [ -f "$OUT/lib/cjson.so" ] && return 0
  rm -rf "$OUT/src/lua-cjson-2.1.0.19"
  tar -xzf "$TOOLCHAINS/$CJSON_TAR" -C "$OUT/src"
  src=$OUT/src/lua-cjson-2.1.0.19
  mkdir -p "$OUT/lib"
  # shellcheck disable=SC2086
  "$CC" $MODULE_CFLAGS -o "$OUT/lib/cjson.so" "$src/lua_cjson.c" "$src/strbuf.c" "$src/fpconv.c"
}

# apt-get with deb-src entries made from the system's deb entries
apt_src() {
  conf=$ROOT/apt
  if [ ! -d "$conf/lists" ]; then
    mkdir -p "$conf/parts" "$conf/lists/partial" "$conf/cache/archives/partial"
    : > "$conf/empty.list"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      if [ -f "$f" ]; then sed -n 's/^deb /deb-src /p' "$f"; fi
    done > "$conf/parts/src.list"
    for f in /etc/apt/sources.list.d/*.sources; do
      if [ -f "$f" ]; then sed 's/^Types: *deb *$/Types: deb-src/' "$f" > "$conf/parts/$(basename "$f")"; fi
    done
    apt_get update -qq >&2 || say "apt-get update (deb-src) had errors"
  fi
}
apt_get() {
  apt-get -o Dir::Etc::SourceList="$ROOT/apt/empty.list" \
    -o Dir::Etc::SourceParts="$ROOT/apt/parts" \
    -o Dir::State::Lists="$ROOT/apt/lists" -o Dir::Cache="$ROOT/apt/cache" \
    -o APT::Sandbox::User=root "$@"
}

# unpacks Debian's source of package $1 (its upstream tarball) into
# src/$1/ once
debian_source() {
  dest=$OUT/src/$1
  [ -d "$dest" ] && return 0
  apt_src
  dl=$ROOT/apt/download/$1
  rm -rf "$dl"
  mkdir -p "$dl"
  # the upstream tarball alone (Debian's packaging is not needed)
  if ! (cd "$dl" && apt_get source --download-only --tar-only -qq "$1" >&2); then
    say "apt-get source $1 failed: Debian's source package is needed to build it for 5.5"
    return 1
  fi
  rm -rf "$dest.tmp"
  mkdir -p "$dest.tmp"
  for tarball in "$dl"/*.orig.tar.*; do
    tar -xf "$tarball" -C "$dest.tmp" --strip-components=1
  done
  mv "$dest.tmp" "$dest"
}

build_debian_modules() {
  for pkg in $DEBIAN_SOURCES; do debian_source "$pkg"; done
  mkdir -p "$OUT/lib/socket" "$OUT/lib/mime" "$OUT/lib/term"
  src=$OUT/src
  if [ ! -f "$OUT/lib/lfs.so" ]; then
    # LuaFileSystem 1.8.0 stops at an #error for a Lua past 5.4 where it
    # reads a luaL_Stream, which 5.5 keeps as it was
    sed 's/LUA_VERSION_NUM <= 504/LUA_VERSION_NUM <= 505/' \
      "$src/lua-filesystem/src/lfs.c" > "$src/lua-filesystem/src/lfs55.c"
    # shellcheck disable=SC2086
    "$CC" $MODULE_CFLAGS -I"$src/lua-filesystem/src" -o "$OUT/lib/lfs.so" "$src/lua-filesystem/src/lfs55.c"
  fi
  if [ ! -f "$OUT/lib/term/core.so" ]; then
    # shellcheck disable=SC2086
    "$CC" $MODULE_CFLAGS -o "$OUT/lib/term/core.so" "$src/lua-term/core.c"
  fi
  s=$src/luasocket/src
  if [ ! -f "$OUT/lib/socket/core.so" ]; then
    # shellcheck disable=SC2086
    "$CC" $MODULE_CFLAGS -DLUASOCKET_NODEBUG -o "$OUT/lib/socket/core.so" \
      "$s/luasocket.c" "$s/timeout.c" "$s/buffer.c" "$s/io.c" "$s/auxiliar.c" "$s/compat.c" \
      "$s/options.c" "$s/inet.c" "$s/usocket.c" "$s/except.c" "$s/select.c" "$s/tcp.c" "$s/udp.c"
  fi
  if [ ! -f "$OUT/lib/mime/core.so" ]; then
    # shellcheck disable=SC2086
    "$CC" $MODULE_CFLAGS -o "$OUT/lib/mime/core.so" "$s/mime.c" "$s/compat.c"
  fi
  [ -f "$OUT/lib/_cqueues.so" ] || build_cqueues
}

# cqueues with its own makefile, for "5.4" with 5.5's headers: its
# compat-5.3 header stops at an #error past 5.4, and it uses
# lua_pushunsigned, a 5.2 macro that 5.5's luaconf.h no longer offers
build_cqueues() {
  cq=$OUT/src/lua-cqueues
  sed -i 's/LUA_VERSION_NUM > 504/LUA_VERSION_NUM > 505/' "$cq/vendor/compat53/c-api/compat-5.3.h"
  echo '#define lua_pushunsigned(L, n) lua_pushinteger((L), (lua_Integer)(n))' > "$cq/lua55.h"
  say "building cqueues"
  # (not the variables of a `make` this runs under, such as LUA=)
  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$cq" all5.4 CC="$CC" LUA54_CPPFLAGS="-I$ROOT/include -include $ROOT/src/lua-cqueues/lua55.h" \
    > "$OUT/cqueues-build.log" 2>&1 || { tail -n 20 "$OUT/cqueues-build.log" >&2; return 1; }
  cp "$cq/src/5.4/cqueues.so" "$OUT/lib/_cqueues.so"
}

TOOLCHAINS=$(toolchains)
build_lua
build_cjson
build_debian_modules
mkdir -p "$OUT/share"
cp spec/support/lua55_system.lua "$OUT/share/system.lua"
"$OUT/bin/lua5.5" scripts/lua55_loopvars.lua "$OUT/share" /usr/share/lua/5.4 >&2
# the check that all of it loads
"$OUT/bin/lua5.5" -e 'for _, m in ipairs{ "cjson", "lfs", "term", "socket.http", "mime", "system", "cqueues" } do
  require(m)
  end
  assert(package.searchpath("busted.runner", package.path))'
