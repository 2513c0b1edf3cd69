// Writes a Brotli (.br) and a gzip (.gz) twin beside every large text or binary asset of a trunk
// build, for static hosts that serve precompressed files (and for tests/serve-static.mjs, which
// does): the first visit then transfers the page, the engine and the weights compressed.
// Usage: node scripts/precompress.mjs DIR   (trunk's post_build hook passes its staging dir)
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';

const EXTENSIONS = new Set(['.wasm', '.js', '.mjs', '.css', '.html', '.safetensors', '.json']);
const MIN_BYTES = 1024;
const dir = process.argv[2];
if (!dir) throw new Error('usage: node scripts/precompress.mjs DIR');

function* files(d) {
  for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, entry.name);
    if (entry.isDirectory()) yield* files(p);
    else if (EXTENSIONS.has(path.extname(p)) && fs.statSync(p).size >= MIN_BYTES) yield p;
  }
}

let [raw, br] = [0, 0];
for (const file of files(dir)) {
  const data = fs.readFileSync(file);
  // Quality 9 with a 16 MB window: within a few per cent of quality 11 on these files, ~10x faster.
  const brotli = zlib.brotliCompressSync(data, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 9,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  fs.writeFileSync(`${file}.br`, brotli);
  fs.writeFileSync(`${file}.gz`, zlib.gzipSync(data, { level: 9 }));
  raw += data.length;
  br += brotli.length;
}
console.log(`precompressed ${dir}: ${(raw / 1e6).toFixed(1)} MB -> ${(br / 1e6).toFixed(1)} MB brotli`);
