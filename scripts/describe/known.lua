--- What the editor types and the reference say that neither the module's
-- exports (stackone.operations, core.options, core.custom_field_fields)
-- nor the vendored OpenAPI spec hold: the Lua types and meaning of
-- options, of the error object and of the response, and the module's own
-- functions. This is the one table of such knowledge: describe/model.lua
-- fails when the exports name something it does not describe (a new
-- client option, a new field of an operation) or when it describes
-- something the exports no longer have.
--
-- Types are LuaCATS expressions. In those of `args`, `calls`, `bulk_roles`,
-- `bulk_result` and `page`, {body}, {query}, {record}, {page}, {item},
-- {result} and {iterator} stand for the types the generator makes for the
-- operation at hand.
local K = {}

-- one entry: { name, type, doc }; `opt` marks a field that may be absent
local function f(name, type, doc, opt) return { name = name, type = type, doc = doc, opt = opt } end

--- the options tables, by core.options key: class name and intro. Each
-- option's type, doc, range and default are its row in src/options.c
-- (core.option_rows)
K.options = {
  client = { class = "stackone.ClientOptions", title = "Client options: `stackone.new{...}`" },
  call = { class = "stackone.CallOptions", title = "Per-call options: the last argument of every call" },
  bulk = { class = "stackone.BulkOptions", parent = "stackone.CallOptions",
    title = "Bulk options: `create_many` and `update_many` (the per-call options apply to every record)" },
  retry = { class = "stackone.RetryOptions", title = "Retry options: `retry = {...}` of the client or a call" },
  rate_limit = { class = "stackone.RateLimitOptions", title = "Rate limit options: `rate_limit = {...}`" },
}

--- the arguments of operations, by the names in op.args
K.args = {
  id = { type = "string", doc = "The record's id (percent-encoded into the path; \"\", \".\" and \"..\" are "
    .. "refused)" },
  fields = { type = "{body}", doc = "The fields to send, checked against the spec's types before sending" },
  query = { type = "{query}", opt = true, doc = "Query parameters" },
  opts = { type = "stackone.CallOptions", opt = true, doc = "Per-call options" },
}

--- what each form of call returns ({ type, name, doc }), and what the
-- added forms do
K.calls = {
  single = { returns = { { "{record}?", "record", "The decoded record, or nil on failure" },
    { "stackone.Response|stackone.Error", "res", "The response, or the error object when the record is nil" } } },
  page = { returns = { { "{page}?", "page", "One page of records, or nil on failure" },
    { "stackone.Response|stackone.Error", "res", "The response, or the error object when the page is nil" } } },
  each = { doc = "Every record of every page, for a generic `for`: follows `next` until it is empty, with the "
      .. "same parameters on every page, one page in memory at a time",
    returns = { { "{iterator}", "iterator", "Gives each record (and its index in its page); raises the error "
      .. "object when a page fails" } } },
  many = { doc = "Many records at once, over reused connections: each item is checked first, and one bad item "
      .. "never stops the others",
    items = { "items", "{item}[]", "A sequence 1..n" },
    opts = { "opts?", "stackone.BulkOptions", "Bulk and per-call options" },
    returns = { { "{result}[]?", "results", "`results[i]` is the outcome of `items[i]`; nil when the items are "
      .. "refused as a whole" },
    { "stackone.BulkSummary|stackone.Error", "summary", "The counts, or the error object when results is nil" } } },
  refresh = { doc = "Forgets the definitions read for custom fields by name (for `opts.account_id`, or every "
      .. "account) and reads them again",
    returns = { { "{record}[]?", "definitions", "Every definition" },
      { "stackone.Error?", "err", "The error object when they could not be read" } } },
}

--- custom fields by name, on operations whose description names a list of
-- definitions (op.custom_fields): %s is that list, %s its refresh
K.custom_fields = "`custom_fields` may also be a map `{ [name or id] = value }`: it is resolved against the "
  .. "account's definitions from %s (read once per client and account; %s reads them again). A value is "
  .. "checked against its definition's type and options, and an unknown name is `nil, err` (kind `invalid`) "
  .. "before anything is sent. An entry of the array form:"

--- the iterator `each` returns
K.iterator = "fun(): {record}?, integer?"

--- how each wire style puts a parameter in the query string
K.styles = { form = "`%s=...`", deepObject = "`%s[key]=...`" }

--- the bulk forms' item roles (the keys of op.bulk besides public_name)
K.bulk_roles = {
  id = { type = "string", doc = "The id of the record to change" },
  fields = { type = "{body}", doc = "The fields to send for it" },
}

