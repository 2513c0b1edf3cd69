// Minimal static file server for the e2e test (loopback only, random port).
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream', '.bin': 'application/octet-stream', '.png': 'image/png',
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.txt': 'text/plain; charset=utf-8',
};

/** The precompressed twin of `file` the browser accepts (`scripts/precompress.mjs` wrote them). */
function precompressed(file, acceptEncoding = '') {
  for (const [encoding, ext] of [['br', '.br'], ['gzip', '.gz']]) {
    if (acceptEncoding.includes(encoding) && fs.existsSync(file + ext)) return { encoding, file: file + ext };
  }
  return null;
}

/**
 * Serve `dir` on 127.0.0.1:<random>. Resolves to { url, close, sent, resetSent }. `isolated` adds
 * the COOP/COEP headers that make the page cross-origin isolated (what SharedArrayBuffer needs).
 * Like a static host configured for it, a file's `.br`/`.gz` twin is sent when the browser accepts
 * it. `sent()` tells the bytes sent per path (bodies as transferred) since the last `resetSent()`,
 * and apart from them (`precache`) what graft's service worker fetched to keep the build offline.
 */
export function serve(dir, { isolated = false } = {}) {
  const root = path.resolve(dir);
  let sent = new Map();
  let precache = 0;
  const server = http.createServer((req, res) => {
    let rel;
    try {
      rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      res.writeHead(400).end('bad url');
      return;
    }
    let file = path.join(root, path.normalize(rel));
    if (file !== root && !file.startsWith(root + path.sep)) {
      res.writeHead(403).end('forbidden');
      return;
    }
    fs.stat(file, (err, st) => {
      if (!err && st.isDirectory()) {
        file = path.join(file, 'index.html');
        st = fs.existsSync(file) ? fs.statSync(file) : null;
      }
      if (err || !st) {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
        return;
      }
      const twin = precompressed(file, req.headers['accept-encoding']);
      const body = twin ? twin.file : file;
      const size = twin ? fs.statSync(body).size : st.size;
      res.writeHead(200, {
        'Content-Type': MIME[path.extname(file).toLowerCase()] || 'application/octet-stream',
        'Content-Length': size,
        ...(twin ? { 'Content-Encoding': twin.encoding, Vary: 'Accept-Encoding' } : {}),
        'Last-Modified': st.mtime.toUTCString(),
        'Cache-Control': 'no-store',
        ...(isolated ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' } : {}),
      });
      if (req.method === 'HEAD') return res.end();
      // The service worker's offline copy of a build is counted apart from the page's downloads.
      if (req.headers['x-graft-precache']) precache += size;
      else sent.set(rel, (sent.get(rel) ?? 0) + size);
      fs.createReadStream(body).pipe(res);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}/`,
        sent: () => ({ total: [...sent.values()].reduce((a, b) => a + b, 0), byPath: Object.fromEntries(sent), precache }),
        resetSent: () => { sent = new Map(); precache = 0; },
        close: () =>
          new Promise((r) => {
            server.closeAllConnections?.();
            server.close(() => r());
          }),
      });
    });
  });
}
