// viewer.test.mjs - the viewer page (GET /) in a real browser: Debian's
// headless Chromium, driven by playwright-core, against the real mandelweb
// binary on a free loopback port. No browser is downloaded: Chromium comes
// from Debian (make deps), and the launch flags keep it off the network.
//
//   node --test tests/browser/viewer.test.mjs   (make test runs it)
//   MW_BIN=build/address-undefined/bin  to test another build
//   MW_ARTIFACTS=dir  where the screenshots go (default build/artifacts)
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { artifacts, launchBrowser, startServer, stopServer } from "./mandelweb.mjs";

const W = 800, H = 600;
let server, base, browser;

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  ({ child: server, base } = await startServer(["--workers", "2"]));
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  if (server) await stopServer(server);
});

// A page that records console errors and uncaught exceptions.
async function open(opts = {}) {
  const ctx = await browser.newContext({ viewport: { width: W, height: H }, acceptDownloads: true, ...opts });
  const page = await ctx.newPage();
  page.errors = [];
  page.on("console", (m) => { if (m.type() === "error") page.errors.push(m.text()); });
  page.on("pageerror", (e) => page.errors.push(String(e)));
  return page;
}

// Waits for the picture on screen to be the one for the page's URL, and a
// URL other than 'was' (the view before a gesture); returns what it shows.
async function pictureFor(page, was = null) {
  await page.waitForFunction((was) => {
    const img = document.getElementById("pic"), stage = document.getElementById("stage");
    return location.search !== was && stage.dataset.shown === location.search &&
      img.complete && img.naturalWidth > 0 && !img.style.transform &&
      stage.getAttribute("aria-busy") === "false";
  }, was);
  return page.evaluate(() => {
    const img = document.getElementById("pic");
    const c = document.createElement("canvas");
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const g = c.getContext("2d");
    g.drawImage(img, 0, 0);
    const px = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
    return { w: img.naturalWidth, h: img.naturalHeight, cssW: img.width, cssH: img.height,
      centre: px(c.width >> 1, c.height >> 1), corner: px(2, 2), url: location.search };
  });
}

const view = (search) => Object.fromEntries(new URLSearchParams(search));

test("the page loads, without console errors, and shows the set filling the window", async (t) => {
  const page = await open();
  const resp = await page.goto(base + "/");
  assert.equal(resp.status(), 200);
  assert.match(resp.headers()["content-security-policy"], /default-src 'none'/);
  const pic = await pictureFor(page);
  assert.equal(pic.w, W);          // device pixel ratio 1: one pixel a CSS pixel
  assert.equal(pic.h, H);
  assert.equal(pic.cssW, W);
  assert.equal(pic.cssH, H);
  assert.deepEqual(pic.centre, [0, 0, 0], "(-0.75, 0) is in the set: black");
  assert.notDeepEqual(pic.corner, [0, 0, 0], "the corner is outside the set");
  const v = view(pic.url);
  assert.equal(v.iter, "1000");
  assert.equal(v.colour, "smooth");
  assert.equal(await page.isVisible("#capture"), true, "loopback: the trace button shows");
  await page.screenshot({ path: resolve(artifacts, "viewer.png") });
  t.diagnostic(`screenshot: ${resolve(artifacts, "viewer.png")}`);
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a click zooms in at that point and the URL follows; back and keys work", async () => {
  const page = await open();
  await page.goto(base + "/");
  const first = await pictureFor(page);
  const before = view(first.url);
  // The plane point under (600, 300) stays under the pointer at twice the zoom.
  await page.mouse.click(600, 300);
  const after = await pictureFor(page, first.url);
  const v = view(after.url);
  assert.equal(Number(v.zoom), 2 * Number(before.zoom));
  const unit0 = 2.048 / Number(before.zoom) / H, unit1 = unit0 / 2;
  const under = Number(before.cx) + 200 * unit0;
  assert.ok(Math.abs(Number(v.cx) - (under - 200 * unit1)) < 1e-6, `cx ${v.cx}`);
  assert.ok(Math.abs(Number(v.cy) - Number(before.cy)) < 1e-6, `cy ${v.cy}`);
  // The view is in the URL: a reload shows the same view.
  await page.reload();
  assert.deepEqual(view((await pictureFor(page)).url), v);
  // Keyboard: - zooms out again; the history's back button returns too.
  await page.focus("#stage");
  await page.keyboard.press("-");
  const out = await pictureFor(page, after.url);
  assert.equal(Number(view(out.url).zoom), Number(before.zoom));
  await page.keyboard.press("ArrowRight");
  const panned = await pictureFor(page, out.url);
  assert.ok(Number(view(panned.url).cx) > Number(view(out.url).cx), "ArrowRight shows what is right");
  await page.goBack();
  assert.equal((await pictureFor(page, panned.url)).url, out.url);
  // Controls: colour and iterations go to the server and into the URL.
  await page.selectOption("#colour", "gray");
  const grey = await pictureFor(page, out.url);
  assert.equal(view(grey.url).colour, "gray");
  await page.fill("#iter", "200");
  await page.press("#iter", "Enter");
  const c = view((await pictureFor(page, grey.url)).url);
  assert.equal(c.colour, "gray");
  assert.equal(c.iter, "200");
  await page.screenshot({ path: resolve(artifacts, "viewer-zoomed.png") });
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a tap and a pinch on a touch screen zoom in", async () => {
  const page = await open({ hasTouch: true, isMobile: true, viewport: { width: 390, height: 700 } });
  await page.goto(base + "/");
  const first = await pictureFor(page);
  const before = view(first.url);
  await page.touchscreen.tap(195, 500);
  const tapped = await pictureFor(page, first.url);
  const v = view(tapped.url);
  assert.equal(Number(v.zoom), 2 * Number(before.zoom));
  // Two fingers spread from 100 to 300 px apart: the zoom triples.
  const cdp = await page.context().newCDPSession(page);
  const touch = (type, d) => cdp.send("Input.dispatchTouchEvent", { type, touchPoints:
    type === "touchEnd" ? [] : [{ x: 195 - d / 2, y: 400, id: 1 }, { x: 195 + d / 2, y: 400, id: 2 }] });
  await touch("touchStart", 100);
  for (let d = 120; d <= 300; d += 20) await touch("touchMove", d);
  await touch("touchEnd", 300);
  const pinched = view((await pictureFor(page, tapped.url)).url);
  assert.ok(Math.abs(Number(pinched.zoom) / Number(v.zoom) - 3) < 0.01, `zoom ${pinched.zoom}`);
  await page.context().close();
});

