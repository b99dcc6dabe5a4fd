-- Seeded, read-only CRM data every linked account starts with: accounts
-- (with addresses), lists (with items) and contact custom field
-- definitions. Also optional generated contacts (--seed-contacts N).
--
-- Each collection is a list of entries { rec = <record>, upd = <epoch ms> }
-- in creation order; `upd` is what filter[updated_after] compares.
local json = require("stackone.server.json")
local schema = require("stackone.server.schema")
local isotime = require("stackone.server.isotime")

local seed = {}

local make, array = schema.make, json.array

local function entry(rec, upd)
  return { rec = rec, upd = isotime.parse(upd) }
end

local function enum(value, source)
  return make("Enum", { value = value, source_value = source })
end

local function address(street, city, state, zip, country, country_name, loc, loc_source)
  return make("AccountAddress", {
    street_1 = street, city = city, state = state, zip_code = zip,
    country = enum(country, country_name), location_type = enum(loc, loc_source),
  })
end

local function account(id, remote_id, name, t)
  t.id, t.remote_id, t.name = id, remote_id, name
  return entry(make("Account", t), t.updated_at)
end

local function build_accounts()
  return {
    account("3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a01", "9001", "Apple Inc.", {
      owner_id = "c28xIQaWQ6MzM5MzczMDA2NjM", remote_owner_id = "owner-1",
      description = "Consumer electronics and software",
      industries = array({ "Information Technology", "Consumer Electronics" }),
      annual_revenue = "383285000000", website = "https://www.apple.com",
      addresses = array({
        address("One Apple Park Way", "Cupertino", "CA", "95014", "US", "United States", "work", "Headquarters"),
        address("12 Sunset Blvd", "Los Angeles", "CA", "90028", "US", "United States", "work", "Office"),
      }),
      phone_numbers = array({ "+14089961010" }),
      unified_custom_fields = { tier = "enterprise" },
      created_at = "2024-01-01T09:00:00.000Z", updated_at = "2024-01-10T09:00:00.000Z",
    }),
    account("3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a02", "9002", "Acme Ltd", {
      owner_id = "c28xIQaWQ6MzM5MzczMDA2NjM", remote_owner_id = "owner-1",
      description = "Everything for coyotes",
      industries = array({ "Manufacturing" }),
      annual_revenue = "1200000", website = "https://acme.example",
      addresses = array({
        address("1 Canal Street", "London", nil, "EC1A 1BB", "GB", "United Kingdom", "work", "Office"),
      }),
      phone_numbers = array({ "+442071234567", "+442071234568" }),
      created_at = "2024-02-01T09:00:00.000Z", updated_at = "2024-02-15T12:30:00.000Z",
    }),
    account("3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a03", "9003", "Globex GmbH", {
      owner_id = "c28xIQaWQ6MzM5MzczMDA4ODg", remote_owner_id = "owner-2",
      industries = array({}),
      website = "https://globex.example",
      addresses = array({
        address("Hauptstrasse 5", "Berlin", "BE", "10115", "DE", "Germany", "home", "Residence"),
      }),
      phone_numbers = array({}),
      created_at = "2024-03-01T09:00:00.000Z", updated_at = "2024-03-20T08:00:00.000Z",
    }),
    account("3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a04", "9004", "Initech", {
      owner_id = "c28xIQaWQ6MzM5MzczMDA4ODg", remote_owner_id = "owner-2",
      description = "TPS reports", industries = array({ "Software" }),
      annual_revenue = "5000000", website = "https://initech.example",
      addresses = array({
        address("4120 Freidrich Lane", "Austin", "TX", "78744", "US", "United States", "work", "Office"),
      }),
      phone_numbers = array({ "+15125550100" }),
      created_at = "2024-04-01T09:00:00.000Z", updated_at = "2024-04-02T10:00:00.000Z",
    }),
    account("3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a05", "9005", "Umbrella Corp", {
      industries = array({ "Pharmaceuticals" }),
      addresses = array({}),
      created_at = "2024-05-01T09:00:00.000Z", updated_at = "2024-05-05T17:45:00.000Z",
    }),
  }
