#!/usr/bin/env node
// The REST test backend: sy.user.v1.UserService (tests/rest/user.proto) on
// grpc-js, plus gRPC server reflection (v1 and v1alpha) answered from the
// protoc descriptor set the test built, byte for byte: the files it serves
// carry their google.api.http options exactly as protoc wrote them.
//
// Usage: backend.js --port P --descset FILE [--extra] [--reflection both|v1alpha|none]
//
// Every request message it receives and every response message it sends is
// printed as one JSON line on stdout, base64-encoded, so the test can check
// both against an independent protobuf implementation:
//   {"method":"GetUser","req":"CAc="}   {"method":"GetUser","resp":"..."}
//   {"method":"GetUser","status":5}
// "listening" is printed once the port accepts connections.
// SPDX-License-Identifier: MIT
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');
const descriptor = require('protobufjs/ext/descriptor');

const args = {};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--extra') args.extra = true;
  else args[a.replace(/^--/, '')] = process.argv[++i];
}
const INCLUDES = [
  path.join(__dirname),
  '/usr/share/gocode/src/github.com/gogo/googleapis',
  '/usr/include',
];

function log(obj) {
  fs.writeSync(1, JSON.stringify(obj) + '\n');
}

// ---- messages ----

const root = new protobuf.Root();
root.resolvePath = (origin, target) => {
  for (const dir of INCLUDES) {
    const p = path.join(dir, target);
    if (fs.existsSync(p)) return p;
  }
  return target;
};
root.loadSync(['user.proto'].concat(args.extra ? ['extra.proto'] : []), {keepCase: true});
root.resolveAll();
const T = (name) => root.lookupType('sy.user.v1.' + name);

