// A small HTTPS server that speaks HTTP/2 (and HTTP/1.1), for the TLS and
// transport tests. It prints "PORT <n>" once it listens.
//
// - Every unscripted request answers a one-item page
//   {"data":[{"id":"a1","http":<httpVersion>}],"next":null}, except a
//   minimal contact store: POST /unified/crm/contacts, and GET and PATCH
//   /unified/crm/contacts/{id}.
// - /__control/ (HTTP/1.1 or HTTP/2 on the same port, never journaled):
//     GET    /__control/requests  the journal (each request's connection,
//                                  and whether its TLS session was resumed)
//     DELETE /__control/requests  clear it -> 204
//     POST   /__control/script    {"path", "method"?, "responses": [step...]} -> 204
//     GET    /__control/script    pending steps
//     DELETE /__control/script    drop them -> 204
// - Steps (FIFO per matching request): {"refuse": true}, {"goaway": true},
//   {"close": "before"}, {"reset": true}, {"status", "json"|"body", "headers"},
//   {"pass": true}; "delay" (seconds) before acting, except refuse and goaway.
// See spec/support/README.md.
'use strict';
const http2 = require('http2');
const http = require('http');
const tls = require('tls');
const fs = require('fs');
const path = require('path');
const { Duplex } = require('stream');

const { NGHTTP2_REFUSED_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

let journal = [];   // {method, path, http, stream_id, connection, body, outcome}
let steps = [];     // {method, path, step}
const contacts = new Map();
let nextContact = 0;

// TLS is terminated here, and ALPN picks the protocol (h2, else HTTP/1.1,
// like allowHTTP1). An h2 connection reaches the HTTP/2 server through a
// Link, so that this server owns the bytes between nghttp2 and TLS: Node's
// session.goaway() cannot send a last-stream-id of 0 (it takes 0 to mean
// "the last stream seen"), and writing to a TLS socket that an HTTP/2
// session uses crashes Node.
const dir = path.join(__dirname, '..', 'data', 'tls');
const server = tls.createServer({
  key: fs.readFileSync(path.join(dir, 'key.pem')),
  cert: fs.readFileSync(path.join(dir, 'cert.pem')),
  // H2_HTTP1_ONLY (environment): ALPN offers HTTP/1.1 alone
  ALPNProtocols: process.env.H2_HTTP1_ONLY ? ['http/1.1'] : ['h2', 'http/1.1'],
});
// H2_MAX_STREAMS (environment): the streams a connection may carry at
// once (SETTINGS_MAX_CONCURRENT_STREAMS); default: Node's, unlimited
const maxStreams = Number(process.env.H2_MAX_STREAMS) || undefined;
const h2server = http2.createServer(maxStreams ? { settings: { maxConcurrentStreams: maxStreams } } : {});
const h1server = http.createServer();

// The HTTP/2 session's socket: bytes from the TLS socket go up, frames from
// nghttp2 go down. It keeps track of frame boundaries in what goes down so
// that a frame can be put in between (inject), after which nothing more
// from nghttp2 is sent and the TLS connection ends.
class Link extends Duplex {
  constructor(socket) {
    super();
    this.socket = socket;
    this.left = 0;               // payload bytes left in the current frame
    this.head = Buffer.alloc(0); // the bytes of a frame header seen so far
    this.last = null;            // the frame to send at the next boundary
    this.muted = false;
    socket.on('data', (d) => { if (!this.push(d)) socket.pause(); });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
  }
  _read() { this.socket.resume(); }
  _write(chunk, _enc, cb) {
    if (this.muted) return cb();
    let i = 0;
    while (i < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - i);
        i += n;
        this.left -= n;
      } else {
        const n = Math.min(9 - this.head.length, chunk.length - i);
        this.head = Buffer.concat([this.head, chunk.subarray(i, i + n)]);
        i += n;
        if (this.head.length === 9) {
          this.left = this.head.readUIntBE(0, 3);
          this.head = Buffer.alloc(0);
        }
      }
      if (this.last && this.left === 0 && this.head.length === 0) {
        this.socket.write(chunk.subarray(0, i));
        cb();
        this.finish();
        return undefined;
      }
    }
    this.socket.write(chunk);
    return cb();
  }
  // the session ends gracefully: finish once TLS has flushed everything
  _final(cb) { this.socket.end(() => cb()); }
  _destroy(err, cb) {
    // an ending TLS socket is left to flush and close (the peer's FIN
    // closes it; the timer is a backstop); else it goes now
    if (this.socket.writableEnded) {
      setTimeout(() => this.socket.destroy(), 5000).unref();
    } else {
      this.socket.destroy();
    }
    cb(err);
  }
  // send frame at the next frame boundary, end the connection, then call
  // done (nothing from nghttp2 gets through any more by then)
  inject(frame, done) {
    this.last = frame;
    this.done = done;
    if (this.left === 0 && this.head.length === 0) this.finish();
  }
  finish() {
    if (this.muted) return;
    this.muted = true;
    this.socket.write(this.last);
    this.socket.end();
    if (this.done) setImmediate(this.done);
  }
}