--- the keys of stackone.operations entries, their parameters and body fields
K.description = {
  { class = "stackone.Operation", title = "An operation, as `stackone.operations[i]`", fields = {
    f("index", "integer", "Its position in `stackone.operations`"),
    f("api", "\"crm\"|\"platform\"", "The API it belongs to (its spec)"),
    f("namespace", "string", "The client's member holding its group (`\"crm\"`); absent for the platform's, "
      .. "whose groups are the client's members", true),
    f("account", "boolean", "Whether its requests carry `x-account-id` (the CRM's)"),
    f("reply", "\"data\"|\"bare\"|\"array\"", "What a success answers: the record in `data` (pages: "
      .. "`{ data, next }`), the record itself, or a bare array of records (pages numbered by `page`)"),
    f("group", "string", "The group in its namespace (`\"contacts\"`)"),
    f("group_name", "string", "The group's public name (`\"crm.contacts\"`, `\"accounts\"`)"),
    f("name", "string", "The function's name in its group (`\"create\"`)"),
    f("public_name", "string", "`crm.<group>.<name>` (the platform's: `<group>.<name>`), the name errors give"),
    f("operation_id", "string", "The spec's operationId"),
    f("method", "string", "The HTTP method"),
    f("path", "string", "The URL path, with `{id}`"),
    f("kind", "\"create\"|\"get\"|\"update\"|\"list\"|\"read\"|\"delete\"", "The call shape"),
    f("args", "string[]", "The positional arguments: `id`, `fields`, `query`, `opts`"),
    f("page", "boolean", "Whether it returns a page `{ data, next }`"),
    f("query", "string[]", "The names of its query parameters"),
    f("parameters", "stackone.OperationParameter[]", "Its query parameters"),
    f("fields", "string[]", "The names of its body fields", true),
    f("body", "stackone.OperationField[]", "Its body fields", true),
    f("body_schema", "string", "The spec schema of its body", true),
    f("returns", "string", "The spec schema of its 2xx response (of its items, for a bare array)"),
    f("bulk", "stackone.OperationBulk", "Its `_many` form", true),
    f("custom_fields", "string", "The operationId of the list that defines custom fields by name", true),
    f("each", "string", "The public name of its `each` (list operations)", true),
    f("refresh", "string", "The public name of its `refresh` (the definitions list)", true),
  } },
  { class = "stackone.OperationParameter", title = "A query parameter of an operation", fields = {
    f("name", "string", "Its name"),
    f("type", "string", "The spec's type"),
    f("format", "string", "The spec's format", true),
    f("style", "\"form\"|\"deepObject\"", "How it goes on the wire"),
    f("accepts", "string", "The Lua values it takes, as a LuaCATS type (nil for filter)", true),
    f("minimum", "integer", "The least value", true),
    f("maximum", "integer", "The greatest value", true),
    f("keys", "stackone.OperationParameter[]", "The keys of a filter", true),
    f("values", "string[]", "The values it takes, when the spec lists them", true),
    f("items", "string", "The spec's type of its items (an array, its key repeated on the wire)", true),
  } },
  { class = "stackone.OperationField", title = "A body field of an operation", fields = {
    f("name", "string", "Its name"),
    f("type", "string", "The spec's type", true),
    f("items", "string", "The spec's type of its items", true),
    f("accepts", "string", "The Lua values it takes, as a LuaCATS type"),
    f("values", "string[]", "The strings it (or each of its items) takes, when the spec lists them", true),
    f("fields", "stackone.OperationField[]", "The fields of its objects (custom_fields' entries)", true),
    f("required", "boolean", "True when a body without it is refused before sending", true),
  } },
  { class = "stackone.OperationBulk", title = "The `_many` form of an operation", fields = {
    f("id", "string", "The key of an item's id (update_many)", true),
    f("fields", "string", "The key of an item's fields (update_many)", true),
    f("public_name", "string", "`crm.<group>.<name>_many`"),
  } },
}

