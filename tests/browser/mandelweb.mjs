// mandelweb.mjs - what the browser tests share: the real mandelweb binary
// started on a free loopback port, and Debian's Chromium launched headless
// with the network kept off.
import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { chromium } from "playwright-core";

export const binDir = resolve(process.env.MW_BIN ?? "bin");
export const artifacts = resolve(process.env.MW_ARTIFACTS ?? "build/artifacts");

// Starts mandelweb with args; resolves with its child and base URL.
export function startServer(args) {
  return new Promise((ok, fail) => {
    const child = spawn(resolve(binDir, "mandelweb"), ["--port", "0", "--access-log", "off", ...args],
      { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+?)\/?\n/);
      if (m) ok({ child, base: m[1] });
    });
    child.on("error", fail);
    child.on("exit", (code) => fail(new Error(`mandelweb exited (${code}) before listening: ${out}`)));
  });
}

export function stopServer(child) {
  return new Promise((ok) => { child.once("exit", ok); child.kill("SIGTERM"); });
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}