// Every TLS session gets an id (from 1), kept on the HTTP/2 session or on
// the TLS socket for HTTP/1.1.
let nextConn = 0;
let linking = null; // the {id, link} being handed to h2server
server.on('secureConnection', (socket) => {
  const id = ++nextConn;
  socket.on('error', () => {});
  if (socket.alpnProtocol === 'h2') {
    const link = new Link(socket);
    link.on('error', () => {});
    linking = { id, link };
    h2server.emit('connection', link);
    linking = null;
  } else {
    socket.connId = id;
    h1server.emit('connection', socket);
  }
});
h2server.on('session', (session) => {
  // emitted while h2server handles the 'connection' event above
  session.connId = linking.id;
  session.link = linking.link;
  session.on('error', () => {});
});
server.on('tlsClientError', () => {});
h2server.on('sessionError', () => {});
h1server.on('clientError', (_err, socket) => socket.destroy());

function send(res, status, value, headers) {
  const body = value === undefined ? '' : JSON.stringify(value);
  const h = Object.assign({}, headers || {});
  if (body !== '') h['content-type'] = 'application/json';
  h['content-length'] = Buffer.byteLength(body);
  res.writeHead(status, h);
  res.end(body);
}

function envelope(status, message) {
  return { statusCode: status, message, timestamp: new Date().toISOString() };
}

function readBody(req, done) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
  req.on('error', () => {});
}

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------

const STEP_KEYS = new Set(['refuse', 'goaway', 'close', 'reset', 'status', 'json', 'body', 'headers',
  'pass', 'delay']);
// at most one of these per step; none of them with status/json/body/headers
const ACTIONS = ['refuse', 'goaway', 'close', 'reset', 'pass'];

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function checkStep(step, where) {
  if (!isObject(step)) return `${where} must be an object`;
  for (const k of Object.keys(step)) {
    if (!STEP_KEYS.has(k)) return `${where}: unknown key "${k}"`;
  }
  for (const k of ['refuse', 'goaway', 'reset', 'pass']) {
    if (k in step && step[k] !== true) return `${where}.${k} must be true`;
  }
  if ('close' in step && step.close !== 'before') return `${where}.close must be "before"`;
  const actions = ACTIONS.filter((k) => k in step);
  if (actions.length > 1) return `${where}: ${actions.join(' and ')} cannot be combined`;
  const answer = ['status', 'json', 'body', 'headers'].filter((k) => k in step);
  if (actions.length === 1 && answer.length > 0) {
    return `${where}: ${actions[0]} cannot be combined with ${answer.join(', ')}`;
  }
  if ('status' in step && !(Number.isInteger(step.status) && step.status >= 200 && step.status <= 599)) {
    return `${where}.status must be an integer 200..599`;
  }
  if ('body' in step && typeof step.body !== 'string') return `${where}.body must be a string`;
  if ('body' in step && 'json' in step) return `${where}: give body or json, not both`;
  if ('headers' in step) {
    if (!isObject(step.headers)) return `${where}.headers must be an object`;
    for (const [name, v] of Object.entries(step.headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return `${where}.headers: invalid name "${name}"`;
      if (typeof v !== 'string' && typeof v !== 'number') return `${where}.headers["${name}"] must be a string or a number`;
    }
  }
  if ('delay' in step) {
    if (typeof step.delay !== 'number' || !(step.delay >= 0) || !Number.isFinite(step.delay)) {
      return `${where}.delay must be a number of seconds >= 0`;
    }
    if (step.refuse || step.goaway) return `${where}: delay cannot be combined with ${actions[0]}`;
  }
  return null;
}

function addScript(res, text) {
  let spec;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    return send(res, 400, envelope(400, 'Script is not valid JSON: ' + e.message));
  }
  if (!isObject(spec)) return send(res, 400, envelope(400, 'Script must be a JSON object'));
  for (const k of Object.keys(spec)) {
    if (k !== 'path' && k !== 'method' && k !== 'responses') {
      return send(res, 400, envelope(400, `Script: unknown key "${k}"`));
    }
  }
  let { method } = spec;
  if (method === null) method = undefined;
  if (method !== undefined && (typeof method !== 'string' || method === '')) {
    return send(res, 400, envelope(400, 'Script: method must be a non-empty string'));
  }
  if (typeof spec.path !== 'string' || !spec.path.startsWith('/')) {
    return send(res, 400, envelope(400, 'Script: path must be a string starting with /'));
  }
  if (!Array.isArray(spec.responses) || spec.responses.length === 0) {
    return send(res, 400, envelope(400, 'Script: responses must be a non-empty array of steps'));
  }
  for (let i = 0; i < spec.responses.length; i++) {
    const msg = checkStep(spec.responses[i], `responses[${i}]`);
    if (msg) return send(res, 400, envelope(400, 'Script: ' + msg));
  }
  const p = spec.path.split('?')[0];
  for (const step of spec.responses) {
    steps.push({ method: method && method.toUpperCase(), path: p, step });
  }
  return send(res, 204);
}

