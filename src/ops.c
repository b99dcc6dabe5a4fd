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

/* CrmCreateContactRequestDto: the body of create and update */
static const so_field contact_body[] = {
  {"first_name", SO_T_STRING},
  {"last_name", SO_T_STRING},
  {"company_name", SO_T_STRING},
  {"emails", SO_T_STRING_ARRAY},
  {"phone_numbers", SO_T_STRING_ARRAY},
  {"deal_ids", SO_T_STRING_ARRAY},
  {"account_ids", SO_T_STRING_ARRAY},
  {"custom_fields", SO_T_CUSTOM_FIELDS},
  {"passthrough", SO_T_OBJECT},
  {NULL, SO_T_ANY}
};

/* CustomFields: one entry of custom_fields */
const so_field so_custom_field_fields[] = {
  {"id", SO_T_STRING},
  {"remote_id", SO_T_STRING},
  {"name", SO_T_STRING},
  {"value", SO_T_ANY},
  {"value_id", SO_T_STRING},
  {"remote_value_id", SO_T_STRING},
  {NULL, SO_T_ANY}
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
};

static const so_param filter_keys[] = {
  {"updated_after", SO_Q_DATE_TIME, NULL},
  {NULL, SO_Q_STRING, NULL}
};

/* query parameters, in the order they go on the wire */
#define FIELDS {"fields", SO_Q_NAMES, NULL}
#define FILTER {"filter", SO_Q_FILTER, filter_keys}
#define PAGE_SIZE {"page_size", SO_Q_PAGE_SIZE, NULL}
#define NEXT {"next", SO_Q_CURSOR, NULL}
#define INCLUDE {"include", SO_Q_NAMES, NULL}
#define RAW {"raw", SO_Q_BOOLEAN, NULL}
#define PROXY {"proxy", SO_Q_OBJECT, NULL}
#define PAGE {"page", SO_Q_PAGE, NULL}
#define UPDATED_AFTER {"updated_after", SO_Q_DATE_TIME, NULL}
#define END {NULL, SO_Q_STRING, NULL}

static const so_param q_list_contacts[] = {
  FIELDS, FILTER, PAGE_SIZE, NEXT, INCLUDE, RAW, PROXY, PAGE, UPDATED_AFTER,
  END
};
static const so_param q_list[] = {
  FIELDS, FILTER, PAGE_SIZE, NEXT, RAW, PROXY, PAGE, UPDATED_AFTER, END
};
static const so_param q_get_contact[] = {FIELDS, INCLUDE, RAW, PROXY, END};
static const so_param q_get[] = {FIELDS, RAW, PROXY, END};
static const so_param q_none[] = {END};

#define CONTACTS "/unified/crm/contacts"
#define ACCOUNTS "/unified/crm/accounts"
#define LISTS "/unified/crm/lists"
#define DEFINITIONS "/unified/crm/custom_field_definitions/contacts"
#define CONTACT_BODY contact_body, "CrmCreateContactRequestDto"
#define NO_BODY NULL, NULL
#define CONTACT_DEFINITIONS "crm_list_contact_custom_field_definitions"

/* group, name, operationId, method, path, shape, body, query, response,
   bulk form, custom fields by name */
const so_operation so_operations[] = {
  {"contacts", "create", "crm_create_contact", "POST", CONTACTS,
   SO_KIND_CREATE, CONTACT_BODY, q_none, "ContactResult", 1, CONTACT_DEFINITIONS},
  {"contacts", "get", "crm_get_contact", "GET", CONTACTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get_contact, "ContactResult", 0, NULL},
  {"contacts", "update", "crm_update_contact", "PATCH", CONTACTS "/{id}",
   SO_KIND_UPDATE, CONTACT_BODY, q_none, "ContactResult", 1, CONTACT_DEFINITIONS},
  {"contacts", "list", "crm_list_contacts", "GET", CONTACTS,
   SO_KIND_LIST, NO_BODY, q_list_contacts, "ContactsPaginated", 0, NULL},
  {"accounts", "get", "crm_get_account", "GET", ACCOUNTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get, "AccountResult", 0, NULL},
  {"accounts", "list", "crm_list_accounts", "GET", ACCOUNTS,
   SO_KIND_LIST, NO_BODY, q_list, "AccountsPaginated", 0, NULL},
  {"lists", "get", "crm_get_list", "GET", LISTS "/{id}",
   SO_KIND_GET, NO_BODY, q_get, "ListResult", 0, NULL},
  {"lists", "list", "crm_list_lists", "GET", LISTS,
   SO_KIND_LIST, NO_BODY, q_list, "ListsPaginated", 0, NULL},
  /* the spec lists paging and filter parameters on this get too */
  {"contact_custom_field_definitions", "get",
   "crm_get_contact_custom_field_definition", "GET", DEFINITIONS "/{id}",
   SO_KIND_GET, NO_BODY, q_list, "CustomFieldDefinitionResultApiModel", 0, NULL},
  {"contact_custom_field_definitions", "list",
   "crm_list_contact_custom_field_definitions", "GET", DEFINITIONS,
   SO_KIND_LIST, NO_BODY, q_list, "CustomFieldDefinitionsPaginated", 0, NULL},
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
  {"array", "CustomFields", "stackone.CustomFields[]|table<string, any>"},
  {"object", NULL, "table<string, any>"},
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

/* { { name, type, format, style, accepts, keys = {...} }, ... } */
static void push_params(lua_State *L, const so_param *params) {
  size_t j;
  lua_newtable(L);
  for (j = 0; params[j].name; j++) {
    const so_param *p = &params[j];
    lua_createtable(L, 0, 6);
    set_string(L, "name", p->name);
    set_string(L, "type", param_types[p->type].type);
    set_string(L, "format", param_types[p->type].format);
    set_string(L, "style", param_types[p->type].style);
    set_string(L, "accepts", param_types[p->type].lua);
    if (p->type == SO_Q_PAGE_SIZE) {
      lua_pushinteger(L, 1);
      lua_setfield(L, -2, "minimum");
      lua_pushinteger(L, 100);
      lua_setfield(L, -2, "maximum");
    }
    if (p->keys) {
      push_params(L, p->keys);
      lua_setfield(L, -2, "keys");
    }
    lua_rawseti(L, -2, (lua_Integer)j + 1);
  }
}

/* { { name, type, items, accepts }, ... } */
void so_push_fields(lua_State *L, const so_field *fields) {
  size_t j;
  lua_newtable(L);
  for (j = 0; fields[j].name; j++) {
    lua_createtable(L, 0, 4);
    set_string(L, "name", fields[j].name);
    set_string(L, "type", field_types[fields[j].type].type);
    set_string(L, "items", field_types[fields[j].type].items);
    set_string(L, "accepts", field_types[fields[j].type].lua);
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
  const so_operation *op = &so_operations[i];
  const so_shape *shape = &so_shapes[op->kind];
  size_t j;
  lua_createtable(L, 0, 20);
  lua_pushinteger(L, (lua_Integer)i + 1);
  lua_setfield(L, -2, "index");
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
