/*
** ops.c: StackOne's CRM API described once, as data: each operation's
** call shape, parameters with their types and wire styles, body schema,
** response, bulk form and custom fields. The C checks, URL building, the
** Lua surface (crm.<group>.<name>, core.operations), the editor types and
** the reference (scripts/describe.lua) all come from these rows;
** spec/description_spec.lua diffs them against the vendored spec.
*/
#include <string.h>

#include "stackone.h"

#define F(name, type) {name, type, NULL, NULL, 0, NULL}
#define REQUIRED(name, type) {name, type, NULL, NULL, 1, NULL}
#define ONE_OF(name, type, values) {name, type, NULL, values, 0, NULL}
/* an array of objects of the spec's schema `schema`, whose rows are `rows` */
#define OBJECTS(name, rows, schema) {name, SO_T_OBJECT_ARRAY, rows, NULL, 0, schema}
#define F_END {NULL, SO_T_ANY, NULL, NULL, 0, NULL}

/* the APIs */
static const so_api crm = {"crm", "crm", 1};
static const so_api platform = {"platform", NULL, 0};

/* CustomFields: one entry of custom_fields */
const so_field so_custom_field_fields[] = {
  F("id", SO_T_STRING),
  F("remote_id", SO_T_STRING),
  F("name", SO_T_STRING),
  F("value", SO_T_ANY),
  F("value_id", SO_T_STRING),
  F("remote_value_id", SO_T_STRING),
  F_END
};

/* CrmCreateContactRequestDto: the body of create and update */
static const so_field contact_body[] = {
  F("first_name", SO_T_STRING),
  F("last_name", SO_T_STRING),
  F("company_name", SO_T_STRING),
  F("emails", SO_T_STRING_ARRAY),
  F("phone_numbers", SO_T_STRING_ARRAY),
  F("deal_ids", SO_T_STRING_ARRAY),
  F("account_ids", SO_T_STRING_ARRAY),
  OBJECTS("custom_fields", so_custom_field_fields, "CustomFields"),
  F("passthrough", SO_T_OBJECT),
  F_END
};

static const char *const account_types[] = {"production", "test", NULL};
static const char *const categories[] = {
  "ats", "hris", "hris-legacy", "crm", "iam", "marketing", "lms", "stackone",
  "documents", "ticketing", "screening", "messaging", "accounting",
  "scheduling", NULL
};

/* PatchAccountExternalDto: the body of accounts.update */
static const so_field account_body[] = {
  F("provider", SO_T_STRING),
  F("origin_owner_id", SO_T_STRING),
  F("origin_owner_name", SO_T_STRING),
  F("origin_username", SO_T_STRING),
  F("credentials", SO_T_OBJECT),
  F("setup_information", SO_T_OBJECT),
  F("secrets", SO_T_OBJECT),
  F("authentication_config_key", SO_T_STRING),
  F("environment", SO_T_STRING),
  F("label", SO_T_OBJECT),
  F("metadata", SO_T_OBJECT),
  ONE_OF("type", SO_T_STRING, account_types),
  F("integration_id", SO_T_STRING),
  F_END
};

/* ConnectSessionCreate: the body of connect_sessions.create */
static const so_field session_body[] = {
  ONE_OF("categories", SO_T_STRING_ARRAY, categories),
  F("provider", SO_T_STRING),
  F("provider_version", SO_T_STRING),
  REQUIRED("origin_owner_id", SO_T_STRING),
  REQUIRED("origin_owner_name", SO_T_STRING),
  F("origin_username", SO_T_STRING),
  F("account_id", SO_T_STRING),
  F("expires_in", SO_T_NUMBER),
  F("metadata", SO_T_OBJECT),
  F("multiple", SO_T_BOOLEAN),
  F("label", SO_T_STRING),
  ONE_OF("type", SO_T_STRING, account_types),
  F("integration_id", SO_T_STRING),
  F_END
};

/* ConnectSessionAuthenticate */
static const so_field authenticate_body[] = {
  REQUIRED("token", SO_T_STRING),
  F_END
};