function takeStep(method, p) {
  const i = steps.findIndex((s) => s.path === p && (s.method === undefined || s.method === method));
  if (i < 0) return null;
  return steps.splice(i, 1)[0].step;
}

function control(req, res, p, body) {
  const m = req.method;
  if (p === '/__control/requests') {
    if (m === 'GET') return send(res, 200, journal);
    if (m === 'DELETE') { journal = []; return send(res, 204); }
    return send(res, 405, envelope(405, `Method ${m} not allowed here`), { allow: 'GET, DELETE' });
  }
  if (p === '/__control/script') {
    if (m === 'POST') return addScript(res, body);
    if (m === 'GET') return send(res, 200, steps);
    if (m === 'DELETE') { steps = []; return send(res, 204); }
    return send(res, 405, envelope(405, `Method ${m} not allowed here`), { allow: 'GET, POST, DELETE' });
  }
  return send(res, 404, envelope(404, 'Unknown control endpoint ' + p));
}

// ---------------------------------------------------------------------------
// Normal handling: the contact store, else the one-item page
// ---------------------------------------------------------------------------

function decodeId(raw) {
  try {
    return decodeURIComponent(raw);
  } catch (e) {
    return raw;
  }
}

function contactBody(res, text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    v = undefined;
  }
  if (!isObject(v)) {
    send(res, 400, envelope(400, 'The body must be a JSON object'));
    return null;
  }
  return v;
}

