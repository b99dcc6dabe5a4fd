/*
** stackone.h: declarations shared by the C files of stackone.core.
** Only luaopen_stackone_core is exported; everything here is hidden.
*/
#ifndef STACKONE_H
#define STACKONE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>
/* a missing libcurl header says which package brings it */
#if defined(__has_include)
#if !__has_include(<curl/curl.h>)
#error "curl/curl.h not found: install libcurl's development files (Debian, Ubuntu: libcurl4-openssl-dev; Fedora: libcurl-devel; macOS: the Xcode Command Line Tools or brew install curl), or pass CURL_DIR / CURL_INCDIR to luarocks"
#endif
#endif
#include <curl/curl.h>
#include <lua.h>
#include <lauxlib.h>

#include "compat.h"

#define SO_VERSION "0.1.0"
#define SO_CLIENT_MT "stackone.client"
#define SO_ERROR_MT "stackone.error"
#define SO_USAGE_MT "stackone.usage"
#define SO_ARRAY_MT "stackone.array"
#define SO_MAX_REQUEST_BYTES (16 * 1024 * 1024)

/* libcurl 7.80 brought CURLOPT_PREREQFUNCTION: the engine refuses
   libcurl's own resends with it */
#if LIBCURL_VERSION_NUM < 0x075000
#error "stackone-lua needs libcurl 7.80.0 or newer"
#endif

#if defined(__GNUC__)
#define SO_HIDDEN __attribute__((visibility("hidden")))
#else
#define SO_HIDDEN
#endif

/* user values of a client handle */
#define SO_UV_HEADERS 1 /* client-wide headers: { [lower name] = "Name: v" } */
#define SO_UV_HOOKS 2   /* { sleep = f, debug = f, limiter = userdata, loop = t } */
#define SO_UV_URLS 3    /* { [operation] = URL } of operations without an id or
                           a query: built once (start.c) */
#define SO_UV_SPARE_JOB 4 /* a one-record job _call finished, for the next
                             call to use again (job.c) */
#define SO_CLIENT_UV_COUNT 4

/* upvalue 1 of every module function: the module state table */
#define SO_STATE lua_upvalueindex(1)
/* the module state's slots read on every call, by integer key */
enum {
  SO_S_ENCODE = 1,    /* the private cjson's encode and decode */
  SO_S_DECODE,
  SO_S_RESPONSE_MT,   /* the metatable of responses (result.c) */
  SO_S_HEADER_BLOCKS  /* { [response] = header block }, weak keys */
};

/* ---- buffer.c: a growable byte buffer owned by C ---- */
typedef struct so_buf {
  char *data;
  size_t len, cap;
  int oom; /* an append failed: the content is incomplete */
} so_buf;

SO_HIDDEN int so_buf_append(so_buf *b, const void *p, size_t n);
SO_HIDDEN void so_buf_reset(so_buf *b);
SO_HIDDEN void so_buf_free(so_buf *b);
SO_HIDDEN void so_buf_keep(so_buf *b, size_t n);
#define SO_BUF_MT "stackone.buffer"
SO_HIDDEN so_buf *so_buf_push(lua_State *L);

/* ---- ops.c: the API described once, as data. The C checks, URLs,
   bodies, results and the Lua surface (core.operations) all come from
   these rows ---- */
typedef enum { /* body field types */
  SO_T_STRING,        /* string or stackone.null; one of `values` if any */
  SO_T_STRING_ARRAY,  /* array of strings, each one of `values` if any */
  SO_T_OBJECT_ARRAY,  /* array of objects with the keys in `fields` */
  SO_T_OBJECT,        /* a JSON object: any keys, or those in `fields` */
  SO_T_NUMBER,        /* a number */
  SO_T_BOOLEAN,       /* true or false */
  SO_T_ANY            /* any JSON value */
} so_type;