/* the call shapes, by so_kind */
const so_shape so_shapes[] = {
  {"create", {SO_ARG_FIELDS, SO_ARG_OPTIONS, SO_ARG_END}, 0, NULL, NULL},
  {"get", {SO_ARG_ID, SO_ARG_QUERY, SO_ARG_OPTIONS, SO_ARG_END}, 0, NULL,
   NULL},
  {"update", {SO_ARG_ID, SO_ARG_FIELDS, SO_ARG_OPTIONS, SO_ARG_END}, 0, "id",
   "fields"},
  {"list", {SO_ARG_QUERY, SO_ARG_OPTIONS, SO_ARG_END, SO_ARG_END}, 1, NULL,
   NULL},
  {"read", {SO_ARG_ID, SO_ARG_OPTIONS, SO_ARG_END, SO_ARG_END}, 0, NULL, NULL},
  {"delete", {SO_ARG_ID, SO_ARG_OPTIONS, SO_ARG_END, SO_ARG_END}, 0, NULL,
   NULL},
};

#define P(name, type) {name, type, NULL, NULL}
#define P_END P(NULL, SO_Q_STRING)

static const so_param filter_keys[] = {
  P("updated_after", SO_Q_DATE_TIME),
  P_END
};

/* query parameters, in the order they go on the wire */
#define FIELDS P("fields", SO_Q_NAMES)
#define FILTER {"filter", SO_Q_FILTER, filter_keys, NULL}
#define PAGE_SIZE P("page_size", SO_Q_PAGE_SIZE)
#define NEXT P("next", SO_Q_CURSOR)
#define INCLUDE P("include", SO_Q_NAMES)
#define RAW P("raw", SO_Q_BOOLEAN)
#define PROXY P("proxy", SO_Q_OBJECT)
#define PAGE P("page", SO_Q_PAGE)
#define UPDATED_AFTER P("updated_after", SO_Q_DATE_TIME)

static const so_param q_list_contacts[] = {
  FIELDS, FILTER, PAGE_SIZE, NEXT, INCLUDE, RAW, PROXY, PAGE, UPDATED_AFTER,
  P_END
};
static const so_param q_list[] = {
  FIELDS, FILTER, PAGE_SIZE, NEXT, RAW, PROXY, PAGE, UPDATED_AFTER, P_END
};
static const so_param q_get_contact[] = {FIELDS, INCLUDE, RAW, PROXY, P_END};
static const so_param q_get[] = {FIELDS, RAW, PROXY, P_END};
static const so_param q_none[] = {P_END};

static const so_param q_list_accounts[] = {
  P("page", SO_Q_NUMBER),
  P("page_size", SO_Q_NUMBER),
  P("provider", SO_Q_STRING),
  P("origin_owner_id", SO_Q_STRING),
  P("origin_owner_ids", SO_Q_STRINGS),
  P("providers", SO_Q_STRINGS),
  P("account_ids", SO_Q_STRINGS),
  P("status", SO_Q_STRINGS),
  P_END
};

static const char *const log_order_by[] = {
  "provider", "service", "status", "eventDatetime", "duration", NULL
};
static const char *const log_order_direction[] = {"asc", "desc", NULL};
static const char *const log_list_include[] = {"step_logs", NULL};
static const char *const log_get_include[] = {
  "step_logs", "advanced_logs", NULL
};
#define LOG_ORDER_BY {"order_by", SO_Q_STRING, NULL, log_order_by}
#define LOG_ORDER_DIRECTION \
  {"order_direction", SO_Q_STRING, NULL, log_order_direction}

/* the comma-separated lists take "a,b" or { "a", "b" } */
static const so_param log_filter_keys[] = {
  P("account_ids", SO_Q_NAMES),
  P("start_date", SO_Q_DATE_TIME),
  P("end_date", SO_Q_DATE_TIME),
  P("request_ids", SO_Q_NAMES),
  P("source_types", SO_Q_NAMES),
  P("source_values", SO_Q_NAMES),
  P("source_ids", SO_Q_NAMES),
  P("http_methods", SO_Q_NAMES),
  P("providers", SO_Q_NAMES),
  P("services", SO_Q_NAMES),
  P("resources", SO_Q_NAMES),
  P("child_resources", SO_Q_NAMES),
  P("sub_resources", SO_Q_NAMES),
  P("actions", SO_Q_NAMES),
  P("status_codes", SO_Q_NAMES),
  P("success", SO_Q_BOOLEAN),
  LOG_ORDER_BY,
  LOG_ORDER_DIRECTION,
  P_END
};

