// Writes graft's service worker into a build: static/sw.js with this build's version (a hash of
// every file it caches) and the list of those files, so that a new release installs a new cache
// and drops the old one. Run before scripts/precompress.mjs (its twins are not cached: the
// browser stores what it decoded).
// Usage: node scripts/make-sw.mjs TEMPLATE DIR   (trunk's post_build hook passes its staging dir)
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const [template, dir] = process.argv.slice(2);
if (!template || !dir) throw new Error('usage: node scripts/make-sw.mjs TEMPLATE DIR');

function* files(d) {
  for (const entry of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(d, entry.name);
    if (entry.isDirectory()) yield* files(p);
    else if (!/\.(br|gz)$/.test(p) && path.relative(dir, p) !== 'sw.js') yield p;
  }
}

const hash = crypto.createHash('sha256');
const sized = [];
let bytes = 0;
for (const file of files(dir)) {
  const rel = path.relative(dir, file).split(path.sep).join('/');
  const data = fs.readFileSync(file);
  hash.update(rel).update('\0').update(data);
  sized.push([`./${rel}`, data.length]);
  bytes += data.length;
}
// Largest first: the service worker caches them in this order (see static/sw.js).
const list = sized.sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([rel]) => rel);
const version = hash.digest('hex').slice(0, 16);
const source = fs.readFileSync(template, 'utf8');
if (!["'__GRAFT_VERSION__'", '__GRAFT_FILES__', '__GRAFT_BYTES__'].every((k) => source.includes(k))) throw new Error(`${template} is not the service worker template`);
const filled = source
  .replace("'__GRAFT_VERSION__'", JSON.stringify(version))
  .replace('__GRAFT_FILES__', JSON.stringify(list, null, 2))
  .replace('__GRAFT_BYTES__', String(bytes));
fs.writeFileSync(path.join(dir, 'sw.js'), filled);
console.log(`service worker ${version}: ${list.length} files, ${(bytes / 1e6).toFixed(1)} MB cached for offline use`);