typedef struct so_field {
  const char *name;
  so_type type;
  const struct so_field *fields; /* nested rows, NULL-name ended: an
                                    object's keys, or an array's objects' */
  const char *const *values;     /* the strings allowed, NULL ended */
  int required;                  /* the object must have it */
  const char *schema;            /* the spec's name of the objects of
                                    `fields` (e.g. "CustomFields"), or NULL */
} so_field;

typedef enum { /* query parameter types; each has one wire style */
  SO_Q_STRING,    /* form: a string, one of `values` if any */
  SO_Q_DATE_TIME, /* form: a date-time string */
  SO_Q_CURSOR,    /* form: a string; "" is no cursor and is not sent */
  SO_Q_PAGE,      /* form: a string or a whole number */
  SO_Q_PAGE_SIZE, /* form: a whole number from 1 to 100, or its digits */
  SO_Q_BOOLEAN,   /* form: true or false */
  SO_Q_NAMES,     /* form, one value: "a,b" or { "a", "b" } */
  SO_Q_OBJECT,    /* deepObject: proxy[a][b]=c, nested to any depth */
  SO_Q_FILTER,    /* deepObject: filter[key]=value, the keys in `keys` */
  SO_Q_NUMBER,    /* form: a whole number from 1 (the spec's number) */
  SO_Q_NUMBER_SIZE, /* form: SO_Q_PAGE_SIZE, the spec's number */
  SO_Q_STRINGS    /* form, exploded: "a" or { "a", "b" } as k=a&k=b */
} so_qtype;

typedef struct so_param {
  const char *name;
  so_qtype type;
  const struct so_param *keys; /* SO_Q_FILTER's keys, NULL-name ended */
  const char *const *values;   /* the strings allowed, NULL ended */
} so_param;

/* the call shapes: which arguments a call takes, what it returns */
typedef enum {
  SO_KIND_CREATE, /* (fields, opts) -> record */
  SO_KIND_GET,    /* (id, query, opts) -> record */
  SO_KIND_UPDATE, /* (id, fields, opts) -> record */
  SO_KIND_LIST,   /* (query, opts) -> page */
  SO_KIND_READ,   /* (id, opts) -> record */
  SO_KIND_DELETE  /* (id, opts) -> record */
} so_kind;

typedef enum { SO_ARG_END, SO_ARG_ID, SO_ARG_FIELDS, SO_ARG_QUERY,
               SO_ARG_OPTIONS } so_arg;

typedef struct so_shape {
  const char *kind;   /* "create", "get", "update", "list", "read", ... */
  so_arg args[4];     /* the arguments in order, SO_ARG_END ended */
  int page;           /* the result is a page: { data, next } */
  /* the items of its bulk form: the fields themselves (both NULL), or a
     table with the id and the fields under these keys */
  const char *item_id, *item_fields;
} so_shape;

/* the APIs the operations belong to */
typedef struct so_api {
  const char *name;      /* "crm", "platform" */
  const char *namespace; /* the client's member holding its groups, or
                            NULL: the groups are the client's members */
  int account;           /* its requests carry x-account-id */
} so_api;

/* how a success answers */
typedef enum {
  SO_REPLY_DATA,  /* { data = record } or a page { data = [...], next } */
  SO_REPLY_BARE,  /* the record itself */
  SO_REPLY_ARRAY  /* a bare array: a page numbered by the query's `page` */
} so_reply;

typedef struct so_operation {
  const so_api *api;
  const char *group;        /* the group in its namespace, e.g. "contacts" */
  const char *name;         /* "create", "get", "update", "list" */
  const char *operation_id; /* the spec's operationId */
  const char *method;
  const char *path;         /* may hold one "{id}" */
  so_kind kind;             /* its call shape, so_shapes[kind] */
  const so_field *body;     /* NULL-name ended; NULL when no body */
  const char *body_schema;  /* the spec's name of the body's schema */
  const so_param *query;    /* its query parameters, in wire order */
  const char *returns;      /* the spec's schema of its 2xx response (of
                               its items, for SO_REPLY_ARRAY) */
  so_reply reply;
  int bulk;                 /* it has a _many form */
  const char *custom_fields; /* custom_fields may be given by name: the
                                operationId of the list of definitions */
} so_operation;

