// speedscope.test.mjs - our traces in the speedscope web app (npm
// speedscope, pinned by package-lock.json), in Debian's headless Chromium:
// each must import with no error, no warning and no alert, as a new user
// would open it. speedscope's Chrome importer rebuilds a call stack per
// thread from the "X" slices and says so when a slice does not nest
// ("Tried to end ..."), so this is also a check of the nesting rule.
//
//   node --test tests/browser/speedscope.test.mjs   (make test runs it)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { gzipSync } from "node:zlib";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, extname, resolve } from "node:path";
import { createRequire } from "node:module";
import { artifacts, binDir, launchBrowser, startServer, stopServer } from "./mandelweb.mjs";

const app = resolve(dirname(createRequire(import.meta.url).resolve("speedscope/package.json")), "dist/release");
const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json",
  ".wasm": "application/wasm", ".png": "image/png", ".ico": "image/x-icon", ".woff2": "font/woff2", ".txt": "text/plain" };
const traces = new Map(); // name -> the trace's bytes
let server, base, browser, files, filesBase;

// The app's files and the traces, on a loopback port of our own.
function serveFiles() {
  return new Promise((ok) => {
    const s = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
      let body = path.startsWith("/traces/") ? traces.get(path.slice(8)) : null;
      if (!body && !path.startsWith("/traces/") && !path.includes("..")) {
        try { body = readFileSync(resolve(app, "." + (path === "/" ? "/index.html" : path))); } catch { body = null; }
      }
      if (!body) { res.writeHead(404).end(); return; }
      res.writeHead(200, { "Content-Type": types[extname(path)] ?? "application/octet-stream" }).end(body);
    });
    s.listen(0, "127.0.0.1", () => ok(s));
  });
}

// With CPU samples speedscope imports them (a sampled profile a thread);
// with -trace-hz 0 it rebuilds each thread's stack from the slices.
function cliTrace(mode, hz) {
  const name = `cli-${mode}${hz === "0" ? "-slices" : ""}.json`;
  const file = resolve(artifacts, `speedscope-${name}`);
  const size = hz === "0" ? "96" : "512"; // the samples need a render of some milliseconds
  execFileSync(resolve(binDir, "mandelbrot"), ["-w", size, "-h", size, "-workers", "2", "-mode", mode,
    "-o", "/dev/null", "-trace-hz", hz, "-trace", file], { stdio: "ignore" });
  traces.set(name, readFileSync(file));
  rmSync(file);
}

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  cliTrace("row", "1000");
  cliTrace("workers", "0");
  cliTrace("px", "0");
  ({ child: server, base } = await startServer(["--workers", "2", "--cache-mb", "0"]));
  for (const [name, query] of [["service.json", ""], ["service-slices.json", "&samples=off"]]) {
    const window = fetch(`${base}/debug/trace?seconds=1${query}`).then((r) => r.arrayBuffer());
    await new Promise((ok) => setTimeout(ok, 200));
    await Promise.all([0, 1, 2, 3, 4, 5].map((i) => fetch(`${base}/mandelbrot?w=384&h=384&cx=-0.${30 + i}`)
      .then((r) => r.arrayBuffer())));
    traces.set(name, Buffer.from(await window));
  }
  // A gzipped trace, as `-trace x.json.gz` and /debug/trace with
  // Accept-Encoding: gzip give one: speedscope opens it as it is.
  traces.set("cli-row.json.gz", gzipSync(traces.get("cli-row.json")));
  files = await serveFiles();
  filesBase = `http://127.0.0.1:${files.address().port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  files?.close();
  if (server) await stopServer(server);
});

for (const name of ["cli-row.json", "cli-workers-slices.json", "cli-px-slices.json", "service.json",
  "service-slices.json", "cli-row.json.gz"]) {
  test(`speedscope imports ${name} with no error or warning`, async (t) => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const said = [];
    page.on("console", (m) => {
      // Chromium's own notes on its software GL are not speedscope's.
      if ((m.type() === "error" || m.type() === "warning") && !m.text().startsWith("[.WebGL-")) said.push(m.text());
    });
    page.on("pageerror", (e) => said.push(String(e)));
    page.on("dialog", (d) => { said.push(`alert: ${d.message()}`); d.dismiss(); });
    const url = `${filesBase}/traces/${name}`;
    await page.goto(`${filesBase}/index.html#profileURL=${encodeURIComponent(url)}`);
    await page.waitForFunction(() => / - speedscope$/.test(document.title) ||
      /Something went wrong|Unrecognized format/.test(document.body.innerText), null, { timeout: 30000 });
    const text = await page.evaluate(() => document.body.innerText);
    assert.doesNotMatch(text, /Something went wrong|Unrecognized format/);
    assert.deepEqual(said, [], `speedscope said: ${said.join("\n")}`);
    const shot = resolve(artifacts, `speedscope-${name.replace(".json", "").replace(".gz", "-gz")}.png`);
    await page.screenshot({ path: shot });
    t.diagnostic(`${await page.title()}; screenshot: ${shot}`);
    await page.close();
  });
}
