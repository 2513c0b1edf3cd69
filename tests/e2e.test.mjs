// End-to-end test for graft: drives the built app (dist/) in headless Chromium.
// Run: cd tests && npm install && node --test e2e.test.mjs
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve-static.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, process.env.GRAFT_DIST || '../dist');
const PHOTOS = path.resolve(HERE, process.env.GRAFT_PHOTOS || '../data/photos');
const PER_CLASS = Number(process.env.GRAFT_E2E_PER_CLASS || 12);
const TRAIN_TIMEOUT = Number(process.env.GRAFT_E2E_TIMEOUT_MS || 900_000);
const READY_TIMEOUT = 300_000;
const ARTIFACTS = path.join(HERE, 'artifacts');
const CLASSES = ['fruit', 'flower', 'bird'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const firstInt = (s) => { const m = /\d+/.exec(s ?? ''); return m ? Number(m[0]) : NaN; };
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

let server, browser, context, page, tmp;
const pageErrors = [];
const timings = { ready_ms: null, runs: {} };
const files = {}; // class -> { train: [paths], heldOut: path }
let failedStep = null;
let timingsWritten = false;

function checkPageErrors() {
  if (pageErrors.length) throw new Error(`uncaught page error(s):\n${pageErrors.join('\n')}`);
}

/** Poll fn until it returns a truthy value; fails early on uncaught page errors. */
async function poll(what, fn, { timeout = 30_000, interval = 250 } = {}) {
  const end = Date.now() + timeout;
  let lastErr;
  for (;;) {
    checkPageErrors();
    try { const v = await fn(); if (v) return v; lastErr = undefined; } catch (e) { lastErr = e; }
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
    }
    await sleep(interval);
  }
}

const tid = (id) => page.getByTestId(id);
const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
const metricsText = () =>
  page.evaluate(() => document.querySelector('[data-testid="metrics-json"]')?.textContent ?? null);

/** Fill a number/text input and commit it (Tab fires `change`), then check the value stuck. */
async function setNumber(id, value) {
  const input = tid(id);
  await input.fill(String(value));
  await input.press('Tab');
  const got = await input.inputValue();
  assert.equal(Number(got), Number(value), `setting ${id} to ${value} did not stick (value is "${got}")`);
}

/** Click train and wait for train-status `done`. Returns { wallMs, metrics }. */
async function runTraining(mode) {
  const status = tid('train-status');
  const before = await metricsText();
  const t0 = Date.now();
  await tid('train-button').click();
  let seenRunning = false;
  let lastLog = t0;
  for (;;) {
    checkPageErrors();
    const s = ((await status.textContent()) ?? '').trim();
    if (s === 'failed') {
      const err = (await tid('train-error').count()) ? await tid('train-error').first().textContent() : '(no train-error element)';
      throw new Error(`training (${mode}) failed: ${err}`);
    }
    if (s === 'cancelled') throw new Error(`training (${mode}) was cancelled unexpectedly`);
    if (s === 'running') seenRunning = true;
    if (s === 'done') {
      if (seenRunning) break;
      // A fast run may go running -> done between polls; accept it only if the metrics are new.
      const txt = await metricsText();
      if (txt && txt !== before) {
        try { if (JSON.parse(txt).mode === mode) break; } catch { /* still being written */ }
      }
    }
    if (Date.now() - lastLog > 30_000) {
      lastLog = Date.now();
      let progress = '';
      try { const m = JSON.parse(await metricsText()); progress = `, ${m.epochs?.length ?? 0} epochs / ${m.steps?.length ?? 0} steps recorded`; } catch { /* not yet */ }
      console.log(`  [${mode}] status=${s} after ${Math.round((Date.now() - t0) / 1000)} s${progress}`);
    }
    if (Date.now() - t0 > TRAIN_TIMEOUT) throw new Error(`training (${mode}) not done after ${TRAIN_TIMEOUT} ms (status "${s}")`);
    await sleep(seenRunning ? 1000 : 100);
  }
  const wallMs = Date.now() - t0;
  const metrics = JSON.parse(await metricsText());
  // Throughput of the expensive part: backbone features (frozen), or steps with the backbone
  // learning (discriminative: the epochs after the warm-up).
  const tuned = (metrics.steps ?? []).filter((s) => s.epoch > (metrics.phases?.includes('warm_up') ? 1 : 0));
  const stepRate = tuned.length ? mean(tuned.map((s) => s.images_per_sec)) : null;
  timings.runs[mode] = {
    wall_ms: wallMs,
    backend: metrics.backend,
    overall_images_per_sec: metrics.images_per_sec,
    backbone_images_per_sec: mode === 'frozen' ? metrics.extract_images_per_sec : stepRate,
  };
  console.log(`  [${mode}] done in ${wallMs} ms, backend=${metrics.backend}, images/s=${metrics.images_per_sec}`);
  return { wallMs, metrics };
}