function handle(req, res, p, body) {
  if (p === '/unified/crm/contacts' && req.method === 'POST') {
    const fields = contactBody(res, body);
    if (!fields) return;
    const id = 'c-' + (++nextContact);
    const contact = Object.assign({ id }, fields, { id });
    contacts.set(id, contact);
    return send(res, 200, { data: contact });
  }
  const m = p.match(/^\/unified\/crm\/contacts\/([^/]+)$/);
  if (m && req.method === 'PATCH') {
    const fields = contactBody(res, body);
    if (!fields) return;
    const id = decodeId(m[1]);
    const contact = Object.assign(contacts.get(id) || { id }, fields, { id });
    contacts.set(id, contact);
    return send(res, 200, { data: contact });
  }
  if (m && req.method === 'GET') {
    const id = decodeId(m[1]);
    return send(res, 200, { data: contacts.get(id) || { id } });
  }
  return send(res, 200, { data: [{ id: 'a1', http: req.httpVersion }], next: null });
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

// Close the TCP connection with RST. A TLS socket's own resetAndDestroy()
// refuses its handle; the TCP socket under it (_parent) does it.
function resetSocket(socket) {
  const raw = socket._parent;
  if (raw && typeof raw.resetAndDestroy === 'function') {
    try {
      raw.resetAndDestroy();
    } catch (e) {
      // fall back to a plain close
    }
  }
  socket.destroy();
}

// the TLS socket under req
function tlsSocket(req) {
  return req.httpVersion === '2.0' ? req.stream.session.link.socket : req.socket;
}

// GOAWAY with last-stream-id = this stream's id - 2, so the client knows
// that this stream (and any above it) was not processed, then end the
// session. Streams below it may finish first.
function goaway(stream) {
  const session = stream.session;
  const last = stream.id - 2;
  session.goawayLast = Math.max(0, last);
  if (last > 0) {
    // nghttp2 closes the streams above `last` once the frame is sent;
    // close() waits for the others, then ends the session
    session.goaway(NGHTTP2_NO_ERROR, last);
    session.close();
    return;
  }
  // Stream 1: no stream can be below it, so GOAWAY with last-stream-id 0
  // (length 8, type 7, no flags, stream 0; last-stream-id 0, NO_ERROR), then
  // the connection ends at once. Node's goaway() cannot send a 0.
  const frame = Buffer.alloc(17);
  frame.writeUIntBE(8, 0, 3);
  frame[3] = 0x7;
  session.link.inject(frame, () => session.destroy());
}

function onRequest(req, res) {
  const h2 = req.httpVersion === '2.0';
  const stream = h2 ? req.stream : null;
  const connection = h2 ? stream.session.connId : req.socket.connId;
  const p = req.url.split('?')[0];
  if (p.startsWith('/__control/')) {
    readBody(req, (body) => control(req, res, p, body));
    return;
  }
  const unified = p.startsWith('/unified/');
  const record = (outcome, body) => {
    if (!unified) return;
    journal.push({
      method: req.method, path: p, http: req.httpVersion, stream_id: h2 ? stream.id : null,
      connection, resumed: tlsSocket(req).isSessionReused(), body, outcome,
    });
  };
  // a stream above the last-stream-id of a GOAWAY this session sent: the
  // client takes it as not processed, so it is not (nghttp2 closes it)
  if (h2 && stream.session.goawayLast !== undefined && stream.id > stream.session.goawayLast) {
    record('goaway', null);
    return;
  }
  const step = takeStep(req.method, p);

  // not processed: the body is not read, the record's body is null
  if (step && (step.refuse || step.goaway)) {
    record(step.refuse ? 'refused' : 'goaway', null);
    if (!h2) {
      req.socket.destroy();
    } else if (step.refuse) {
      stream.close(NGHTTP2_REFUSED_STREAM);
    } else {
      goaway(stream);
    }
    return;
  }

  readBody(req, (body) => {
    let outcome = 'answered';
    if (step && step.close) outcome = 'closed';
    else if (step && step.reset) outcome = 'reset';
    record(outcome, body);
    const act = () => {
      if (h2 ? stream.destroyed : req.socket.destroyed) return;
      if (step && step.close) {
        tlsSocket(req).destroy();
      } else if (step && step.reset) {
        if (h2) stream.close(NGHTTP2_INTERNAL_ERROR);
        else resetSocket(req.socket);
      } else if (step && !step.pass) {
        const headers = Object.assign({}, step.headers || {});
        let text = '';
        if ('json' in step) text = JSON.stringify(step.json);
        else if ('body' in step) text = step.body;
        const lower = Object.keys(headers).map((k) => k.toLowerCase());
        if (text !== '' && !lower.includes('content-type')) headers['content-type'] = 'application/json';
        if (!lower.includes('content-length')) headers['content-length'] = Buffer.byteLength(text);
        res.writeHead(step.status || 200, headers);
        res.end(text);
      } else {
        handle(req, res, p, body);
      }
    };
    if (step && step.delay) setTimeout(act, step.delay * 1000);
    else act();
  });
}
h2server.on('request', onRequest);
h1server.on('request', onRequest);

process.on('uncaughtException', (e) => {
  process.stderr.write('h2_server: ' + (e && e.stack || e) + '\n');
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write('PORT ' + server.address().port + '\n');
});
