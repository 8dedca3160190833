// A gRPC-Web client for tests/integration/test_web.c: Connect's gRPC-Web
// transport for Node.js (@connectrpc/connect-node), a third-party
// implementation of the protocol, calling sy.test.Echo through switchyard.
// The service comes from a descriptor set of tests/peers/echo.proto made at
// build time (protoc-c --descriptor_set_out), so nothing is generated here.
//   node grpcweb.cjs DESCRIPTOR_SET BASE_URL HTTP_VERSION CASE
// ($SY_WEB_AUTHZ, when set, is sent as the authorization header)
// prints one JSON line with what the call saw; exit 0 unless the script
// itself broke (the test asserts on the JSON).
// SPDX-License-Identifier: MIT
"use strict";

const fs = require("node:fs");
const { createClient, ConnectError } = require("@connectrpc/connect");
const { createGrpcWebTransport } = require("@connectrpc/connect-node");
const { createFileRegistry, fromBinary } = require("@bufbuild/protobuf");
const { FileDescriptorSetSchema } = require("@bufbuild/protobuf/wkt");

const [descPath, baseUrl, httpVersion, testCase] = process.argv.slice(2);
const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(descPath)));
const transport = createGrpcWebTransport({ baseUrl, httpVersion });
const echo = createClient(registry.getService("sy.test.Echo"), transport);
const control = createClient(registry.getService("sy.test.Control"), transport);

function headersOf(h) {
  const o = {};
  h.forEach((v, k) => {
    o[k] = v;
  });
  return o;
}

function errorOf(e) {
  const ce = ConnectError.from(e);
  return { code: ce.code, message: ce.rawMessage, metadata: headersOf(ce.metadata) };
}

async function run() {
  const started = Date.now();
  const out = { case: testCase };
  let header, trailer;
  const opts = {
    headers: { "x-echo-web": "from-node", "x-trailers": "2" },
    onHeader: (h) => {
      header = h;
    },
    onTrailer: (t) => {
      trailer = t;
    },
  };
  if (process.env.SY_WEB_AUTHZ) opts.headers.authorization = process.env.SY_WEB_AUTHZ;
  try {
    switch (testCase) {
      case "unary": {
        const payload = new Uint8Array(3000).map((_, i) => i % 251);
        const r = await echo.unary({ payload }, opts);
        out.payload_ok =
          r.payload.length === payload.length && r.payload.every((b, i) => b === payload[i]);
        out.backend_id = r.backendId;
        break;
      }
      case "stream": {
        // Replies 250 ms apart: they must arrive apart, not all at the end.
        out.arrivals = [];
        out.seqs = [];
        for await (const r of echo.serverStream(
          { responseCount: 4, delayMs: 250, responseSize: 100 },
          opts,
        )) {
          out.arrivals.push(Date.now() - started);
          out.seqs.push(r.seq);
        }
        break;
      }
      case "fail": // the backend sent headers, then status 7: the trailer frame
        await echo.unary({ failCode: 7 }, opts);
        break;
      case "unrouted": // switchyard's own trailers-only UNIMPLEMENTED
        await control.stats({}, opts);
        break;
      case "deadline": // the backend waits 3 s; the call may take 400 ms
        // grpc-timeout as a header without the client's own timer, so the
        // answer can only come from switchyard's deadline.
        opts.headers["grpc-timeout"] = "400m";
        await echo.unary({ delayMs: 3000 }, opts);
        break;
      default:
        throw new Error("unknown case " + testCase);
    }
    out.code = 0;
  } catch (e) {
    Object.assign(out, errorOf(e));
  }
  out.ms = Date.now() - started;
  if (header) out.header = headersOf(header);
  if (trailer) out.trailer = headersOf(trailer);
  console.log(JSON.stringify(out));
}

run().catch((e) => {
  console.error(e);
  process.exit(2);
});