test("a bad parameter shows the server's reason", async () => {
  const page = await open();
  await page.goto(base + "/?iter=0&zoom=1");
  await page.waitForFunction(() => document.getElementById("msg").textContent !== "");
  const msg = await page.textContent("#msg");
  assert.match(msg, /iter must be an integer in 1\.\.1000000/);
  assert.equal(await page.getAttribute("#stage", "aria-busy"), "false");
  await page.screenshot({ path: resolve(artifacts, "viewer-400.png") });
  // The one console line is the browser's note of the 400 itself.
  assert.ok(page.errors.every((e) => /status of 400/.test(e)), page.errors.join("\n"));
  await page.context().close();
});

test("a busy server's 503 is shown, and the page tries again after Retry-After", async () => {
  // One worker, one picture at a time, the scalar kernel: a 2 s picture
  // holds the only slot, so the page's first request is refused.
  // (--max-wait 60: refused by the count, never as "too big")
  const busy = await startServer(["--workers", "1", "--max-inflight", "1", "--kernel", "scalar",
    "--cache-mb", "0", "--max-wait", "60"]);
  try {
    const slow = fetch(busy.base + "/mandelbrot?w=256&h=256&iter=16000&cx=-0.1&cy=0&zoom=8");
    const metric = async () => (await (await fetch(busy.base + "/metrics")).text())
      .match(/^mandelweb_requests_in_flight (\d+)/m)?.[1];
    while ((await metric()) !== "1") await new Promise((r) => setTimeout(r, 20));
    const page = await open();
    await page.goto(busy.base + "/");
    await page.waitForFunction(() => /busy/.test(document.getElementById("msg").textContent));
    assert.match(await page.textContent("#msg"),
      /The server is busy \(503: busy: --max-inflight pictures are being rendered; .*\)\. Trying again in \d+ s/);
    await page.screenshot({ path: resolve(artifacts, "viewer-503.png") });
    assert.equal((await slow).status, 200);
    const pic = await pictureFor(page);  // a retry got it
    assert.equal(pic.w, W);
    assert.equal(await page.textContent("#msg"), "");
    await page.context().close();
  } finally {
    await stopServer(busy.child);
  }
});

test("Capture trace downloads Chrome trace JSON of what the server did", async () => {
  const page = await open();
  await page.goto(base + "/");
  await pictureFor(page);
  await page.selectOption("#secs", "1");
  const download = page.waitForEvent("download");
  await page.click("#capture");
  await page.mouse.click(600, 400); // a render inside the window (the panel is top left)
  const file = await (await download).path();
  const trace = JSON.parse(readFileSync(file, "utf8"));
  assert.ok(Array.isArray(trace.traceEvents) && trace.traceEvents.length > 0);
  assert.ok(trace.traceEvents.some((e) => e.name === "job"), "the click's render is in the trace");
  await page.waitForFunction(() => /Saved mandelweb-trace-/.test(document.getElementById("tracenote").textContent));
  assert.deepEqual(page.errors, []);
  await page.context().close();
});

test("a peer /debug/ does not answer sees no trace button", async () => {
  const other = await startServer(["--debug-allow", "none"]);
  try {
    const page = await open();
    await page.goto(other.base + "/");
    await pictureFor(page);
    assert.equal(await page.isVisible("#capture"), false);
    await page.context().close();
  } finally {
    await stopServer(other.child);
  }
});