SO_HIDDEN extern const so_shape so_shapes[];
SO_HIDDEN extern const so_operation so_operations[];
SO_HIDDEN extern const size_t so_operation_count;
SO_HIDDEN extern const so_field so_custom_field_fields[];
SO_HIDDEN void so_push_operations(lua_State *L);
SO_HIDDEN void so_push_fields(lua_State *L, const so_field *fields);
SO_HIDDEN const char *so_closest(const char *word, const char *const *names,
                                 size_t count, size_t stride);

/* ---- errors.c: error objects and the kinds they have ---- */
typedef enum {
  SO_E_HTTP, SO_E_NETWORK, SO_E_TIMEOUT, SO_E_TLS, SO_E_DECODE,
  SO_E_TOO_LARGE, SO_E_INVALID, SO_E_CLOSED, SO_E_INTERRUPTED, SO_E_FORKED,
  SO_E_JOURNAL
} so_error_kind;

typedef enum {
  SO_CODE_FIXED,  /* `code` of the row */
  SO_CODE_STATUS, /* "HTTP_<status>" */
  SO_CODE_CURL    /* libcurl's name of its error, without CURLE_ */
} so_code_rule;

typedef enum {
  SO_MAYBE_NONE,    /* nothing was sent: no maybe_applied field */
  SO_MAYBE_ALWAYS,  /* a 2xx came back: the server did act */
  SO_MAYBE_OUTCOME, /* as the attempts' outcome says (statuses.c) */
  SO_MAYBE_CALLER   /* the caller knows (a stopped call) */
} so_maybe_rule;

typedef struct so_error_row {
  const char *kind;       /* err.kind */
  so_code_rule code_rule;
  const char *code;       /* SO_CODE_FIXED: err.code */
  so_maybe_rule maybe;    /* err.maybe_applied */
  const char *noun;       /* __tostring: "<kind> <noun>" */
  int shows_code;         /* __tostring adds the code */
  const char *doc;
} so_error_row;

SO_HIDDEN extern const so_error_row so_error_kinds[];
SO_HIDDEN void so_push_error_kinds(lua_State *L);

typedef struct so_failure {
  so_error_kind kind;
  const char *method;
  const char *path;       /* operation path, for the one-line message */
  int attempts;
  long status;            /* the code of SO_CODE_STATUS kinds */
  CURLcode rc;            /* the code of SO_CODE_CURL kinds */
  int maybe_applied;      /* of SO_MAYBE_OUTCOME and SO_MAYBE_CALLER kinds */
} so_failure;

SO_HIDDEN void so_error_metatable(lua_State *L);
SO_HIDDEN int so_push_invalid(lua_State *L, const char *method,
                              const char *path, const char *fmt, ...);
SO_HIDDEN void so_usage_metatable(lua_State *L);
SO_HIDDEN int so_usage(lua_State *L, int argument, const char *fmt, ...);
SO_HIDDEN void so_new_error(lua_State *L, const so_failure *f);
SO_HIDDEN const char *so_curl_code_name(CURLcode code);
SO_HIDDEN so_error_kind so_curl_kind(CURLcode code);
SO_HIDDEN const char *so_reason_phrase(long status);
SO_HIDDEN int so_is_error(lua_State *L);
SO_HIDDEN int so_is_error_at(lua_State *L, int idx);

/* ---- json.c: JSON through lua-cjson's own functions ---- */
SO_HIDDEN void so_json_init(lua_State *L, int state);
/* how deep a request body may nest: the walk (json.c) refuses deeper,
   the quick check (fits.c) leaves anything near it to the walk */
#define SO_BODY_MAX_DEPTH 64
/* the row of the items of an array row: strings (of `values`), or
   objects (of `fields`) */
