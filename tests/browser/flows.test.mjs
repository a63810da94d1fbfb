// flows.test.mjs - our traces' flows as JavaScript viewers read them:
// JSON.parse (every id a double, exact below 2^53: a flow's points still
// pair up), and Chrome DevTools' trace engine (npm @paulirish/trace_engine,
// the Performance panel's parser), which binds a flow point to the slice
// with its ts, pid, tid and cat, and groups one flow's points by cat, name
// and id in the order they come: it must find every flow whose start and
// end are in the window. A service trace (a request's flow: admit, jobs,
// encode, respond) fetched gzipped, and a CLI trace (wake-ups).
//
//   node --test tests/browser/flows.test.mjs   (make test runs it)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import * as Trace from "@paulirish/trace_engine/models/trace/trace.js";
import { artifacts, binDir, startServer, stopServer } from "./mandelweb.mjs";

// The trace engine measures layout with DOMRect; node has none.
globalThis.DOMRect ??= class { constructor(x = 0, y = 0, w = 0, h = 0) { Object.assign(this, { x, y, width: w, height: h }); } };

let server, base;
const docs = new Map();

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ child: server, base } = await startServer(["--workers", "2", "--cache-mb", "0", "--single-flight", "off"]));
  const window = fetch(`${base}/debug/trace?seconds=1`, { headers: { "Accept-Encoding": "gzip" } });
  await new Promise((ok) => setTimeout(ok, 100));
  const load = async (i) => { for (let k = 0; k < 6; k++) await (await fetch(`${base}/mandelbrot?w=256&h=256&cx=-0.${40 + i}${k}`)).arrayBuffer(); };
  await Promise.all([0, 1, 2, 3].map(load));
  const res = await window;
  assert.equal(res.headers.get("content-encoding"), "gzip", "asked for gzip, sent gzip");
  docs.set("service", await res.text()); // fetch has gunzipped it
  const file = resolve(artifacts, "flows-cli.json");
  execFileSync(resolve(binDir, "mandelbrot"), ["-w", "64", "-h", "64", "-workers", "2", "-mode", "workers",
    "-queue", "0", "-o", "/dev/null", "-trace", file], { stdio: "ignore" });
  docs.set("cli", readFileSync(file, "utf8"));
  rmSync(file);
});

after(async () => { if (server) await stopServer(server); });

for (const name of ["service", "cli"]) {
  test(`the ${name} trace's flows pair up after JSON.parse and in DevTools' trace engine`, async () => {
    const events = JSON.parse(docs.get(name)).traceEvents;
    const byId = new Map();
    for (const e of events) {
      if (!["s", "t", "f"].includes(e.ph)) continue;
      assert.ok(Number.isSafeInteger(e.id), `flow id ${e.id} is not exact as a double`);
      if (!byId.has(e.id)) byId.set(e.id, []);
      byId.get(e.id).push(e);
    }
    let complete = 0;
    for (const [id, points] of byId) {
      const s = points.filter((e) => e.ph === "s").length, f = points.filter((e) => e.ph === "f").length;
      assert.ok(s <= 1 && f <= 1, `flow ${id}: ${s} starts, ${f} ends`);
      complete += s === 1 && f === 1;
    }
    assert.ok(complete > 0, `no whole flow in the ${name} trace`);
    const model = Trace.TraceModel.Model.createWithAllHandlers();
    await model.parse(events);
    const found = model.parsedTrace().data.Flows.flows.length;
    assert.equal(found, complete, `DevTools binds ${found} of ${complete} flows`);
  });
}
