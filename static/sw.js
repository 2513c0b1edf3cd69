// graft's service worker: after one visit the page starts, trains, predicts and exports with the
// network gone (a classroom's network fails). scripts/make-sw.mjs writes the build's version and
// file list into the copy in dist/; this file is its template.
//
// - install: every file of this build (page, both engines, the backbone) into one cache named
//   after the build's content hash, when the origin has room for it (else no offline copy). Its requests say `X-Graft-Precache: 1`, so a test server can
//   tell them from the page's own downloads.
// - activate: caches of other builds are deleted; open pages are taken over.
// - fetch: every request of this origin goes to the network first and falls back to the cache
//   only when the network fails. Online the page is exactly what the host serves (a new release,
//   or a rebuild under `trunk serve`, shows at once; the browser's HTTP cache keeps it fast);
//   offline it is this build, whole.
const VERSION = '__GRAFT_VERSION__';
const FILES = __GRAFT_FILES__;
/** What FILES weigh, uncompressed (the cache keeps what the browser decoded). */
const BYTES = __GRAFT_BYTES__;
const CACHE = `graft-${VERSION}`;
// Registered as `sw.js?isolate=1` when the user asked for every core on a host that does not
// send COOP/COEP: the page is then made cross-origin isolated here (wasm threads need it).
const ISOLATE = new URL(self.location.href).searchParams.get('isolate') === '1';

function withIsolation(response) {
  if (!ISOLATE || response.type === 'opaque' || response.headers.has('Cross-Origin-Embedder-Policy')) return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    // The saved project matters more than working offline: the copy never takes more than a
    // third of the room this origin has left, and a failed copy gives back what it took.
    const { usage = 0, quota = Infinity } = (await navigator.storage?.estimate?.()) ?? {};
    if (quota - usage < 3 * BYTES) throw new Error(`not enough free storage to work offline (${quota - usage} bytes free)`);
    try {
      const cache = await caches.open(CACHE);
      // One at a time, largest first (FILES is sorted so): where the room runs out, the first
      // write fails before anything else was stored (a deleted cache's space is freed lazily).
      for (const file of FILES) {
        const response = await fetch(new Request(file, { headers: { 'X-Graft-Precache': '1' }, cache: 'no-cache' }));
        if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
        await cache.put(file, response);
      }
    } catch (e) {
      await caches.delete(CACHE);
      throw e;
    }
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith('graft-') && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

async function fromCache(request) {
  const cache = await caches.open(CACHE);
  // Workers are started with a query (`?measure-only=1`): the file is the same.
  return cache.match(request, { ignoreSearch: true });
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    try {
      return withIsolation(await fetch(request));
    } catch (offline) {
      const cached = request.mode === 'navigate'
        ? (await fromCache(new Request('./index.html'))) ?? (await fromCache(new Request('./')))
        : await fromCache(request);
      if (cached) return withIsolation(cached);
      throw offline;
    }
  })());
});