SO_HIDDEN so_field so_array_item(const so_field *row);
/* whether cjson's text of a body certainly passes the body check */
SO_HIDDEN int so_json_fits(const char *text, size_t len,
                           const so_field *schema);
SO_HIDDEN int so_json_encode_body(lua_State *L, int state, int value,
                                  const so_field *schema, char *err,
                                  size_t errlen);
SO_HIDDEN int so_json_decode(lua_State *L, int state, so_buf *text);
SO_HIDDEN void so_json_clean(lua_State *L, int idx, int marked);

/* ---- bigint.c: integers past 2^53 in responses ---- */
#define SO_SEEN_NUMBER 1
#define SO_SEEN_NULL 2
SO_HIDDEN int so_json_mark_big_integers(const char *s, size_t len,
                                        so_buf *out, int *seen);
SO_HIDDEN void so_json_unmark(lua_State *L);

/* ---- url.c: URLs, paths and query strings ---- */
SO_HIDDEN int so_check_base_url(const char *url, int allow_insecure_http,
                                char *err, size_t errlen, char **normalized);
SO_HIDDEN int so_add_path(so_buf *b, const char *path, const char *id,
                          size_t idlen, char *err, size_t errlen);
SO_HIDDEN int so_add_query(lua_State *L, so_buf *b, int query,
                           const so_operation *op, char *err, size_t errlen);
SO_HIDDEN int so_header_value_ok(const char *s, size_t len);
SO_HIDDEN int so_header_name_ok(const char *s, size_t len);

/* ---- retry.c: retry policy, backoff, Retry-After, rate limiting ---- */
typedef struct so_retry {
  int enabled;
  int max_attempts;
  double base_delay, factor, max_delay, max_wait;
  int maybe_applied; /* retry even what the server may have applied */
} so_retry;


/* ---- statuses.c: what a failed attempt's HTTP status means ---- */
typedef enum {
  SO_RETRY_NEVER,  /* final */
  SO_RETRY_SAFE,   /* tried again when the method is safe to repeat (not
                      POST or DELETE, unless retry.maybe_applied) */
  SO_RETRY_ALWAYS  /* not processed: tried again whatever the method */
} so_retry_rule;

typedef struct so_status {
  long from, to;     /* the statuses of the row, both included */
  so_retry_rule retry;
  int retry_after;   /* its Retry-After sets the wait */
  int pause_all;     /* with a Retry-After, the whole bulk call waits */
  int maybe_applied; /* the server may have acted on the request */
  const char *doc;
} so_status;

SO_HIDDEN const so_status *so_status_of(long status);
SO_HIDDEN void so_push_statuses(lua_State *L);

SO_HIDDEN double so_now(void);
SO_HIDDEN void so_sleep(double seconds);
SO_HIDDEN double so_random(uint64_t *state);
SO_HIDDEN int so_method_repeatable(const char *method);
SO_HIDDEN int so_retryable(const char *method, CURLcode rc, long status,
                           int sent, int too_large, const so_retry *r);
SO_HIDDEN double so_backoff(const so_retry *r, int attempt, uint64_t *rng);
SO_HIDDEN int so_parse_retry_after(const char *value, size_t len, time_t now,
                                   double *seconds);
SO_HIDDEN const char *so_find_header(const so_buf *head, const char *name,
                                     size_t *len);

/* ---- limiter.c: the client's own rate limiter (one userdata); a place
   taken is then either sent or unsent. place -1: none. ---- */
typedef struct so_limiter so_limiter;
SO_HIDDEN so_limiter *so_limiter_push(lua_State *L, int capacity, double per);
SO_HIDDEN double so_limiter_take(so_limiter *b, pid_t pid, double now,
                                 int *place);
SO_HIDDEN void so_limiter_sent(so_limiter *b, int place, double now);
SO_HIDDEN void so_limiter_unsent(so_limiter *b, int place);

/* ---- lockfile.c: a file held under an exclusive lock (flock), the one
   userdata of journals and the host budget store ---- */