--- the result tables: the response, the error object, bulk outcomes
K.results = {
  { class = "stackone.Response", title = "The response: the second value of a success", fields = {
    f("status", "integer", "The HTTP status (any 2xx)"),
    f("headers", "table<string, string>", "The response headers, by lower-case name (read from the "
      .. "response when first used, so `pairs(response)` lists `headers` only after that)"),
    f("raw", "stackone.RawResponse[]", "The provider calls, with the query parameter `raw = true`", true),
    f("attempts", "integer", "How many requests were made"),
    f("debug_error", "any", "The first error the `debug` function raised", true),
    f("limit_error", "string", "What the shared rate limit store said when it failed during the call (the "
      .. "call went on under this process's own limit)", true),
  } },
  { class = "stackone.Error", title = "The error object: `nil, err`; `tostring(err)` is one line", fields = {
    f("kind", "stackone.ErrorKind", "What failed"),
    f("code", "string", "A stable code: `\"HTTP_422\"`, libcurl's name such as `\"COULDNT_CONNECT\"`, "
      .. "`\"DECODE\"`, `\"TOO_LARGE\"`, `\"INVALID\"`, `\"CLOSED\"`, `\"INTERRUPTED\"`, `\"FORKED\"`; a journal's "
      .. "`\"JOURNAL_OPEN\"`, `\"JOURNAL_WRITE\"`, `\"JOURNAL_DAMAGED\"`, `\"JOURNAL_MISMATCH\"`, "
      .. "`\"AMBIGUOUS\"`, `\"UNRECONCILED\"`"),
    f("message", "string", "The server's `message`, or what went wrong"),
    f("method", "string", "The request's HTTP method (absent on the errors of `stackone.new`)", true),
    f("path", "string", "The operation's path (absent on the errors of `stackone.new`)", true),
    f("url", "string", "The request's URL (it never holds credentials)", true),
    f("status", "integer", "The HTTP status, when a response came", true),
    f("headers", "table<string, string>", "The response headers, when a response came", true),
    f("body", "stackone.ErrorBody", "The decoded error JSON", true),
    f("text", "string", "The start of a body that was not JSON", true),
    f("curl_code", "integer", "libcurl's numeric code, for transport failures", true),
    f("attempts", "integer", "How many requests were made (0 when nothing was sent)"),
    f("maybe_applied", "boolean", "True when the server may have acted on the request although the call failed "
      .. "(a 408 or 5xx, a timeout or a connection lost after sending)", true),
    f("retry_after", "number", "The seconds a `Retry-After` header asked for", true),
    f("results", "stackone.BulkResult[]", "An interrupted bulk call's results so far", true),
    f("summary", "stackone.BulkSummary", "An interrupted bulk call's summary", true),
    f("cause", "any", "What the `sleep` function or the loop raised (kind `interrupted`)", true),
    f("debug_error", "any", "The first error the `debug` function raised", true),
    f("limit_error", "string", "What the shared rate limit store said when it failed during the call (the "
      .. "call went on under this process's own limit)", true),
  } },
  { class = "stackone.BulkSummary", title = "The summary of a bulk call", fields = {
    f("ok", "integer", "Records that succeeded"),
    f("failed", "integer", "Records that failed"),
    f("attempts", "integer", "Requests made in all"),
    f("elapsed", "number", "Seconds the batch took"),
    f("stopped", "boolean", "True when the batch was stopped early", true),
    f("progress_error", "any", "The error `on_progress` raised", true),
    f("debug_error", "any", "The first error the `debug` function raised", true),
    f("skipped", "integer", "With a journal: records it knew were applied, not sent again (counted in `ok`)",
      true),
    f("reconciled", "integer", "With a journal: records that may have been applied in an earlier run, found on "
      .. "the server (counted in `ok`)", true),
    f("sent", "integer", "With a journal: records sent in this run", true),
    f("journal_error", "stackone.Error", "With a journal: an outcome could not be written (the next run "
      .. "reconciles that record)", true),
    f("limit_error", "string", "What the shared rate limit store said when it failed during the call (the "
      .. "call went on under this process's own limit)", true),
  } },
  { class = "stackone.BulkWait", title = "Why a bulk call waits (`on_progress`'s fourth argument)", fields = {
    f("reason", "\"rate_limit\"|\"retry_after\"", "The rate limiter, or a `Retry-After` pause"),
    f("seconds", "number", "How long"),
  } },
}

--- the fields of one bulk outcome, `results[i]`; {record}: the operation's
K.bulk_result = {
  f("record", "{record}", "The record, when it succeeded", true),
  f("err", "stackone.Error", "The error object, when it failed", true),
  f("skipped", "boolean", "With a journal: applied in an earlier run; `record` holds its `id` only", true),
  f("reconciled", "boolean", "With a journal: it may have been applied in an earlier run and was found on the "
    .. "server; `record` is what the server holds", true),
}

--- a page of a list: `{ data, next }` (the C core builds it)
K.page = {
  f("data", "{record}[]", "The records of this page"),
  f("next", "string", "The cursor of the next page; absent on the last one", true),
}

--- a page of a list numbered by `page` (a bare array on the wire)
K.page_numbered = {
  f("data", "{record}[]", "The records of this page"),
  f("next", "integer", "The number of the next page, while this one came back full; absent on the last one",
    true),
}

