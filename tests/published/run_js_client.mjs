// Drive the published JS client @tdxvolt/volt-client-web 0.20.34 (pure-JS build)
// against a running Volt, under Node 20 with `ws` as the WebSocket class.
//
// Usage: VOLT_JS_ENV=<folder with node_modules> node run_js_client.mjs CONFIG.json FACTS.json
//
// FACTS holds wire_id, database_id, statements (name -> SQL), missing_id, publish_wire_id and
// publish_chunks. Steps run one after another, each with a timeout (a lost or
// malformed frame shows up in this client as a call that never settles, §8).
// The result is one JSON object on stdout.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const STEP_TIMEOUT_MS = 10000;
const envDir = process.env.VOLT_JS_ENV;
if (!envDir) {
  console.error("VOLT_JS_ENV must name the folder holding node_modules");
  process.exit(2);
}
const require = createRequire(join(envDir, "package.json"));
const WebSocket = require("ws");
const clientEntry = join(envDir, "node_modules", "@tdxvolt", "volt-client-web", "js", "index.js");
const { VoltClient } = await import(pathToFileURL(clientEntry).href);

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const facts = JSON.parse(readFileSync(process.argv[3], "utf8"));

function withTimeout(promise, ms = STEP_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function waitUntil(predicate, ms = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

function describeError(err) {
  return { name: err?.name, message: err?.message ?? String(err), description: err?.description, code: err?.code };
}

function track(call) {
  const seen = { data: [], errors: [], ended: false };
  call.on("data", (payload) => seen.data.push(payload));
  call.on("error", (err) => seen.errors.push(describeError(err)));
  call.on("end", () => { seen.ended = true; });
  return seen;
}

const b64 = (text) => Buffer.from(text, "utf8").toString("base64");
const unb64 = (text) => Buffer.from(text, "base64").toString("utf8");

const client = new VoltClient(WebSocket);
const homeId = config.credential.client_id;

const steps = {
  async unary() {
    const response = await withTimeout(client.GetResource({ resource_id: homeId }));
    return { ok: true, response };
  },
  async status_error() {
    try {
      const response = await withTimeout(client.GetResource({ resource_id: facts.missing_id }));
      return { ok: true, raised: false, response };
    } catch (err) {
      if (err?.message?.startsWith("timed out")) throw err;
      return { ok: true, raised: true, ...describeError(err), error: err?.message };
    }
  },
  async sql() {
    // The client wraps a bare request as {start: ...} (current schema).
    const tables = {};
    for (const [name, statement] of Object.entries(facts.statements)) {
      tables[name] = await withTimeout(client.SqlExecuteJSON({ database_id: facts.database_id, statement }));
    }
    return { ok: true, tables };
  },
  async subscribe() {
    const call = client.SubscribeWire({ wire_id: facts.wire_id });
    const seen = track(call);
    const gotChunks = await waitUntil(() => seen.data.length >= 2 || seen.errors.length > 0);
    call.send({ stop: true });
    const ended = await waitUntil(() => seen.ended || seen.errors.length > 0);
    const chunks = seen.data.filter((d) => d.chunk !== undefined).map((d) => unb64(d.chunk));
    return {
      ok: gotChunks && ended && seen.errors.length === 0,
      chunks, ended: seen.ended, errors: seen.errors,
      payloads_without_chunk: seen.data.filter((d) => d.chunk === undefined),
    };
  },
  async publish() {
    const call = client.PublishWire({ wire_id: facts.publish_wire_id });
    const seen = track(call);
    for (const text of facts.publish_chunks) call.send({ chunk: b64(text) });
    call.end();
    const ended = await waitUntil(() => seen.ended || seen.errors.length > 0);
    return { ok: ended && seen.errors.length === 0, ended: seen.ended, replies: seen.data, errors: seen.errors };
  },
  async unknown_method() {
    // GetSettings is called by this client's own API but absent from the 0.20.34 schema (§9).
    try {
      const response = await withTimeout(client.unaryCall("/tdx.volt_api.volt.v1.VoltAPI/GetSettings", {}));
      return { ok: true, raised: false, response };
    } catch (err) {
      if (err?.message?.startsWith("timed out")) throw err;
      return { ok: true, raised: true, ...describeError(err), error: err?.message };
    }
  },
};

const result = { client: "@tdxvolt/volt-client-web 0.20.34 (js)" };
try {
  await withTimeout(client.initialise(config));
  for (const [name, step] of Object.entries(steps)) {
    const began = Date.now();
    try {
      result[name] = await step();
    } catch (err) {
      result[name] = { ok: false, ...describeError(err), error: err?.message, stack: err?.stack };
    }
    result[name].seconds = (Date.now() - began) / 1000;
  }
} catch (err) {
  result.initialise = { ok: false, ...describeError(err), stack: err?.stack };
}
try { client.close(); } catch { /* the socket may already be gone */ }
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