typedef struct so_lockfile {
  int fd;           /* -1: closed */
  const char *name; /* what it is, in messages: "journal" */
} so_lockfile;
/* pushes a closed one; the opener sets fd */
SO_HIDDEN so_lockfile *so_lockfile_new(lua_State *L, const char *name);
/* locks it, waiting or not: 0, or -1 with errno (and f closed) */
SO_HIDDEN int so_lockfile_lock(so_lockfile *f, int wait);
SO_HIDDEN void so_lockfile_register(lua_State *L);

/* ---- limit.c: what the shared rate budget needs of C (core.limit) ---- */
SO_HIDDEN void so_limit_push(lua_State *L);

/* ---- chunks.c: a large body's bytes past the first SO_WHOLE_BODY, in
   blocks that the piecewise decode frees as it goes ---- */
#define SO_WHOLE_BODY (1024 * 1024)
#define SO_CHUNK_BYTES (256 * 1024)
typedef struct so_chunk {
  struct so_chunk *next;
  size_t len;
  char data[SO_CHUNK_BYTES];
} so_chunk;
typedef struct so_chunks {
  so_chunk *head, *tail;
  size_t len;          /* bytes in all blocks */
} so_chunks;
SO_HIDDEN void so_chunks_drop_head(so_chunks *c);
SO_HIDDEN void so_chunks_free(so_chunks *c);

/* ---- json_pieces.c: a body of buffer + blocks, decoded piece by piece */
SO_HIDDEN int so_json_decode_pieces(lua_State *L, int state, so_buf *first,
                                    so_chunks *rest);

/* ---- transport.c: one easy handle and what its transfer collects; the
   libcurl callbacks only record into these fields ---- */
typedef struct so_exchange {
  CURL *curl;
  so_buf body;           /* response body (its first body_room bytes) */
  so_chunks rest;        /* the rest of a large body (chunks.c) */
  size_t body_room;      /* past it, a body goes on in blocks */
  so_buf head;           /* response header block */
  so_buf trace;          /* debug trace, when asked for */
  size_t max_response_bytes;
  int too_large;         /* the body passed max_response_bytes */
  int want_trace;        /* a debug function reads the trace */
  int https;             /* HTTP/2 is possible: libcurl's text is read */
  int origin_form;       /* the request target is set from the URL */
  int requests;          /* requests this attempt put on the wire */
  int resend_refused;    /* libcurl wanted to send it again: refused */
  int stream_refused;    /* HTTP/2 said the stream was never processed */
  unsigned long stream_id, goaway_last; /* HTTP/2, from libcurl's text */
  so_limiter *limiter;   /* the rate limiter place the request holds: */
  int place;             /* its send time is written there; -1 none */
  double sent_at;        /* when the request went on the wire (so_now) */
  int goaway;
  /* what the handle already has from its last request (so_prepare): not
     set again. url empty, or known 0: not known */
  so_buf url;
  long timeout_ms;
  int verbose, known;
  char errbuf[CURL_ERROR_SIZE];
} so_exchange;

/* ---- engine.c: the client's multi handle, its pool of easy handles and
   the transfers in flight, for every call of the client ---- */
typedef struct so_job so_job;
typedef struct so_client so_client;

typedef struct so_slot {
  so_exchange x;
  so_job *job;           /* the attempt it carries: job and item index */
  int item;
  int done;              /* libcurl finished it: rc holds the outcome */
  int closed;            /* stopped because the client closed */
  int orphan;            /* the client closed: the job frees it */
  CURLcode rc;
  struct so_slot *next, *prev; /* in the pool, or in flight */
} so_slot;

/* whether the process forked since the last look (forkwatch.c) */
typedef struct so_forkwatch {
  pid_t pid;                     /* the process that owns what it watches */
  volatile unsigned char *page;  /* 1 in that process, 0 in a child; NULL:
                                    compare pid with getpid() */
  size_t size;
} so_forkwatch;