function encode(type, obj) {
  const t = T(type);
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

function user(id) {
  return {
    name: `orgs/acme/users/${id}`,
    id: String(id),
    display_name: `User ${id}`,
    role: 'ROLE_ADMIN',
    tags: ['a', 'b c'],
    address: {city: 'Zürich', zip_code: '8001'},
    labels: {team: 'core', tier: 'gold'},
    avatar: Buffer.from([0, 1, 2, 250, 255]),
    created: {seconds: 1700000000 + Number(id), nanos: 500000000},
    past_addresses: [{city: 'Paris'}, {city: 'Lyon', zip_code: '69001'}],
    visits: '18446744073709551615',
    score: 0.25,
    active: true,
  };
}

class Fail extends Error {
  constructor(code, message, details) {
    super(message);
    this.code = code;
    this.details = details; // a google.rpc.Status to send as grpc-status-details-bin
  }
}

// google.rpc.Status{code, message, details: [Any{type_url, value}]}, by hand.
function rpcStatus(code, message, anyType, anyValue) {
  const w = protobuf.Writer.create();
  w.uint32(8).int32(code).uint32(18).string(message);
  w.uint32(26).fork().uint32(10).string('type.googleapis.com/' + anyType).uint32(18).bytes(anyValue).ldelim();
  return Buffer.from(w.finish());
}

// Unary handlers: (request object, raw bytes) -> [response type, object or raw Buffer]
const unary = {
  GetUser: (req) => {
    if (String(req.id) === '404') throw new Fail(grpc.status.NOT_FOUND, 'user 404 not found');
    return ['User', user(req.id)];
  },
  GetUserTags: (req) => ['User', user(req.id)],
  CreateUser: (req, raw) => ['User', raw], // echoed as received
  UpdateUser: (req) => {
    if (req.validate_only) {
      const msg = 'validate_only: nothing changed';
      throw new Fail(grpc.status.FAILED_PRECONDITION, msg,
        rpcStatus(grpc.status.FAILED_PRECONDITION, msg, 'sy.user.v1.Address', encode('Address', {city: 'Nowhere'})));
    }
    return ['User', req.user || {}];
  },
  DeleteUser: () => ['google.protobuf.Empty', Buffer.alloc(0)],
  ListUsers: (req) => {
    const n = req.page_size > 0 ? req.page_size : 2;
    const users = [];
    for (let i = 1; i <= n; i++) users.push(user(i));
    return ['ListUsersResponse', {users, next_page_token: req.page_token ? '' : 'p2'}];
  },
  GetBlob: (req) => ['Blob', {path: req.path, data: Buffer.from('hello')}],
  Ping: (req) => ['PingReply', {message: `pong ${req.who}`}],
};

const inputs = {
  GetUser: 'GetUserRequest', GetUserTags: 'GetUserRequest', CreateUser: 'User',
  UpdateUser: 'UpdateUserRequest', DeleteUser: 'DeleteUserRequest',
  ListUsers: 'ListUsersRequest', WatchUsers: 'WatchUsersRequest', GetBlob: 'GetBlobRequest',
  Ping: 'PingRequest',
};

const raw = (b) => b;
function method(service, name, stream) {
  return {
    path: `/sy.user.v1.${service}/${name}`,
    requestStream: false,
    responseStream: stream,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  };
}

function decode(name, bytes) {
  const t = T(inputs[name]);
  return t.toObject(t.decode(bytes), {longs: String, enums: String, defaults: true});
}

function unaryHandler(name) {
  return (call, cb) => {
    log({method: name, req: call.request.toString('base64')});
    try {
      const [type, obj] = unary[name](decode(name, call.request), call.request);
      const out = Buffer.isBuffer(obj) ? obj : encode(type, obj);
      log({method: name, resp: out.toString('base64')});
      log({method: name, status: 0});
      cb(null, out);
    } catch (e) {
      const metadata = new grpc.Metadata();
      if (e.details) metadata.set('grpc-status-details-bin', e.details);
      log({method: name, status: e.code || grpc.status.UNKNOWN});
      cb({code: e.code || grpc.status.UNKNOWN, details: e.message, metadata});
    }
  };
}

function watchUsers(call) {
  const req = decode('WatchUsers', call.request);
  log({method: 'WatchUsers', req: call.request.toString('base64')});
  const first = Number(req.first_id) || 1;
  for (let i = 0; i < req.count; i++) {
    const out = encode('User', user(first + i));
    log({method: 'WatchUsers', resp: out.toString('base64')});
    call.write(out);
  }
  if (String(req.first_id) === '666') {
    log({method: 'WatchUsers', status: grpc.status.DATA_LOSS});
    call.emit('error', {code: grpc.status.DATA_LOSS, details: 'the stream broke'});
    return;
  }
  log({method: 'WatchUsers', status: 0});
  call.end();
}

const server = new grpc.Server();
{
  const def = {}, impl = {};
  for (const name of Object.keys(inputs)) {
    if (name === 'Ping') continue;
    def[name] = method('UserService', name, name === 'WatchUsers');
    impl[name] = name === 'WatchUsers' ? watchUsers : unaryHandler(name);
  }
  server.addService(def, impl);
  if (args.extra)
    server.addService({Ping: method('AdminService', 'Ping', false)}, {Ping: unaryHandler('Ping')});
}

// ---- reflection, from the descriptor set ----

// The raw FileDescriptorProto entries (field 1) of a FileDescriptorSet.
function splitSet(buf) {
  const out = [];
  let i = 0;
  const varint = () => {
    let v = 0, shift = 0, b;
    do {
      b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (i < buf.length) {
    const tag = varint();
    if (tag !== 0x0a) throw new Error('not a FileDescriptorSet');
    const n = varint();
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

const files = new Map(); // name -> {raw, deps}
const symbols = new Map(); // full name -> file name
const services = [];
for (const raw of splitSet(fs.readFileSync(args.descset))) {
  const f = descriptor.FileDescriptorProto.decode(raw);
  const pkg = f.package ? f.package + '.' : '';
  files.set(f.name, {raw, deps: f.dependency || []});
  const addMsgs = (prefix, msgs) => {
    for (const m of msgs || []) {
      symbols.set(prefix + m.name, f.name);
      addMsgs(prefix + m.name + '.', m.nestedType);
      for (const e of m.enumType || []) symbols.set(prefix + m.name + '.' + e.name, f.name);
    }
  };
  addMsgs(pkg, f.messageType);
  for (const e of f.enumType || []) symbols.set(pkg + e.name, f.name);
  for (const s of f.service || []) {
    symbols.set(pkg + s.name, f.name);
    for (const m of s.method || []) symbols.set(pkg + s.name + '.' + m.name, f.name);
    if (args.extra || s.name !== 'AdminService') services.push(pkg + s.name);
  }
}

// A file and everything it imports, the file first (as grpc C++ answers).
function withDeps(name, seen = new Set()) {
  if (seen.has(name) || !files.has(name)) return [];
  seen.add(name);
  const f = files.get(name);
  let out = [f.raw];
  for (const d of f.deps) out = out.concat(withDeps(d, seen));
  return out;
}

const reflRoot = new protobuf.Root();
reflRoot.loadSync('/usr/share/grpc-proto/grpc/reflection/v1/reflection.proto', {keepCase: true});
const Req = reflRoot.lookupType('grpc.reflection.v1.ServerReflectionRequest');
const Resp = reflRoot.lookupType('grpc.reflection.v1.ServerReflectionResponse');

function answer(req) {
  const r = {valid_host: req.host, original_request: req};
  const notFound = (what) => ({error_response: {error_code: grpc.status.NOT_FOUND, error_message: `${what} not found`}});
  if (req.list_services !== undefined && req.list_services !== null) {
    r.list_services_response = {service: services.concat(['grpc.reflection.v1.ServerReflection']).map((name) => ({name}))};
  } else if (req.file_containing_symbol) {
    const f = symbols.get(req.file_containing_symbol);
    Object.assign(r, f ? {file_descriptor_response: {file_descriptor_proto: withDeps(f)}} : notFound(req.file_containing_symbol));
  } else if (req.file_by_filename) {
    Object.assign(r, files.has(req.file_by_filename)
      ? {file_descriptor_response: {file_descriptor_proto: withDeps(req.file_by_filename)}}
      : notFound(req.file_by_filename));
  } else {
    r.error_response = {error_code: grpc.status.UNIMPLEMENTED, error_message: 'not supported'};
  }
  return Buffer.from(Resp.encode(Resp.fromObject(r)).finish());
}

function reflection(version) {
  const def = {
    ServerReflectionInfo: Object.assign(method('x', 'x', true), {
      path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
      requestStream: true,
    }),
  };
  const impl = {
    ServerReflectionInfo: (call) => {
      call.on('data', (bytes) => {
        const req = Req.toObject(Req.decode(bytes), {oneofs: true});
        log({reflection: version, request: req.message_request});
        call.write(answer(req));
      });
      call.on('end', () => call.end());
    },
  };
  server.addService(def, impl);
}
const mode = args.reflection || 'both';
if (mode === 'both') reflection('v1');
if (mode === 'both' || mode === 'v1alpha') reflection('v1alpha');

server.bindAsync(`127.0.0.1:${args.port}`, grpc.ServerCredentials.createInsecure(), (err) => {
  if (err) {
    console.error(err.message);
    process.exit(1);
  }
  log({listening: true});
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