end

local function list(id, remote_id, name, items, created, updated, type_value, type_source)
  local its = array({})
  for i, item in ipairs(items) do
    its[i] = make("ListItem", { id = item[1], remote_id = item[2] })
  end
  return entry(make("List", {
    id = id, remote_id = remote_id, name = name, items = its,
    created_at = created, updated_at = updated, type = enum(type_value, type_source),
  }), updated)
end

local function build_lists()
  return {
    list("7a9c3d2e-51f0-4b8e-8d4c-2e1f0a9b3c01", "list-101", "Newsletter subscribers",
      { { "c0ffee00-0000-4000-8000-000000000001", "3001" }, { "c0ffee00-0000-4000-8000-000000000002", "3002" } },
      "2024-01-05T10:00:00.000Z", "2024-01-06T10:00:00.000Z", "contacts", "Contacts"),
    list("7a9c3d2e-51f0-4b8e-8d4c-2e1f0a9b3c02", "list-102", "Key accounts",
      { { "3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a01", "9001" }, { "3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a02", "9002" },
        { "3f1e2c4a-7b1d-4e0a-9a52-0c6f5d1b2a04", "9004" } },
      "2024-02-05T10:00:00.000Z", "2024-03-06T10:00:00.000Z", "companies", "Companies"),
    list("7a9c3d2e-51f0-4b8e-8d4c-2e1f0a9b3c03", "list-103", "Empty list", {},
      "2024-03-05T10:00:00.000Z", "2024-03-05T10:00:00.000Z", "contacts", "Contacts"),
  }
end

local function cfd(id, remote_id, name, description, type_value, type_source, options, upd)
  local rec = make("CustomFieldDefinition", {
    id = id, remote_id = remote_id, name = name, description = description,
    type = enum(type_value, type_source),
  })
  if options then
    local opts = array({})
    for i, o in ipairs(options) do
      opts[i] = make("CustomFieldOption", { id = o[1], value = o[2] })
    end
    rec.options = opts
  end
  return entry(rec, upd)
end

local function build_custom_field_definitions()
  return {
    cfd("8187e5da-dc77-475e-9949-af0f1fa4e4e3", "training_completion_status", "Training Completion Status",
      "Where the contact is in the onboarding training", "list", "enumeration",
      { { "value_456", "Completed" }, { "value_123", "In Progress" } }, "2024-01-02T00:00:00.000Z"),
    cfd("5b2d8f1c-3e4a-4c6b-9d7e-1a2b3c4d5e01", "favourite_colour", "Favourite Colour",
      "Free text", "text", "string", nil, "2024-02-02T00:00:00.000Z"),
    cfd("5b2d8f1c-3e4a-4c6b-9d7e-1a2b3c4d5e02", "employee_count", "Employee Count",
      "Number of employees at the contact's company", "float", "number", nil, "2024-03-02T00:00:00.000Z"),
  }
end

local shared

--- The read-only seeded collections (built once, shared by every account).
function seed.read_only()
  if not shared then
    shared = {
      accounts = build_accounts(),
      lists = build_lists(),
      custom_field_definitions = build_custom_field_definitions(),
    }
  end
  return shared
end

--- n generated contacts (fresh tables: contacts are mutable).
function seed.contacts(n)
  local out = {}
  local base = isotime.parse("2024-06-01T00:00:00.000Z")
  for i = 1, n do
    local ms = base + i * 60000
    local ts = isotime.format_ms(ms)
    out[i] = { upd = ms, rec = make("Contact", {
      id = string.format("5eed0000-0000-4000-8000-%012d", i),
      remote_id = tostring(41000000 + i),
      first_name = "Seed", last_name = "Contact " .. i, company_name = "Seed Co",
      emails = array({ string.format("seed%d@example.com", i) }),
      phone_numbers = array({}),
      created_at = ts, updated_at = ts,
    }) }
  end
  return out
end

return seed