SO_HIDDEN void so_forkwatch_start(so_forkwatch *w);
SO_HIDDEN int so_forkwatch_forked(so_forkwatch *w);
SO_HIDDEN void so_forkwatch_stop(so_forkwatch *w);

typedef struct so_engine {
  CURLM *multi;
  CURLSH *share;         /* TLS sessions shared by the client's handles */
  so_forkwatch forks;    /* the process its connections belong to */
  so_buf sockets;        /* the sockets libcurl holds open: after a fork,
                            the child makes them harmless (engine.c) */
  so_slot *pool;         /* idle handles, connections kept in the multi */
  so_slot *flying;       /* handles out of the pool (some finished) */
  int active;            /* handles in the multi, not finished */
  int loop;              /* driven by a host loop (socket_action) */
  so_buf changes;        /* loop: {fd, what} records since last asked */
  so_buf closing;        /* loop: sockets libcurl is done with, closed once
                            the host loop has stopped watching them */
  long timer_ms;         /* loop: libcurl's timer, -1 none */
  int timer_changed;
  int gather_fd;         /* loop: one descriptor (epoll) standing for all
                            of libcurl's sockets, -1 when not gathered */
  int gathered;          /* sockets in gather_fd's set */
  int gather_errno;      /* the set could not be changed (epoll_ctl) */
  int completions;       /* transfers finished since the last drive */
} so_engine;

SO_HIDDEN void so_engine_blank(so_engine *e);
SO_HIDDEN int so_engine_init(so_engine *e, int loop);
SO_HIDDEN void so_engine_own(so_engine *e);
SO_HIDDEN void so_engine_close(so_engine *e);
SO_HIDDEN so_slot *so_engine_acquire(so_engine *e, const so_client *c);
SO_HIDDEN void so_engine_release(so_engine *e, so_slot *s);
SO_HIDDEN int so_engine_add(so_engine *e, so_slot *s);
SO_HIDDEN void so_engine_cancel(so_engine *e, so_slot *s);
SO_HIDDEN void so_engine_run(so_engine *e, double max_wait);
SO_HIDDEN int so_engine_action(so_engine *e, curl_socket_t fd, int events);
SO_HIDDEN void so_engine_close_sockets(so_engine *e);
SO_HIDDEN int so_engine_gather(so_engine *e);

/* ---- ca_bundle.c: a client's CA bundle, parsed once per client ---- */
typedef struct so_ca_bundle {
  int fd;                /* the in-memory file, when path is not empty */
  char path[32];         /* "/proc/self/fd/N", or "" when there is none */
} so_ca_bundle;

SO_HIDDEN const char *so_builtin_ca(CURL *h);
SO_HIDDEN void so_ca_bundle_make(so_ca_bundle *b, const char *extra);
SO_HIDDEN void so_ca_bundle_close(so_ca_bundle *b);

/* ---- client.c ---- */
struct so_client {
  so_engine eng;
  char *auth_header;     /* "Authorization: Basic ..." (secret) */
  char *account_id;      /* default x-account-id, may be NULL */
  char *base_url;        /* scheme://host[:port][/prefix], no trailing '/' */
  char *user_agent;
  char *ca_file;
  so_ca_bundle ca;       /* libcurl's CA file and ca_file in one (https) */
  char *proxy;
  long timeout_ms;
  long connect_timeout_ms;
  size_t max_response_bytes;
  int insecure;
  int no_proxy;          /* plain http: no proxy may see the key */
  int closed;
  so_retry retry;        /* the client's retry policy */
  uint64_t rng;          /* jitter */
  struct curl_slist *default_headers[2]; /* a call's header lines when it
                            has no headers or account_id of its own, without
                            and with a body: built once (request.c) */
  /* what its hooks user value holds (set once, client.c), for every call
     without a table lookup */
  so_limiter *limiter;   /* its own rate limiter; NULL when off */
  int has_debug, has_shared;
};

