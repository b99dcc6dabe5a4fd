/*
** ops.c: StackOne's CRM operations as one table of data. Everything the
** Lua API offers (crm.<group>.<name>) is built from these rows.
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

/* query parameters, in the order they go on the wire */
static const char *const q_list_contacts[] = {
  "fields", "filter", "page_size", "next", "include", "raw", "proxy",
  "page", "updated_after", NULL
};
static const char *const q_list[] = {
  "fields", "filter", "page_size", "next", "raw", "proxy", "page",
  "updated_after", NULL
};
static const char *const q_get_contact[] = {
  "fields", "include", "raw", "proxy", NULL
};
static const char *const q_get[] = {"fields", "raw", "proxy", NULL};
static const char *const q_none[] = {NULL};

#define CONTACTS "/unified/crm/contacts"
#define ACCOUNTS "/unified/crm/accounts"
#define LISTS "/unified/crm/lists"
#define DEFINITIONS "/unified/crm/custom_field_definitions/contacts"

const so_operation so_operations[] = {
  {"contacts", "create", "crm_create_contact", "POST", CONTACTS,
   SO_KIND_CREATE, contact_body, q_none},
  {"contacts", "get", "crm_get_contact", "GET", CONTACTS "/{id}",
   SO_KIND_GET, NULL, q_get_contact},
  {"contacts", "update", "crm_update_contact", "PATCH", CONTACTS "/{id}",
   SO_KIND_UPDATE, contact_body, q_none},
  {"contacts", "list", "crm_list_contacts", "GET", CONTACTS,
   SO_KIND_LIST, NULL, q_list_contacts},
  {"accounts", "get", "crm_get_account", "GET", ACCOUNTS "/{id}",
   SO_KIND_GET, NULL, q_get},
  {"accounts", "list", "crm_list_accounts", "GET", ACCOUNTS,
   SO_KIND_LIST, NULL, q_list},
  {"lists", "get", "crm_get_list", "GET", LISTS "/{id}",
   SO_KIND_GET, NULL, q_get},
  {"lists", "list", "crm_list_lists", "GET", LISTS,
   SO_KIND_LIST, NULL, q_list},
  /* the spec lists paging and filter parameters on this get too */
  {"contact_custom_field_definitions", "get",
   "crm_get_contact_custom_field_definition", "GET", DEFINITIONS "/{id}",
   SO_KIND_GET, NULL, q_list},
  {"contact_custom_field_definitions", "list",
   "crm_list_contact_custom_field_definitions", "GET", DEFINITIONS,
   SO_KIND_LIST, NULL, q_list},
};

const size_t so_operation_count =
    sizeof(so_operations) / sizeof(so_operations[0]);

static const char *const kind_names[] = {"create", "get", "update", "list"};

/* core.operations: { { index, group, name, operation_id, method, path,
   kind, query = {...}, fields = {...} }, ... } */
void so_push_operations(lua_State *L) {
  size_t i, j;
  lua_createtable(L, (int)so_operation_count, 0);
  for (i = 0; i < so_operation_count; i++) {
    const so_operation *op = &so_operations[i];
    lua_createtable(L, 0, 9);
    lua_pushinteger(L, (lua_Integer)i + 1);
    lua_setfield(L, -2, "index");
    lua_pushstring(L, op->group);
    lua_setfield(L, -2, "group");
    lua_pushstring(L, op->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, op->operation_id);
    lua_setfield(L, -2, "operation_id");
    lua_pushstring(L, op->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, op->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, kind_names[op->kind]);
    lua_setfield(L, -2, "kind");
    lua_newtable(L);
    for (j = 0; op->query[j]; j++) {
      lua_pushstring(L, op->query[j]);
      lua_rawseti(L, -2, (lua_Integer)j + 1);
    }
    lua_setfield(L, -2, "query");
    if (op->body) {
      lua_newtable(L);
      for (j = 0; op->body[j].name; j++) {
        lua_pushstring(L, op->body[j].name);
        lua_rawseti(L, -2, (lua_Integer)j + 1);
      }
      lua_setfield(L, -2, "fields");
    }
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
