rockspec_format = "3.0"
package = "stackone"
version = "scm-1"
source = {
  url = "git+https://github.com/stackone-lua/stackone-lua.git",
}
description = {
  summary = "StackOne unified CRM API client: a libcurl C module with a thin Lua layer",
  detailed = [[
Create, read, update and list StackOne CRM contacts, accounts, lists and
custom field definitions from Lua 5.4. Transport, auth, timeouts, URL and
JSON handling live in a C module on libcurl; results are plain Lua tables,
failures are `nil, err` with a structured error object.
]],
  license = "MIT",
  labels = { "stackone", "crm", "http", "libcurl", "api" },
}
dependencies = {
  "lua >= 5.4",
  "lua-cjson >= 2.1.0",
}
test_dependencies = {
  "busted",
  "luasocket",
}
external_dependencies = {
  CURL = { header = "curl/curl.h" },
}
build = {
  type = "builtin",
  modules = {
    ["stackone"] = "lua/stackone/init.lua",
    ["stackone.paging"] = "lua/stackone/paging.lua",
    ["stackone.custom_fields"] = "lua/stackone/custom_fields.lua",
    ["stackone.engine"] = "lua/stackone/engine.lua",
    ["stackone.compat"] = "lua/stackone/compat.lua",
    ["stackone.loop"] = "lua/stackone/loop/init.lua",
    ["stackone.loop.luv"] = "lua/stackone/loop/luv.lua",
    ["stackone.loop.cqueues"] = "lua/stackone/loop/cqueues.lua",
    ["stackone.core"] = {
      sources = {
        "src/bigint.c", "src/buffer.c", "src/client.c", "src/core.c", "src/engine.c", "src/errors.c", "src/job.c",
        "src/json.c", "src/luax.c", "src/ops.c", "src/request.c", "src/result.c", "src/retry.c",
        "src/start.c", "src/transport.c", "src/url.c",
      },
      libraries = { "curl" },
      incdirs = { "$(CURL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)" },
    },
  },
}
test = {
  type = "command",
  command = "make test",
}