--- the words of the reference's "retried" column; which statuses are
-- retried is core.statuses (src/statuses.c). A status retried when the
-- method is safe to repeat is not resent for these methods unless
-- `retry = { maybe_applied = true }` (src/retry.c)
K.retried = {
  not_resent = { POST = true, DELETE = true },
  post = "no: `err.maybe_applied = true` (retried with `retry = { maybe_applied = true }`)",
  yes = "yes",
  yes_always = "yes (the request was not processed)",
  no = "no",
}

--- the module's members: a field { type, doc } or a function
-- { params = { { name, type, doc } }, returns = { { type, name, doc } }, doc }
K.module = {
  _VERSION = { type = "string", doc = "The SDK's version" },
  null = { type = "stackone.null", doc = "Send an explicit JSON null: `{ first_name = stackone.null }`" },
  operations = { type = "stackone.Operation[]", doc = "Every operation of the API, as data" },
  loop = { type = "stackone.loop", doc = "Adapters for the client option `loop`" },
  limit = { type = "stackone.limit", doc = "Stores for `rate_limit.shared`: one budget for many processes "
    .. "(docs/limits.md)" },
  new = { doc = "Makes a client. Programmer errors (an unknown option, no API key) raise; bad content gives "
      .. "nil, err",
    params = { { "opts", "stackone.ClientOptions", "The client's options" } },
    returns = { { "stackone.Client?", "client" }, { "stackone.Error?", "err" } } },
  assert = { doc = "`assert(call(...))` on every Lua: the call's results when it succeeded, else raises its "
      .. "error object itself (Lua 5.1 and 5.2's own `assert` takes only a string message)",
    generic = "T", params = { { "value", "T?", "A call's first result" }, { "err", "any", "Its second: the "
      .. "response, or the error object" } },
    returns = { { "T" }, { "any", "second" } } },
  is_error = { doc = "Whether x is an error object",
    params = { { "x", "any" } }, returns = { { "boolean" } } },
  array = { doc = "Marks a table as a JSON array, so that an empty one goes out as `[]`",
    generic = "T: table", params = { { "t?", "T", "The table (default: a new one)" } }, returns = { { "T" } } },
  custom_field = { doc = "The value of a returned record's custom field, by id or name",
    params = { { "record", "table" }, { "name_or_id", "string" } }, returns = { { "any" } } },
  custom_fields = { doc = "A returned record's custom fields as `{ [name] = value }`",
    params = { { "record", "table" } }, returns = { { "table<string, any>" } } },
}

--- stackone.loop's adapters
K.loop = {
  luv = { doc = "An adapter for luv and Neovim's `vim.uv`", params = { { "uv", "table", "require(\"luv\")" } },
    returns = { { "stackone.LoopAdapter" } } },
  neovim = { doc = "An adapter for Neovim's own loop (`vim.uv`, or `vim.loop` before 0.10): calls resume "
    .. "through `vim.schedule`, so the code after a call may use `vim.api`", params = {},
    returns = { { "stackone.LoopAdapter" } } },
  cqueues = { doc = "An adapter for cqueues: calls are made from coroutines the controller runs",
    params = { { "controller?", "table", "A cqueues controller" } }, returns = { { "stackone.LoopAdapter" } } },
}

--- stackone.limit's stores
K.limit = {
  redis = { doc = "A budget in Redis, for processes on any machines: one script run in Redis a decision",
    params = { { "conn", "table|fun(): table?, string?", "A Redis client with `eval` and `evalsha` (lua-redis, "
      .. "lua-resty-redis, ...), or a function that connects (again after an error or a fork)" },
      { "opts?", "{ prefix: string? }", "`prefix` of the keys (default `\"stackone:budget:\"`)" } },
    returns = { { "stackone.LimitStore" } } },
  host = { doc = "A budget for the processes of one machine: a file read and written under a lock",
    params = { { "opts?", "{ dir: string? }", "Where the files go (default `$XDG_RUNTIME_DIR`, else `/tmp`)" } },
    returns = { { "stackone.LimitStore" } } },
  ngx = { doc = "A budget for nginx's workers and their thread VMs: an nginx `lua_shared_dict`; in "
      .. "`stackone.nginx`'s client options, `shared = { ngx = \"name\" }`",
    params = { { "dict", "table|string", "The dictionary (`ngx.shared.NAME`) or its name" } },
    returns = { { "stackone.LimitStore" } } },
}