/** Parse a ZIP (via the central directory) into a Map name -> Buffer. */
function readZip(buf) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  assert.ok(eocd >= 0, 'zip: end of central directory not found');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map();
  for (let n = 0; n < count; n++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50, 'zip: bad central directory entry');
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    // Local file header: signature, name length @26, extra length @28, data after the header.
    assert.equal(buf.readUInt32LE(local), 0x04034b50, `zip: bad local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + csize);
    assert.ok(method === 0 || method === 8, `zip: ${name} uses unsupported method ${method}`);
    if (method !== 0) console.log(`  note: zip entry ${name} is deflated (method ${method}), expected STORED`);
    out.set(name, method === 0 ? raw : zlib.inflateRawSync(raw));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

function step(name, fn, timeout = 120_000) {
  test(name, { timeout }, async (t) => {
    if (failedStep) { t.skip(`skipped: earlier step "${failedStep}" failed`); return; }
    try {
      await fn(t);
      checkPageErrors();
    } catch (e) {
      failedStep = name;
      await shot(`failure-${name.replace(/[^a-z0-9]+/gi, '-')}`).catch(() => {});
      throw e;
    }
  });
}

function writeTimings() {
  timingsWritten = true;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(path.join(ARTIFACTS, 'e2e-timings.json'), JSON.stringify(timings, null, 2) + '\n');
  console.log(`timings: ${JSON.stringify(timings)}`);
}

describe('graft e2e', () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), `no built app at ${DIST} (run trunk build first)`);
    fs.rmSync(ARTIFACTS, { recursive: true, force: true }); // no stale screenshots from earlier runs
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const c of CLASSES) {
      const all = fs.readdirSync(path.join(PHOTOS, c)).filter((f) => f.toLowerCase().endsWith('.png')).sort();
      assert.ok(all.length > PER_CLASS, `need > ${PER_CLASS} photos in ${PHOTOS}/${c}, found ${all.length}`);
      files[c] = { train: all.slice(0, PER_CLASS).map((f) => path.join(PHOTOS, c, f)), heldOut: path.join(PHOTOS, c, all[PER_CLASS]) };
    }
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-e2e-'));
    fs.writeFileSync(path.join(tmp, 'broken.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), crypto.randomBytes(200)]));
    fs.writeFileSync(path.join(tmp, 'notes.png'), 'this is not an image\n');

    server = await serve(DIST);
    browser = await chromium.launch({
      executablePath: process.env.GRAFT_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.on('console', (msg) => {
      if (['error', 'warning'].includes(msg.type()) || process.env.GRAFT_E2E_VERBOSE) {
        console.log(`[page] console.${msg.type()}: ${msg.text()}`);
      }
    });
    page.on('pageerror', (err) => {
      console.log(`[page] uncaught error: ${err.stack || err.message}`);
      pageErrors.push(err.message);
    });
    page.on('response', (r) => { if (r.status() >= 400) console.log(`[page] HTTP ${r.status()} ${r.url()}`); });
    page.on('requestfailed', (req) => console.log(`[page] request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`));
  });

  after(async () => {
    if (!timingsWritten) writeTimings(); // partial timings when an earlier step failed
    await context?.close().catch(() => {});
    await browser?.close().catch(() => {});
    await server?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  step('1. page loads and becomes ready', async () => {
    const t0 = Date.now();
    await page.goto(server.url);
    await tid('ready').waitFor({ state: 'visible', timeout: READY_TIMEOUT });
    timings.ready_ms = Date.now() - t0;
    const backend = (await tid('backend-status').count()) ? (await tid('backend-status').first().textContent())?.trim() : '(none)';
    timings.backend_status = backend;
    console.log(`  ready after ${timings.ready_ms} ms; backend-status: ${backend}`);
    await shot('ready');
  }, READY_TIMEOUT + 60_000);

  step('2. three classes filled, bad files rejected', async () => {
    await tid('add-class').click();
    await poll('3 class cards', async () => (await tid('class-card').count()) === 3);
    const cards = tid('class-card');
    for (const [i, c] of CLASSES.entries()) {
      const card = cards.nth(i);
      const name = card.getByTestId('class-name');
      await name.fill(c);
      await name.press('Tab');
      assert.equal(await name.inputValue(), c);
      const upload = [...files[c].train];
      if (i === 0) upload.push(path.join(tmp, 'broken.jpg'), path.join(tmp, 'notes.png'));
      await card.getByTestId('class-file-input').setInputFiles(upload);
    }
    for (const [i, c] of CLASSES.entries()) {
      const count = cards.nth(i).getByTestId('class-count');
      let last = '';
      await poll(`class-count of "${c}" == ${PER_CLASS}`, async () => {
        last = (await count.textContent()) ?? '';
        return firstInt(last) === PER_CLASS;
      }, { timeout: 120_000 }).catch((e) => { throw new Error(`${e.message} (text: "${last}")`); });
    }
    const errors = cards.nth(0).getByTestId('file-error');
    let texts = [];
    await poll('file-error entries for broken.jpg and notes.png', async () => {
      texts = await errors.allTextContents();
      return ['broken.jpg', 'notes.png'].every((f) => texts.some((t) => t.includes(f)));
    }, { timeout: 60_000 }).catch((e) => { throw new Error(`${e.message} (file-error texts: ${JSON.stringify(texts)})`); });
    console.log(`  file errors: ${JSON.stringify(texts)}`);
    await shot('classes-filled');
  }, 300_000);

  step('3. frozen training reaches good accuracy', async () => {
    await tid('mode-frozen').check();
    await setNumber('epochs', 6);
    await setNumber('seed', 7);
    await setNumber('val-split', 0.25);
    if (await tid('augment').count()) console.log(`  augment: ${await tid('augment').isChecked()}`);
    const { metrics: m } = await runTraining('frozen');
    assert.equal(m.mode, 'frozen');
    assert.equal(m.epochs?.length, 6, 'expected 6 epochs of metrics');
    assert.ok(m.evaluation, 'evaluation missing from metrics');
    console.log(`  evaluation accuracy ${m.evaluation.accuracy}, confusion ${JSON.stringify(m.evaluation.confusion)}`);
    assert.ok(m.evaluation.accuracy > 0.6, `evaluation accuracy ${m.evaluation.accuracy} <= 0.6`);
    const conf = m.evaluation.confusion;
    assert.ok(Array.isArray(conf) && conf.length === 3 && conf.every((r) => Array.isArray(r) && r.length === 3), 'confusion is not 3x3');
    const va = tid('val-accuracy');
    await va.waitFor({ state: 'visible', timeout: 30_000 });
    const vaText = (await va.textContent()) ?? '';
    assert.match(vaText, /\d+(\.\d+)?\s*%/, `val-accuracy text has no percentage: "${vaText}"`);
    const table = tid('confusion-matrix');
    await table.waitFor({ state: 'visible', timeout: 30_000 });
    assert.equal(await table.evaluate((el) => el.tagName), 'TABLE');
    await shot('frozen-done');
  }, TRAIN_TIMEOUT + 120_000);

  step('3b. the same frozen training runs on WebGPU', async () => {
    // The start-up speed check picks the CPU on a software adapter; force WebGPU to prove the
    // GPU path trains too (fewer views and epochs: SwiftShader is slow).
    await tid('backend-select').selectOption('webgpu');
    await tid('mode-frozen').check();
    await setNumber('epochs', 2);
    if (await tid('augment').isChecked()) await tid('augment').uncheck();
    const cpuFrozen = timings.runs.frozen;
    const { metrics: m } = await runTraining('frozen');
    timings.runs.frozen_webgpu = timings.runs.frozen;
    timings.runs.frozen = cpuFrozen;
    assert.equal(m.backend, 'webgpu', `backend ${m.backend}`);
    assert.equal(m.epochs?.length, 2);
    assert.ok(m.evaluation && m.evaluation.accuracy > 0.5, `WebGPU evaluation ${JSON.stringify(m.evaluation)}`);
    console.log(`  WebGPU frozen: accuracy ${m.evaluation.accuracy}, ${m.images_per_sec} img/s`);
    await shot('frozen-webgpu-done');
    await tid('backend-select').selectOption('auto');
    await tid('augment').check();
  }, TRAIN_TIMEOUT + 120_000);

  step('4. discriminative fine-tuning: loss falls', async () => {
    // One head-only warm-up epoch, then one epoch with the backbone learning at lr x ratio.
    await tid('mode-discriminative').check();
    await setNumber('epochs', 2);
    await setNumber('warmup', 1);
    await setNumber('batch', 4);
    await setNumber('lr', 0.001);
    const { metrics: m } = await runTraining('discriminative');
    assert.equal(m.mode, 'discriminative');
    assert.deepEqual(m.phases, ['warm_up', 'fine_tuning'], `phases: ${JSON.stringify(m.phases)}`);
    const losses = (m.steps ?? []).map((s) => s.loss);
    assert.ok(losses.length >= 6, `expected >= 6 steps, got ${losses.length}`);
    assert.ok(losses.every(Number.isFinite), `non-finite step loss: ${JSON.stringify(losses)}`);
    const k = Math.floor(losses.length / 3);
    const first = mean(losses.slice(0, k));
    const last = mean(losses.slice(-k));
    console.log(`  step losses ${JSON.stringify(losses)}; first third ${first.toFixed(4)}, last third ${last.toFixed(4)}`);
    assert.ok(last < first, `loss did not fall: first third ${first}, last third ${last}`);
    const epochs = m.epochs ?? [];
    assert.equal(epochs.length, 2);
    console.log(`  epoch train losses ${epochs.map((e) => e.train_loss.toFixed(3))}, val acc ${epochs.map((e) => e.val_accuracy)}`);
    await shot('discriminative-done');
  }, TRAIN_TIMEOUT + 120_000);

  step('5. predict a held-out photo', async () => {
    await tid('predict-input').setInputFiles(files.fruit.heldOut);
    const rows = tid('prediction-row');
    await rows.first().waitFor({ state: 'attached', timeout: 120_000 });
    await poll('3 prediction rows', async () => (await rows.count()) === 3, { timeout: 30_000 });
    const preds = await rows.evaluateAll((els) =>
      els.map((e) => ({ cls: e.getAttribute('data-class'), prob: Number(e.getAttribute('data-prob')) })));
    console.log(`  held-out ${path.basename(files.fruit.heldOut)} (fruit) -> top: ${preds[0].cls} (${preds[0].prob.toFixed(3)}); all ${JSON.stringify(preds)}`);
    assert.deepEqual(preds.map((p) => p.cls).sort(), [...CLASSES].sort(), 'prediction rows are not one per class');
    assert.ok(preds.every((p) => Number.isFinite(p.prob) && p.prob >= 0 && p.prob <= 1), 'probabilities out of [0,1]');
    const sum = preds.reduce((a, p) => a + p.prob, 0);
    assert.ok(Math.abs(sum - 1) <= 0.02, `probabilities sum to ${sum}`);
    for (let i = 1; i < preds.length; i++) assert.ok(preds[i - 1].prob >= preds[i].prob, 'prediction rows not sorted best first');
    timings.prediction = { file: path.basename(files.fruit.heldOut), top: preds[0].cls, prob: preds[0].prob };
    await shot('prediction');
  });

  step('6. export model zip', async () => {
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), tid('export-button').click()]);
    assert.match(download.suggestedFilename(), /\.zip$/, `download name ${download.suggestedFilename()}`);
    const zip = readZip(fs.readFileSync(await download.path()));
    console.log(`  ${download.suggestedFilename()}: ${[...zip.keys()].join(', ')}`);
    for (const f of ['model.safetensors', 'labels.json', 'manifest.json']) assert.ok(zip.has(f), `zip lacks ${f}`);
    const labels = JSON.parse(zip.get('labels.json').toString('utf8'));
    assert.deepEqual(labels, CLASSES);
    const manifest = JSON.parse(zip.get('manifest.json').toString('utf8'));
    assert.deepEqual(manifest.classes, labels);
    const st = zip.get('model.safetensors');
    const n = Number(st.readBigUInt64LE(0));
    assert.ok(n > 0 && 8 + n <= st.length, `bad safetensors header length ${n}`);
    const header = JSON.parse(st.toString('utf8', 8, 8 + n));
    const cls = header['classifier.1.weight'];
    assert.ok(cls, 'safetensors lacks classifier.1.weight');
    assert.deepEqual(cls.shape, [3, 1280]);
    assert.equal(cls.dtype, 'F32');
    const stem = Object.keys(header).find((k) => k === 'features.0.0.weight' || k.endsWith('.features.0.0.weight'));
    assert.ok(stem, 'safetensors lacks features.0.0.weight');
    assert.deepEqual(header[stem].shape, [32, 3, 3, 3]);
    const end = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets[1]));
    assert.equal(8 + n + end, st.length, 'safetensors data size does not match header offsets');
  });

  step('7. how it works', async () => {
    await tid('how-tab').click();
    await tid('how-it-works').waitFor({ state: 'visible', timeout: 10_000 });
    await shot('how-it-works');
  });

  step('7b. benchmark page', async () => {
    await tid('bench-tab').click();
    await tid('bench').waitFor({ state: 'visible', timeout: 10_000 });
    await tid('bench-batches').fill('4');
    await tid('bench-batches').press('Tab');
    await tid('bench-iters').fill('1');
    await tid('bench-iters').press('Tab');
    await tid('bench-run').click();
    const rows = tid('bench-row');
    await poll('3 benchmark rows', async () => (await rows.count()) === 3, { timeout: 300_000, interval: 500 });
    const bench = [];
    for (let i = 0; i < 3; i++) {
      const r = rows.nth(i);
      bench.push({ what: await r.getAttribute('data-what'), batch: Number(await r.getAttribute('data-batch')), images_per_sec: Number(await r.getAttribute('data-ips')) });
    }
    assert.ok(bench.every((b) => b.batch === 4 && b.images_per_sec > 0), JSON.stringify(bench));
    timings.bench = bench;
    console.log(`  bench: ${JSON.stringify(bench)}`);
    await shot('bench');
  }, 360_000);

  step('8. record timings', async () => {
    assert.ok(timings.ready_ms > 0 && timings.runs.frozen && timings.runs.discriminative, 'timings incomplete');
    writeTimings();
  });
});