/* what every request of one call shares, read from the call's options */
typedef struct so_request {
  const so_operation *op;
  int opts;            /* stack index of the options table, 0 when none */
  const char *account; /* the account id: the options' or the client's */
  size_t account_len;
  long timeout_ms;
  so_retry retry;
  int verbose;         /* a debug function wants traces */
  struct curl_slist *headers; /* built by so_request_setup into the job's
                                 copy, which owns them unless borrowed */
  int borrowed;        /* headers are the client's default_headers */
} so_request;

struct so_option;
SO_HIDDEN void so_request_check(lua_State *L, so_client *c, so_request *r,
                                int opts, const struct so_option *extra,
                                void *extra_into);
SO_HIDDEN int so_request_setup(lua_State *L, so_client *c, so_request *r);
SO_HIDDEN void so_free_headers(struct curl_slist *list);
SO_HIDDEN void so_free_default_headers(so_client *c);

/* ---- job.c: one call's records and their attempts ---- */
SO_HIDDEN so_job *so_job_new(lua_State *L, so_client *c, int client_idx,
                             const so_request *r, int n, int many,
                             int concurrency);
SO_HIDDEN so_request *so_job_request(so_job *j);
SO_HIDDEN void so_job_set_record(lua_State *L, so_job *j, int i, int url,
                                 int body);
SO_HIDDEN void so_job_fail_record(lua_State *L, so_job *j, int i);
SO_HIDDEN void so_job_set_progress(lua_State *L, so_job *j, int fn);
SO_HIDDEN void so_job_metatable(lua_State *L);

/* ---- journal.c: the file under a bulk call's journal ---- */
SO_HIDDEN void so_journal_register(lua_State *L);

/* ---- result.c ---- */
typedef struct so_outcome {
  const so_operation *op;
  int url;             /* stack index of the URL string */
  int attempts;
  CURLcode rc;
  long status;
  int sent;            /* a request reached the server, as far as known */
  int earlier_maybe_applied; /* an earlier attempt may have been processed */
  int has_retry_after; /* the last response had a Retry-After */
  double retry_after;  /* its value, in seconds */
} so_outcome;

SO_HIDDEN void so_response_init(lua_State *L, int state);
SO_HIDDEN int so_push_result(lua_State *L, so_exchange *x, so_outcome *o);
SO_HIDDEN int so_outcome_maybe_applied(const so_outcome *o);
SO_HIDDEN void so_push_stop_error(lua_State *L, const so_operation *op,
                                  so_error_kind kind, const char *message,
                                  int attempts, int maybe_applied);

/* ---- options.c: every option as a row, read by one reader ---- */
typedef enum {
  SO_O_STRING,   /* a string without NUL: const char * (the table keeps it) */
  SO_O_BOOLEAN,  /* true or false: int */
  SO_O_MS,       /* seconds in the range: long milliseconds */
  SO_O_SECONDS,  /* seconds in the range: double */
  SO_O_NUMBER,   /* a number in the range: double */
  SO_O_INT,      /* a whole number in the range: int */
  SO_O_SIZE,     /* a whole number in the range: size_t */
  SO_O_FUNCTION, /* a function: int, its stack index (left on the stack) */
  SO_O_TABLE,    /* a table: int, its stack index (left on the stack) */
  SO_O_POLICY,   /* false, true or a table of `fields`: a struct whose
                    first member is int enabled */
  SO_O_LUA       /* the Lua layer checks it: its stack index, if stored */
} so_otype;

typedef struct so_option {
  const char *name;
  so_otype type;
  const char *lua_type;  /* its LuaCATS type, for types/ and the reference */
  double min, max;       /* numbers: the range; max 0: no upper bound */
  int above;             /* min itself is out of the range */
  const char *dflt;      /* the default as Lua writes it; NULL: none */
  long at;               /* offsetof its field in the struct read into;
                            -1: checked only */
  const struct so_option *fields; /* SO_O_POLICY: its rows */
  const char *must;      /* "must be ..." when the type's words fall short */
  int any_bytes;         /* a string checked later as content: NUL too */
  const char *doc;       /* one line for the types and the reference */
} so_option;