static const so_param q_list_logs[] = {
  LOG_ORDER_BY,
  LOG_ORDER_DIRECTION,
  P("page_size", SO_Q_NUMBER_SIZE),
  NEXT,
  {"include", SO_Q_STRING, NULL, log_list_include},
  {"filter", SO_Q_FILTER, log_filter_keys, NULL},
  P_END
};
static const so_param q_get_log[] = {
  {"include", SO_Q_STRING, NULL, log_get_include},
  P_END
};

#define CONTACTS "/unified/crm/contacts"
#define ACCOUNTS "/unified/crm/accounts"
#define LISTS "/unified/crm/lists"
#define DEFINITIONS "/unified/crm/custom_field_definitions/contacts"
#define CONTACT_BODY contact_body, "CrmCreateContactRequestDto"
#define NO_BODY NULL, NULL
#define CONTACT_DEFINITIONS "crm_list_contact_custom_field_definitions"
#define DATA SO_REPLY_DATA
#define BARE SO_REPLY_BARE

/* api, group, name, operationId, method, path, shape, body, query,
   response, its form, bulk form, custom fields by name */
const so_operation so_operations[] = {
  {&crm, "contacts", "create", "crm_create_contact", "POST", CONTACTS,
   SO_KIND_CREATE, CONTACT_BODY, q_none, "ContactResult", DATA, 1,
   CONTACT_DEFINITIONS},
  {&crm, "contacts", "get", "crm_get_contact", "GET", CONTACTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get_contact, "ContactResult", DATA, 0, NULL},
  {&crm, "contacts", "update", "crm_update_contact", "PATCH",
   CONTACTS "/{id}", SO_KIND_UPDATE, CONTACT_BODY, q_none, "ContactResult",
   DATA, 1, CONTACT_DEFINITIONS},
  {&crm, "contacts", "list", "crm_list_contacts", "GET", CONTACTS,
   SO_KIND_LIST, NO_BODY, q_list_contacts, "ContactsPaginated", DATA, 0,
   NULL},
  {&crm, "accounts", "get", "crm_get_account", "GET", ACCOUNTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get, "AccountResult", DATA, 0, NULL},
  {&crm, "accounts", "list", "crm_list_accounts", "GET", ACCOUNTS,
   SO_KIND_LIST, NO_BODY, q_list, "AccountsPaginated", DATA, 0, NULL},
  {&crm, "lists", "get", "crm_get_list", "GET", LISTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get, "ListResult", DATA, 0, NULL},
  {&crm, "lists", "list", "crm_list_lists", "GET", LISTS,
   SO_KIND_LIST, NO_BODY, q_list, "ListsPaginated", DATA, 0, NULL},
  /* the spec lists paging and filter parameters on this get too */
  {&crm, "contact_custom_field_definitions", "get",
   "crm_get_contact_custom_field_definition", "GET", DEFINITIONS "/{id}",
   SO_KIND_GET, NO_BODY, q_list, "CustomFieldDefinitionResultApiModel", DATA,
   0, NULL},
  {&crm, "contact_custom_field_definitions", "list",
   "crm_list_contact_custom_field_definitions", "GET", DEFINITIONS,
   SO_KIND_LIST, NO_BODY, q_list, "CustomFieldDefinitionsPaginated", DATA, 0,
   NULL},
  /* the platform: linked accounts, connect sessions, request logs */
  {&platform, "accounts", "list", "stackone_list_linked_accounts", "GET",
   "/accounts", SO_KIND_LIST, NO_BODY, q_list_accounts, "LinkedAccount",
   SO_REPLY_ARRAY, 0, NULL},
  {&platform, "accounts", "get", "stackone_get_account", "GET",
   "/accounts/{id}", SO_KIND_READ, NO_BODY, q_none, "LinkedAccount", BARE, 0,
   NULL},
  {&platform, "accounts", "update", "stackone_update_account", "PATCH",
   "/accounts/{id}", SO_KIND_UPDATE, account_body, "PatchAccountExternalDto",
   q_none, "LinkedAccount", BARE, 0, NULL},
  {&platform, "accounts", "delete", "stackone_delete_account", "DELETE",
   "/accounts/{id}", SO_KIND_DELETE, NO_BODY, q_none, "LinkedAccount", BARE,
   0, NULL},
  {&platform, "connect_sessions", "create", "stackone_create_connect_session",
   "POST", "/connect_sessions", SO_KIND_CREATE, session_body,
   "ConnectSessionCreate", q_none, "ConnectSessionTokenAuthLink", BARE, 0,
   NULL},
  {&platform, "connect_sessions", "authenticate",
   "stackone_authenticate_connect_session", "POST",
   "/connect_sessions/authenticate", SO_KIND_CREATE, authenticate_body,
   "ConnectSessionAuthenticate", q_none, "ConnectSession", BARE, 0, NULL},
  {&platform, "request_logs", "list", "stackone_list_logs", "GET",
   "/requests/logs", SO_KIND_LIST, NO_BODY, q_list_logs,
   "UnifiedLogsPaginated", DATA, 0, NULL},
  {&platform, "request_logs", "get", "stackone_get_log", "GET",
   "/requests/logs/{id}", SO_KIND_GET, NO_BODY, q_get_log, "UnifiedLogResult",
   DATA, 0, NULL},
};

