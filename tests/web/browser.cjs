// A real browser against switchyard (tests/integration/test_web.c): Debian's
// headless Chromium, driven by playwright-core, loads a page from another
// origin (a static server on a second loopback port, started here) whose
// script calls switchyard with gRPC-Web over fetch(), unary and server
// streaming, and writes what it gets into the DOM. The DOM is printed as
// one JSON line for the test to check.
//   node browser.cjs PAGE_PORT SWITCHYARD_URL
// SPDX-License-Identifier: MIT
"use strict";

const http = require("node:http");
const { chromium } = require("playwright-core");

const [pagePort, syUrl] = process.argv.slice(2);

// The page: gRPC-Web framing and the two EchoRequest fields it needs are
// written out by hand, as a small app without a code generator would.
const page = `<!doctype html>
<html><head><meta charset="utf-8"><title>switchyard gRPC-Web</title></head>
<body>
<p id="unary">pending</p>
<ol id="stream"></ol>
<p id="stream-status">pending</p>
<script>
const SY = ${JSON.stringify(syUrl)};
const t0 = performance.now();
function varint(n) { const b = []; while (n > 127) { b.push((n & 127) | 128); n >>>= 7; } b.push(n); return b; }
function echoRequest(text, count, delayMs) {
  const p = new TextEncoder().encode(text);
  let m = [0x0a, ...varint(p.length), ...p];
  if (count) m = m.concat([0x18, ...varint(count)]);
  if (delayMs) m = m.concat([0x20, ...varint(delayMs)]);
  const f = new Uint8Array(5 + m.length);
  new DataView(f.buffer).setUint32(1, m.length);
  f.set(m, 5);
  return f;
}
// EchoReply: payload (1, bytes), backend_id (2, string), seq (3, varint).
function echoReply(b) {
  const r = { payload: "", backend: "", seq: 0 };
  for (let i = 0; i < b.length;) {
    const tag = b[i++];
    if ((tag & 7) === 2) {
      let len = 0, s = 0; while (b[i] & 128) { len |= (b[i++] & 127) << s; s += 7; } len |= b[i++] << s;
      const v = new TextDecoder().decode(b.subarray(i, i + len)); i += len;
      if (tag >> 3 === 1) r.payload = v; else if (tag >> 3 === 2) r.backend = v;
    } else {
      let v = 0, s = 0; while (b[i] & 128) { v |= (b[i++] & 127) << s; s += 7; } v |= b[i++] << s;
      if (tag >> 3 === 3) r.seq = v;
    }
  }
  return r;
}
// Reads gRPC-Web frames as they arrive: onMessage per message, then the trailers.
async function call(method, body, onMessage) {
  const res = await fetch(SY + "/sy.test.Echo/" + method, {
    method: "POST",
    headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1", "x-echo-page": "chromium" },
    body,
  });
  const reader = res.body.getReader();
  let buf = new Uint8Array(0), trailers = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const n = new Uint8Array(buf.length + value.length); n.set(buf); n.set(value, buf.length); buf = n;
    while (buf.length >= 5) {
      const len = new DataView(buf.buffer, buf.byteOffset).getUint32(1);
      if (buf.length < 5 + len) break;
      const frame = buf.subarray(5, 5 + len);
      if (buf[0] & 0x80) trailers += new TextDecoder().decode(frame); else onMessage(echoReply(frame));
      buf = buf.subarray(5 + len);
    }
  }
  const status = /grpc-status:\\s*(\\d+)/.exec(trailers) || [null, res.headers.get("grpc-status")];
  return { status: status[1], echoed: res.headers.get("x-echo-page") };
}
(async () => {
  try {
    let reply;
    const u = await call("Unary", echoRequest("hello from chromium", 0, 0), (m) => { reply = m; });
    document.getElementById("unary").textContent =
      "status=" + u.status + " payload=" + reply.payload + " backend=" + reply.backend + " echoed=" + u.echoed;
  } catch (e) {
    document.getElementById("unary").textContent = "error " + e;
  }
  try {
    const s = await call("ServerStream", echoRequest("tick", 3, 300), (m) => {
      const li = document.createElement("li");
      li.textContent = "seq=" + m.seq + " at=" + Math.round(performance.now() - t0);
      document.getElementById("stream").appendChild(li);
    });
    document.getElementById("stream-status").textContent = "status=" + s.status;
  } catch (e) {
    document.getElementById("stream-status").textContent = "error " + e;
  }
})();
</script>
</body></html>`;

async function main() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  await new Promise((ok) => server.listen(Number(pagePort), "127.0.0.1", ok));
  // Flags for this machine kind: root needs --no-sandbox; no background
  // networking (the network is closed). playwright gives it a fresh profile.
  const browser = await chromium.launch({
    executablePath: process.env.SY_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const out = {};
  try {
    const tab = await browser.newPage();
    const console_ = [];
    tab.on("console", (m) => console_.push(m.text()));
    await tab.goto("http://127.0.0.1:" + pagePort + "/");
    await tab.waitForFunction(
      () => document.getElementById("stream-status").textContent !== "pending",
      null,
      { timeout: 20000 },
    );
    out.unary = await tab.textContent("#unary");
    out.stream = await tab.$$eval("#stream li", (lis) => lis.map((li) => li.textContent));
    out.stream_status = await tab.textContent("#stream-status");
    out.console = console_;
  } finally {
    await browser.close();
    server.close();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
