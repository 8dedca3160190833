// A grpc-js backend of sy.test.Echo (Unary) instrumented with the
// OpenTelemetry JS SDK: its SERVER spans go to an OTLP/HTTP receiver, so a
// test can check that the span switchyard's attempt sends as parent is the
// parent the SDK records.
// Usage: node backend.js PORT OTLP_URL PROTO_FILE
// Prints "listening" once the server is bound.
// SPDX-License-Identifier: MIT
'use strict';

const [port, otlpUrl, protoFile] = process.argv.slice(2);

// The SDK and the instrumentation come first: grpc-js is patched when it loads.
const { NodeTracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace-node');
const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');
const { GrpcInstrumentation } = require('@opentelemetry/instrumentation-grpc');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const provider = new NodeTracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'otel-backend' }),
  // One export per span: the test waits for it, no batching delay.
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: otlpUrl }))],
});
provider.register(); // W3C trace context propagator, the default
registerInstrumentations({ instrumentations: [new GrpcInstrumentation()] });

const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const def = protoLoader.loadSync(protoFile, { keepCase: true, longs: Number, defaults: true });
const pkg = grpc.loadPackageDefinition(def);
const server = new grpc.Server();

server.addService(pkg.sy.test.Echo.service, {
  Unary: (call, cb) => {
    const md = new grpc.Metadata();
    md.set('x-backend-id', 'otel');
    // What arrived, for the test's eyes.
    md.set('x-seen-traceparent', String(call.metadata.get('traceparent')[0] || '-'));
    call.sendMetadata(md);
    cb(null, { payload: call.request.payload, backend_id: 'otel', seq: 0 });
  },
});

server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  console.log('listening');
});

process.on('SIGTERM', () => {
  server.forceShutdown();
  provider.shutdown().finally(() => process.exit(0));
});