const size_t so_operation_count =
    sizeof(so_operations) / sizeof(so_operations[0]);

/* ---- the description as Lua data: core.operations ---- */

static const char *const arg_names[] = {NULL, "id", "fields", "query",
                                        "opts"};

/* each so_type: the spec's type, its items' type, and the Lua values taken */
static const struct {
  const char *type, *items, *lua;
} field_types[] = {
  {"string", NULL, "string|stackone.null"},
  {"array", "string", "string[]"},
  {"array", NULL, NULL}, /* items and accepts from the row's schema */
  {"object", NULL, "table<string, any>"},
  {"number", NULL, "number"},
  {"boolean", NULL, "boolean"},
  {NULL, NULL, "any"},
};

/* each so_qtype: the spec's type and format, its wire style, the Lua
   values taken */
static const struct {
  const char *type, *format, *style, *lua;
} param_types[] = {
  {"string", NULL, "form", "string"},
  {"string", "date-time", "form", "string"},
  {"string", NULL, "form", "string"},
  {"string", NULL, "form", "string|integer"},
  {"string", NULL, "form", "integer|string"},
  {"boolean", NULL, "form", "boolean"},
  {"string", NULL, "form", "string|string[]"},
  {"object", NULL, "deepObject", "table<string, any>"},
  {"object", NULL, "deepObject", NULL},
  {"number", NULL, "form", "integer"},
  {"number", NULL, "form", "integer"},
  {"array", NULL, "form", "string|string[]"},
};

