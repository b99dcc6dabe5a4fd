rockspec_format = "3.0"
package = "stackone"
version = "0.1.0-1"
source = {
  url = "git+https://github.com/stackone-lua/stackone-lua.git",
  tag = "v0.1.0",
}
description = {
  summary = "StackOne unified CRM API client: a libcurl C module with a thin Lua layer",
  detailed = [[
Create, read, update and list StackOne CRM contacts, accounts, lists and
custom field definitions from Lua 5.1, 5.2, 5.3, 5.4, 5.5 and LuaJIT.
Transport, auth, timeouts, URL and JSON handling live in a C module on
libcurl (7.80 or newer, with its development files: libcurl4-openssl-dev
on Debian and Ubuntu, libcurl-devel on Fedora); results are plain Lua
tables, failures are `nil, err` with a structured error object. The rock
also installs the examples and `stackone-server`, a local
StackOne-compatible server to test scripts against (it needs LuaSocket).
]],
  homepage = "https://github.com/stackone-lua/stackone-lua",
  issues_url = "https://github.com/stackone-lua/stackone-lua/issues",
  license = "MIT",
  labels = { "stackone", "crm", "http", "libcurl", "api" },
}
dependencies = {
  "lua >= 5.1, < 5.6",
  "lua-cjson >= 2.1.0",
}
-- busted runs the suite; LuaSocket runs the local server (stackone-server)
-- that the suite and users' own tests talk to. The SDK needs neither.
test_dependencies = {
  "busted",
  "luasocket",
}
external_dependencies = {
  -- Each platform checks what it can find. LuaRocks looks for headers
  -- only under <prefix>/include, but Debian and Ubuntu keep curl/curl.h in
  -- /usr/include/<multiarch triplet> and macOS in the Xcode SDK, where only
  -- the compiler looks: there the compiler finds the header by itself.
  -- CURL_DIR, CURL_INCDIR and CURL_LIBDIR work everywhere.
  platforms = {
    unix = { CURL = {} },                           -- any Unix: no check, the compiler finds libcurl
    linux = { CURL = { library = "curl" } },        -- libcurl.so* under lib, lib/<triplet>, lib64
    freebsd = { CURL = { library = "curl" } },
    openbsd = { CURL = { library = "curl" } },
    netbsd = { CURL = { library = "curl" } },
    windows = { CURL = { header = "curl/curl.h" } }, -- pass CURL_DIR (vcpkg, the curl for Windows zip)
  },
}
build = {
  type = "builtin",
  modules = {
    ["stackone"] = "lua/stackone/init.lua",
    ["stackone.fanout"] = "lua/stackone/fanout.lua",
    ["stackone.paging"] = "lua/stackone/paging.lua",
    ["stackone.public"] = "lua/stackone/public.lua",
    ["stackone.custom_fields"] = "lua/stackone/custom_fields.lua",
    ["stackone.journal"] = "lua/stackone/journal.lua",
    ["stackone.engine"] = "lua/stackone/engine.lua",
    ["stackone.compat"] = "lua/stackone/compat.lua",
    ["stackone.loop"] = "lua/stackone/loop/init.lua",
    ["stackone.loop.luv"] = "lua/stackone/loop/luv.lua",
    ["stackone.loop.cqueues"] = "lua/stackone/loop/cqueues.lua",
    ["stackone.loop.check"] = "lua/stackone/loop/check.lua",
    ["stackone.nginx"] = "lua/stackone/nginx.lua",
    ["stackone.nginx.thread"] = "lua/stackone/nginx/thread.lua",
    ["stackone.nginx.crossing"] = "lua/stackone/nginx/crossing.lua",
    ["stackone.limit"] = "lua/stackone/limit/init.lua",
    ["stackone.limit.budget"] = "lua/stackone/limit/budget.lua",
    ["stackone.limit.window"] = "lua/stackone/limit/window.lua",
    ["stackone.limit.redis"] = "lua/stackone/limit/redis.lua",
    ["stackone.limit.host"] = "lua/stackone/limit/host.lua",
    ["stackone.limit.ngx"] = "lua/stackone/limit/ngx.lua",
    ["stackone.core"] = {
      sources = {
        "src/bigint.c",
        "src/buffer.c",
        "src/ca_bundle.c",
        "src/chunks.c",
        "src/client.c",
        "src/core.c",
        "src/engine.c",
        "src/errors.c",
        "src/fits.c",
        "src/forkwatch.c",
        "src/job.c",
        "src/journal.c",
        "src/json.c",
        "src/json_pieces.c",
        "src/limit.c",
        "src/limiter.c",
        "src/lockfile.c",
        "src/luax.c",
        "src/ops.c",
        "src/options.c",
        "src/request.c",
        "src/result.c",
        "src/retry.c",
        "src/start.c",
        "src/statuses.c",
        "src/transport.c",
        "src/url.c",
      },
      libraries = { "curl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
    -- the local server's modules (server/stackone_server.lua is the command)
    ["stackone.server.app"] = "server/app.lua",
    ["stackone.server.compat"] = "server/compat.lua",
    ["stackone.server.control"] = "server/control.lua",
    ["stackone.server.crm"] = "server/crm.lua",
    ["stackone.server.faults"] = "server/faults.lua",
    ["stackone.server.http"] = "server/http.lua",
    ["stackone.server.ids"] = "server/ids.lua",
    ["stackone.server.isotime"] = "server/isotime.lua",
    ["stackone.server.json"] = "server/json.lua",
    ["stackone.server.loop"] = "server/loop.lua",
    ["stackone.server.paging"] = "server/paging.lua",
    ["stackone.server.platform"] = "server/platform.lua",
    ["stackone.server.reply"] = "server/reply.lua",
    ["stackone.server.schema"] = "server/schema.lua",
    ["stackone.server.seed"] = "server/seed.lua",
    ["stackone.server.validate"] = "server/validate.lua",
  },
  install = {
    bin = {
      ["stackone-server"] = "server/stackone_server.lua",
    },
  },
  -- into the rock's directory: `luarocks show stackone` prints where;
  -- types/ holds the editor types (LuaCATS), docs/ the API reference
  copy_directories = { "examples", "types", "docs" },
}
-- the busted suite for the Lua that runs `luarocks test`, against the
-- local server; nothing else (no apt, npm, valgrind or fuzzers)
test = {
  type = "command",
  script = "spec/support/luarocks_test.lua",
}