typedef struct so_option_table {
  const char *name;      /* its core.options key */
  const so_option *rows; /* NULL-name ended */
} so_option_table;

typedef struct so_rate_limit {
  int enabled;
  int requests;
  double per;
  int shared;            /* stack index of the store, 0 when none */
} so_rate_limit;

/* what stackone.new's options give, read by so_client_rows */
typedef struct so_settings {
  const char *api_key, *account_id, *base_url, *ca_file, *proxy;
  long timeout_ms, connect_timeout_ms;
  size_t max_response_bytes;
  int insecure, allow_insecure_http;
  int headers, sleep, debug, loop; /* stack indexes, 0 when not given */
  so_retry retry;
  so_rate_limit rate_limit;
} so_settings;

/* what a bulk call's own options give, read by so_bulk_rows */
typedef struct so_bulk {
  int concurrency;
  int progress;          /* stack index of on_progress, 0 when none */
} so_bulk;

SO_HIDDEN extern const so_option so_client_rows[];
SO_HIDDEN extern const so_option so_call_rows[];
SO_HIDDEN extern const so_option so_bulk_rows[];
SO_HIDDEN extern const so_option_table so_option_tables[];
SO_HIDDEN void so_option_defaults(const so_option *rows, void *into);
SO_HIDDEN void so_read_rows(lua_State *L, int t, const so_option *rows,
                            void *into, const char *table);
SO_HIDDEN void so_check_option_names(lua_State *L, int t,
                                     const so_option *rows,
                                     const so_option *more,
                                     const char *table);
SO_HIDDEN void so_read_options(lua_State *L, int t, const so_option *rows,
                               void *into);
SO_HIDDEN void so_push_options(lua_State *L);
SO_HIDDEN void so_push_option_rows(lua_State *L);

SO_HIDDEN void so_client_metatable(lua_State *L);
SO_HIDDEN so_client *so_check_client(lua_State *L, int idx);
SO_HIDDEN int so_rawfield(lua_State *L, int t, const char *name);
SO_HIDDEN int so_name_index(lua_State *L, int key, const char *const *names,
                            size_t stride);
SO_HIDDEN void so_push_key(lua_State *L, int key);
SO_HIDDEN int so_known_names(lua_State *L, int t, const char *const *names,
                             size_t stride, const char *what, char *err,
                             size_t errlen);
SO_HIDDEN void so_check_names(lua_State *L, int t, const char *const *names,
                              size_t stride, const char *what);
SO_HIDDEN int so_client_new(lua_State *L);
SO_HIDDEN int so_client_start(lua_State *L);
SO_HIDDEN int so_client_call(lua_State *L);
SO_HIDDEN int so_client_start_many(lua_State *L);
SO_HIDDEN int so_client_check(lua_State *L);
SO_HIDDEN int so_client_check_many(lua_State *L);
SO_HIDDEN int so_client_io_changes(lua_State *L);
SO_HIDDEN int so_client_io_action(lua_State *L);
SO_HIDDEN int so_client_io_done(lua_State *L);
SO_HIDDEN int so_client_io_gather(lua_State *L);
SO_HIDDEN int so_invalid_error(lua_State *L);
SO_HIDDEN int so_collect_headers(lua_State *L, int headers, int into,
                                 char *err, size_t errlen);
SO_HIDDEN CURLcode so_setup_handle(const so_client *c, so_exchange *x);
SO_HIDDEN CURLcode so_prepare(so_exchange *x, const char *method,
                              const char *url, struct curl_slist *headers,
                              const char *body, size_t body_len,
                              long timeout_ms, int want_trace);
SO_HIDDEN void so_exchange_free(so_exchange *x);
SO_HIDDEN size_t so_chunks_receive(so_exchange *x, const char *p, size_t len);
SO_HIDDEN void so_exchange_unsent(so_exchange *x);
SO_HIDDEN void so_push_headers(lua_State *L, const so_buf *head);

#endif
