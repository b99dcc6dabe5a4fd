// Cases 1 and 2, the official TypeScript SDK (@stackone/stackone-client-ts,
// pinned in bench/package.json) on Node, against the same local server.
//   node bench/ts_sdk.js create BASE_URL API_KEY ACCOUNT_ID BODY_FILE N WARMUP
//     WARMUP then N sequential crm.createContact calls; prints
//     "RESULT n=N cpu_us=<process.cpuUsage() over the N> wall_us=..."
//   node bench/ts_sdk.js many BASE_URL API_KEY ACCOUNT_ID BODY_FILE N CONCURRENCY
//     N createContact calls, CONCURRENCY of them in flight at any time;
//     prints "RESULT n=N wall_us=<wall of the batch> cpu_us=..."
// BODY_FILE is the JSON body the Lua SDK sent (snake_case, as on the wire);
// the TypeScript SDK takes the same contact in camelCase.
"use strict";
const fs = require("fs");

let StackOne;
try {
  ({ StackOne } = require("@stackone/stackone-client-ts"));
} catch (e) {
  console.log("SKIP @stackone/stackone-client-ts is not installed (cd bench && npm ci)");
  process.exit(0);
}

const [mode, baseURL, apiKey, accountId, bodyFile, nArg, kArg] = process.argv.slice(2);
const n = Number(nArg);
const k = Number(kArg);

const camel = (s) => s.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
function toDto(wire) {
  const dto = {};
  for (const [key, value] of Object.entries(wire)) {
    if (key === "custom_fields") {
      dto.customFields = value.map((f) =>
        Object.fromEntries(Object.entries(f).map(([fk, fv]) => [camel(fk), fv])));
    } else {
      dto[camel(key)] = value; // passthrough stays as given
    }
  }
  return dto;
}
const dto = toDto(JSON.parse(fs.readFileSync(bodyFile, "utf8")));

const stackOne = new StackOne({
  security: { username: apiKey, password: "" },
  serverURL: baseURL,
});

async function createOne() {
  const res = await stackOne.crm.createContact({ xAccountId: accountId, crmCreateContactRequestDto: dto });
  if (!res.contactResult || !res.contactResult.data || !res.contactResult.data.id) {
    throw new Error("createContact: no contact in the result (HTTP " + (res.httpMeta && res.httpMeta.response.status) + ")");
  }
  return res.contactResult.data;
}

const cpuUs = (u) => u.user + u.system;

async function sequential() {
  for (let i = 0; i < k; i++) await createOne();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await createOne();
  const wall = Number((process.hrtime.bigint() - t0) / 1000n);
  console.log(`RESULT n=${n} cpu_us=${cpuUs(process.cpuUsage(c0))} wall_us=${wall}`);
}

async function concurrent() {
  let next = 0;
  let done = 0;
  async function worker() {
    while (next < n) {
      next++;
      await createOne();
      done++;
    }
  }
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(k, n) }, worker));
  const wall = Number((process.hrtime.bigint() - t0) / 1000n);
  if (done !== n) throw new Error(`created ${done} of ${n}`);
  console.log(`RESULT n=${n} wall_us=${wall} cpu_us=${cpuUs(process.cpuUsage(c0))}`);
}

(mode === "many" ? concurrent() : sequential()).catch((e) => {
  console.error("ts_sdk: " + (e && e.stack || e));
  process.exit(1);
});