static void set_string(lua_State *L, const char *key, const char *value) {
  if (value == NULL) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

static void set_boolean(lua_State *L, const char *key, int value) {
  lua_pushboolean(L, value);
  lua_setfield(L, -2, key);
}

/* an array of the strings of a NULL-ended list */
static void push_strings(lua_State *L, const char *const *values) {
  lua_Integer i;
  lua_newtable(L);
  for (i = 0; values[i]; i++) {
    lua_pushstring(L, values[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void set_range(lua_State *L, lua_Integer minimum, lua_Integer maximum) {
  lua_pushinteger(L, minimum);
  lua_setfield(L, -2, "minimum");
  if (maximum > 0) {
    lua_pushinteger(L, maximum);
    lua_setfield(L, -2, "maximum");
  }
}

/* { { name, type, format, style, accepts, keys = {...}, values }, ... } */
static void push_params(lua_State *L, const so_param *params) {
  size_t j;
  lua_newtable(L);
  for (j = 0; params[j].name; j++) {
    const so_param *p = &params[j];
    lua_createtable(L, 0, 8);
    set_string(L, "name", p->name);
    set_string(L, "type", param_types[p->type].type);
    set_string(L, "format", param_types[p->type].format);
    set_string(L, "style", param_types[p->type].style);
    set_string(L, "accepts", param_types[p->type].lua);
    if (p->type == SO_Q_PAGE_SIZE || p->type == SO_Q_NUMBER_SIZE)
      set_range(L, 1, 100);
    if (p->type == SO_Q_NUMBER) set_range(L, 1, 0);
    if (p->type == SO_Q_STRINGS) set_string(L, "items", "string");
    if (p->keys) {
      push_params(L, p->keys);
      lua_setfield(L, -2, "keys");
    }
    if (p->values) {
      push_strings(L, p->values);
      lua_setfield(L, -2, "values");
    }
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
}

/* { { name, type, items, accepts, values, fields, required }, ... } */
void so_push_fields(lua_State *L, const so_field *fields) {
  size_t j;
  lua_newtable(L);
  for (j = 0; fields[j].name; j++) {
    const so_field *f = &fields[j];
    lua_createtable(L, 0, 6);
    set_string(L, "name", f->name);
    set_string(L, "type", field_types[f->type].type);
    if (f->type == SO_T_OBJECT_ARRAY) {
      /* custom fields may also be given as { [name or id] = value } */
      set_string(L, "items", f->schema);
      lua_pushfstring(L, "stackone.%s[]%s", f->schema,
                      f->fields == so_custom_field_fields
                          ? "|table<string, any>" : "");
      lua_setfield(L, -2, "accepts");
    } else {
      set_string(L, "items", field_types[f->type].items);
      set_string(L, "accepts", field_types[f->type].lua);
    }
    if (f->values) {
      push_strings(L, f->values);
      lua_setfield(L, -2, "values");
    }
    if (f->fields) {
      so_push_fields(L, f->fields);
      lua_setfield(L, -2, "fields");
    }
    if (f->required) set_boolean(L, "required", 1);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
}

/* an array of the names in records `stride` bytes apart */
static void push_names(lua_State *L, const void *records, size_t stride) {
  size_t j;
  const char *name;
  lua_newtable(L);
  for (j = 0;; j++) {
    memcpy(&name, (const char *)records + j * stride, sizeof(name));
    if (name == NULL) break;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
}

static void push_operation(lua_State *L, size_t i) {
  static const char *const replies[] = {"data", "bare", "array"};
  const so_operation *op = &so_operations[i];
  const so_shape *shape = &so_shapes[op->kind];
  size_t j;
  lua_createtable(L, 0, 24);
  lua_pushinteger(L, (lua_Integer)i + 1);
  lua_setfield(L, -2, "index");
  set_string(L, "api", op->api->name);
  set_string(L, "namespace", op->api->namespace);
  set_boolean(L, "account", op->api->account);
  set_string(L, "reply", replies[op->reply]);
  set_string(L, "group", op->group);
  set_string(L, "name", op->name);
  set_string(L, "operation_id", op->operation_id);
  set_string(L, "method", op->method);
  set_string(L, "path", op->path);
  set_string(L, "kind", shape->kind);
  lua_newtable(L);
  for (j = 0; shape->args[j] != SO_ARG_END; j++) {
    lua_pushstring(L, arg_names[shape->args[j]]);
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
  lua_setfield(L, -2, "args");
  set_boolean(L, "page", shape->page);
  push_names(L, op->query, sizeof(so_param));
  lua_setfield(L, -2, "query");
  push_params(L, op->query);
  lua_setfield(L, -2, "parameters");
  if (op->body) {
    push_names(L, op->body, sizeof(so_field));
    lua_setfield(L, -2, "fields");
    so_push_fields(L, op->body);
    lua_setfield(L, -2, "body");
    set_string(L, "body_schema", op->body_schema);
  }
  set_string(L, "returns", op->returns);
  if (op->bulk) { /* { id = "id", fields = "fields" }, or {} */
    lua_createtable(L, 0, 2);
    set_string(L, "id", shape->item_id);
    set_string(L, "fields", shape->item_fields);
    lua_setfield(L, -2, "bulk");
  }
  set_string(L, "custom_fields", op->custom_fields);
}

/* core.operations: one table per operation (see the README) */
void so_push_operations(lua_State *L) {
  size_t i;
  lua_createtable(L, (int)so_operation_count, 0);
  for (i = 0; i < so_operation_count; i++) {
    push_operation(L, i);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* edit distance, capped: enough for "did you mean" on short names */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), i, j;
  size_t row[64];
  if (la >= 64 || lb >= 64) return (size_t)-1;
  for (j = 0; j <= lb; j++) row[j] = j;
  for (i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t best = diag + (a[i - 1] != b[j - 1]);
      if (row[j] + 1 < best) best = row[j] + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* the closest of names (an array of records `stride` bytes apart whose
   first member is a const char *), or NULL when none is close */
const char *so_closest(const char *word, const char *const *names,
                       size_t count, size_t stride) {
  const char *best = NULL;
  size_t best_d = (size_t)-1, i;
  size_t limit = strlen(word) / 3 + 1;
  for (i = 0; i < count; i++) {
    const char *name;
    size_t d;
    /* memcpy: the records need not be aligned for a cast */
    memcpy(&name, (const char *)names + i * stride, sizeof(name));
    if (name == NULL) break;
    d = distance(word, name);
    if (d < best_d) {
      best_d = d;
      best = name;
    }
  }
  return best_d <= limit ? best : NULL;
}
