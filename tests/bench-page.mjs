// Measurement (not a test): runs graft's Benchmark page — the engine's bench in the worker, on
// the backend in use — in headless Chromium and prints its rows as one JSON line.
// usage: node bench-page.mjs [batches=16] [iterations=3] [backend=auto|cpu|webgpu]
// GRAFT_ISOLATED=1 serves the page cross-origin isolated (the multi-threaded CPU engine);
// GRAFT_THREADS=N sets that engine's thread count (the page's `?threads=N`).
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve-static.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const [batches = '16', iterations = '3', backend = 'cpu'] = process.argv.slice(2);
const server = await serve(path.resolve(HERE, process.env.GRAFT_DIST || '../dist'), { isolated: process.env.GRAFT_ISOLATED === '1' });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(server.url + (process.env.GRAFT_THREADS ? `?threads=${process.env.GRAFT_THREADS}` : ''));
  await page.getByTestId('ready').waitFor({ timeout: 300_000 });
  if (backend !== 'auto') await page.getByTestId('backend-select').selectOption(backend);
  await page.getByTestId('bench-tab').click();
  await page.getByTestId('bench-batches').fill(batches);
  await page.getByTestId('bench-batches').press('Tab');
  await page.getByTestId('bench-iters').fill(iterations);
  await page.getByTestId('bench-iters').press('Tab');
  await page.getByTestId('bench-run').click();
  const expected = batches.split(',').length * 3 + 1;
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid="bench-row"]').length >= n, expected, { timeout: 1_800_000, polling: 1000 });
  const rows = await page.getByTestId('bench-row').evaluateAll((els) => els.map((e) => ({ what: e.dataset.what, batch: +e.dataset.batch, images_per_sec: +e.dataset.ips })));
  const status = await page.getByTestId('backend-status').textContent();
  const isolated = await page.evaluate(() => self.crossOriginIsolated);
  const threads = Number(await page.getByTestId('backend-status').getAttribute('data-threads'));
  await page.waitForTimeout(500);
  const metrics = JSON.parse(await page.getByTestId('metrics-json').textContent());
  console.log(JSON.stringify({ backend, isolated, threads, status, rows, engine_wasm_memory_mb: metrics.wasm_memory && +(metrics.wasm_memory / 1e6).toFixed(1) }));
} finally {
  await browser.close();
  await server.close();
}
