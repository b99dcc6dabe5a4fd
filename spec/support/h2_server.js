// A minimal HTTPS server that speaks HTTP/2 (and HTTP/1.1), for the TLS
// tests: it answers every request with an empty page and prints its port.
'use strict';
const http2 = require('http2');
const fs = require('fs');
const path = require('path');

const dir = path.join(__dirname, '..', 'data', 'tls');
const server = http2.createSecureServer({
  key: fs.readFileSync(path.join(dir, 'key.pem')),
  cert: fs.readFileSync(path.join(dir, 'cert.pem')),
  allowHTTP1: true,
});
server.on('request', (req, res) => {
  // read the whole request first: answering a POST before its body has
  // arrived resets the HTTP/2 stream
  req.resume();
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ data: [{ id: 'a1', http: req.httpVersion }], next: null }));
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write('PORT ' + server.address().port + '\n');
});