--- the store contract (docs/limits.md)
K.store = {
  { name = "update", doc = "Take places, record sends, free places given back, set a pause, atomically; "
      .. "returns how many of `change.take` it granted and, when fewer, the seconds until one may free "
      .. "(or nil, err)",
    params = { { "budget", "string", "The budget's name" }, { "change", "stackone.LimitChange" } } },
}

--- a loop adapter's methods (docs/hosts.md), called by the engine
K.adapter = {
  { name = "io", doc = "Start, change or stop watching a socket; call `on_ready` from the loop when it is ready",
    params = { { "fd", "integer" }, { "events", "\"r\"|\"w\"|\"rw\"|nil", "nil: stop" },
      { "on_ready", "fun(fd: integer, readable: boolean?, writable: boolean?)" } } },
  { name = "timer", doc = "Arm the engine's one timer; nil cancels it",
    params = { { "seconds", "number?" }, { "on_timeout", "fun()" } } },
  { name = "wait", doc = "Called in the call's coroutine: suspend it until `wake` or until `seconds` pass",
    params = { { "co", "thread" }, { "seconds", "number?", "nil: no limit" } } },
  { name = "wake", doc = "End `co`'s wait: resume it soon, preferably from the loop; nothing when it already ended",
    params = { { "co", "thread" } } },
  { name = "close", doc = "Optional: the client closed; free what the adapter made for it (its timers)",
    params = {} },
}

--- the client: its members besides the groups
K.client = {
  doc = "A client, made by `stackone.new`. A handle in the style of Lua's files: close it with `client:close()`, "
    .. "`<close>` (5.4) or let the garbage collector do it",
  close = { doc = "Frees the client's connections; calls in flight end with kind `closed`. Idempotent" },
  --- the client's methods that an account view has too, in this order
  methods = {
    { name = "with_account", doc = "A view of the client bound to one linked account: its CRM calls send that "
        .. "`x-account-id` (a call's own `account_id` wins); it shares the client's connections, rate limiter and "
        .. "caches (custom field definitions stay per account). One view per id",
      params = { { "id", "string", "The linked account's id" } },
      returns = { { "stackone.AccountView" } } },
    { name = "run_all", doc = "Runs the functions at once, `concurrency` at a time: the calls each makes overlap "
        .. "on the client's engine, in a plain blocking script (with a `loop`, from a coroutine the loop resumes). "
        .. "An error in one never stops the others",
      params = { { "fns", "(fun(): any, any)[]", "The functions; a `nil, err` return counts as an error" },
        { "opts?", "stackone.FanOptions" } },
      returns = { { "stackone.FanResult[]", "results", "`results[i]`: what `fns[i]` returned, or its error" },
        { "stackone.FanSummary", "summary" } } },
    { name = "for_each_account", doc = "Runs `fn(account, view)` for every linked account `query` selects "
        .. "(`accounts.each`), as `run_all` does; `view` is `client:with_account(account.id)`",
      params = { { "query", "stackone.PlatformAccountsListQuery?", "Which linked accounts (`status`, "
          .. "`providers`, ...)" },
        { "fn", "fun(account: stackone.LinkedAccount, view: stackone.AccountView): any, any",
          "The work of one account" },
        { "opts?", "stackone.FanOptions" } },
      returns = { { "stackone.FanResult[]?", "results", "One per account, with `account`; nil when the accounts "
          .. "could not be listed" },
        { "stackone.FanSummary|stackone.Error", "summary", "The counts, or the error object of the listing" } } },
  },
  view = "An account view (`client:with_account(id)`): the client's groups, whose CRM calls send the view's "
    .. "account id, and the client's methods but `close`",
}

--- run_all's and for_each_account's tables
K.fan = {
  { class = "stackone.FanOptions", title = "Options of `run_all` and `for_each_account`", fields = {
    f("concurrency", "integer", "Functions running at once, 1 to 64 (default 4)", true),
    f("on_progress", "fun(done: integer, total: integer, failed: integer)", "Called as each function ends; an "
      .. "error it raises is `summary.progress_error`", true),
  } },
  { class = "stackone.FanResult", title = "One outcome of `run_all` or `for_each_account`: `results[i]`", fields = {
    f("value", "any", "What the function returned, when it succeeded", true),
    f("err", "any", "What it raised, or the `err` of its `nil, err`", true),
    f("account", "stackone.LinkedAccount", "The linked account (`for_each_account`)", true),
  } },
  { class = "stackone.FanSummary", title = "The summary of `run_all` or `for_each_account`", fields = {
    f("ok", "integer", "Functions that succeeded"),
    f("failed", "integer", "Functions that failed"),
    f("elapsed", "number", "Seconds it took"),
    f("progress_error", "any", "The error `on_progress` raised", true),
  } },
}

return K
