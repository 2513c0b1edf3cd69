// End-to-end test for graft on one browser profile, as a teacher's machine lives with it: two
// tabs of the page (one works on the saved project, the other says so and can take it over; a
// stale tab can never overwrite what the other saved), the browser process killed in the middle
// of a fine-tune and started again on the same profile (everything comes back), then the network
// gone (the page starts from its service worker's cache, trains, predicts and exports), and a
// host without COOP/COEP made cross-origin isolated by the service worker ("use every core").
// Chromium is started here, not by playwright, so that the test can kill its process.
// Run: cd tests && npm install && node --test profile.test.mjs
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve-static.mjs';
import { Session, readZip, sleep } from './helpers.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(HERE, process.env.GRAFT_DIST || '../dist');
const PHOTOS = path.resolve(HERE, process.env.GRAFT_PHOTOS || '../data/photos');
const ARTIFACTS = path.join(HERE, 'artifacts');
const READY_TIMEOUT = 300_000;
const PER_CLASS = 4;

let server, profile, chrome; // chrome: { child, browser, context }
const photos = {}; // class -> [paths]
let failedStep = null;
const sessions = [];

function step(name, fn, timeout = 240_000) {
  test(name, { timeout }, async (tc) => {
    if (failedStep) { tc.skip(`skipped: earlier step "${failedStep}" failed`); return; }
    try {
      await fn(tc);
      sessions.forEach((s) => s.checkPageErrors());
    } catch (e) {
      failedStep = name;
      for (const [i, s] of sessions.entries()) await s.shot(`profile-failure-tab${i}`).catch(() => {});
      throw e;
    }
  });
}

/** Starts Chromium on `profile` with a DevTools port and connects to it. */
async function startChromium() {
  const child = spawn(process.env.GRAFT_CHROMIUM || '/usr/bin/chromium', [
    '--headless=new', '--no-sandbox', `--user-data-dir=${profile}`, '--remote-debugging-port=0',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--no-default-browser-check', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const ws = await new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`Chromium did not open DevTools: ${err.slice(-2000)}`)), 60_000);
    child.stderr.on('data', (d) => {
      err += d;
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`Chromium exited (${code}): ${err.slice(-2000)}`)); });
  });
  const browser = await chromium.connectOverCDP(ws);
  return { child, browser, context: browser.contexts()[0] };
}

/** A new tab on the page (not loaded yet), its errors collected. */
async function newTab(label) {
  const page = await chrome.context.newPage();
  const s = new Session(page, ARTIFACTS);
  s.label = label;
  page.on('console', (msg) => {
    if (['error', 'warning'].includes(msg.type()) || process.env.GRAFT_E2E_VERBOSE) console.log(`[${label}] console.${msg.type()}: ${msg.text()}`);
    if (msg.type() === 'error' && /graft(: unreadable| engine: cannot)/.test(msg.text())) s.pageErrors.push(msg.text());
  });
  page.on('pageerror', (err) => { console.log(`[${label}] uncaught error: ${err.stack || err.message}`); s.pageErrors.push(err.message); });
  sessions.push(s);
  return s;
}

const names = (s) => s.tid('class-name').evaluateAll((els) => els.map((e) => e.value));

async function restoredLine(s) {
  const line = s.tid('restored-line');
  await line.waitFor({ state: 'visible', timeout: 120_000 });
  return (await line.textContent()) ?? '';
}

/** The panel a tab shows when it does not own the project: `elsewhere` or `lost`. */
async function notOwner(s, kind) {
  const panel = s.tid('tab-elsewhere');
  await s.poll(`tab ${s.label} says "${kind}"`, async () => (await panel.getAttribute('data-kind').catch(() => null)) === kind, { timeout: 60_000 });
  assert.equal(await s.tid('ready').count(), 0, `tab ${s.label} is not usable`);
  return (await panel.textContent()) ?? '';
}

/** "Use it here": the tab reloads, takes the project and restores what was saved. */
async function takeOver(s) {
  await Promise.all([s.page.waitForEvent('load', { timeout: 60_000 }), s.tid('use-here').click()]);
  await s.ready(READY_TIMEOUT);
  return restoredLine(s);
}

async function addPictures(s, card, name, files) {
  const input = s.tid('class-card').nth(card).getByTestId('class-name');
  await input.fill(name);
  await input.press('Tab');
  await s.tid('class-card').nth(card).getByTestId('class-file-input').setInputFiles(files);
  await s.poll(`${files.length} pictures in ${name}`, async () => (await s.counts())[card] === files.length, { timeout: 120_000 });
}

/** Every picture saved (the storage line counts them). */
async function allSaved(s, n) {
  await s.poll(`${n} pictures saved`, async () => Number(await s.tid('storage-line').getAttribute('data-saved')) === n, { timeout: 60_000 });
}

describe('graft e2e, one browser profile: tabs and a killed browser', () => {
  before(async () => {
    assert.ok(fs.existsSync(path.join(DIST, 'index.html')), `no built app at ${DIST} (run trunk build first)`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const c of ['fruit', 'flower', 'bird']) {
      photos[c] = fs.readdirSync(path.join(PHOTOS, c)).filter((f) => f.endsWith('.png')).sort().slice(0, PER_CLASS).map((f) => path.join(PHOTOS, c, f));
    }
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'graft-profile-'));
    server = await serve(DIST);
    chrome = await startChromium();
  });

  after(async () => {
    await chrome?.browser.close().catch(() => {});
    if (chrome && chrome.child.exitCode === null) {
      const exited = new Promise((r) => chrome.child.once('exit', r));
      chrome.child.kill('SIGKILL');
      await exited;
    }
    await server?.close();
    // Chromium's helper processes may still write into the profile for a moment after it exits.
    for (let i = 0; profile && i < 20; i++) {
      try { fs.rmSync(profile, { recursive: true, force: true }); break; } catch (e) {
        if (i === 19) console.log(`  could not remove ${profile}: ${e.message}`);
        await sleep(500);
      }
    }
  });

  let a, b;
  step('1. tab A opens the page and fills two classes', async () => {
    a = await newTab('A');
    await a.page.goto(server.url);
    await a.ready(READY_TIMEOUT);
    await a.poll('two class cards', async () => (await a.tid('class-card').count()) === 2);
    await addPictures(a, 0, 'fruit', photos.fruit);
    await addPictures(a, 1, 'flower', photos.flower);
    await allSaved(a, 2 * PER_CLASS);
    // Once the engine is ready the service worker keeps this build for offline use, fetched
    // apart from the first visit's downloads.
    await a.poll('the offline cache', async () => (await a.tid('storage-line').getAttribute('data-offline')) === 'ready', { timeout: 120_000 });
    assert.match(await a.tid('storage-line').textContent(), /works offline/);
    const sent = server.sent();
    console.log(`  first visit ${(sent.total / 1e6).toFixed(2)} MB; the offline copy of the build ${(sent.precache / 1e6).toFixed(2)} MB more`);
    assert.ok(sent.precache > 0, 'the service worker fetched the build');
  }, READY_TIMEOUT + 120_000);

  step('2. tab B says the project is open in another tab and starts no engine; taking it over stops A', async () => {
    b = await newTab('B');
    await b.page.goto(server.url);
    const text = await notOwner(b, 'elsewhere');
    assert.match(text, /open in another tab/);
    await sleep(2000);
    assert.equal(b.page.workers().length, 0, 'a tab that does not own the project runs no engine');
    const restored = await takeOver(b);
    assert.match(restored, new RegExp(`restored ${2 * PER_CLASS} images in 2 classes`));
    assert.deepEqual(await names(b), ['fruit', 'flower']);
    const lost = await notOwner(a, 'lost');
    assert.match(lost, /moved to another tab/);
    await a.poll('tab A\'s engine stopped', async () => a.page.workers().length === 0, { timeout: 30_000 });
    // B changes the project: a third class with its pictures.
    await b.tid('add-class').click();
    await b.poll('three class cards', async () => (await b.tid('class-card').count()) === 3);
    await addPictures(b, 2, 'bird', photos.bird);
    await allSaved(b, 3 * PER_CLASS);
  }, READY_TIMEOUT + 120_000);

  step('3. A takes the project back: it opens what B saved, and B stops', async () => {
    const restored = await takeOver(a);
    assert.match(restored, new RegExp(`restored ${3 * PER_CLASS} images in 3 classes`));
    assert.deepEqual(await names(a), ['fruit', 'flower', 'bird'], 'B\'s class came over');
    await notOwner(b, 'lost');
    const input = a.tid('class-name').first();
    await input.fill('apple');
    await input.press('Tab');
    await sleep(500);
  }, READY_TIMEOUT + 60_000);

  step('4. without Web Locks, the store itself refuses the stale tab\'s writes', async () => {
    // Tab C runs as in a browser without Web Locks: it starts at once and claims the project.
    const c = await newTab('C');
    await c.page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'locks', { get: () => undefined }));
    await c.page.goto(server.url);
    await c.ready(READY_TIMEOUT);
    assert.deepEqual(await names(c), ['apple', 'flower', 'bird'], 'A\'s rename was saved');
    // A still thinks it owns the project; its next change is refused, not written over C's claim.
    const input = a.tid('class-name').nth(1);
    await input.fill('blossom');
    await input.press('Tab');
    const lost = await notOwner(a, 'lost');
    assert.match(lost, /saves were refused/);
    await c.page.close();
    sessions.splice(sessions.indexOf(c), 1);
    const restored = await takeOver(a);
    assert.match(restored, new RegExp(`restored ${3 * PER_CLASS} images in 3 classes`));
    assert.deepEqual(await names(a), ['apple', 'flower', 'bird'], 'the refused rename was not written');
  }, 2 * READY_TIMEOUT);

  step('5. the browser process killed during a fine-tune; started again on the same profile, everything is back', async () => {
    await b.page.close();
    sessions.splice(sessions.indexOf(b), 1);
    await a.tid('mode-discriminative').check();
    await a.setNumber('epochs', 8);
    await a.setNumber('warmup', 1);
    await a.setNumber('batch', 4);
    await a.tid('train-button').click();
    await a.poll('two finished epochs', async () => ((await a.metrics())?.epochs?.length ?? 0) >= 2, { timeout: 600_000, interval: 500 });
    assert.equal(await a.status(), 'running', 'the run is still going when the browser dies');
    await a.poll('a kept model', async () => (await a.tid('model-status').count()) > 0, { timeout: 30_000 });
    await sleep(500);
    // The browser process ends (no unload, no goodbye), as in a crash or a power cut.
    chrome.child.kill('SIGKILL');
    await new Promise((r) => (chrome.child.exitCode !== null ? r() : chrome.child.once('exit', r)));
    sessions.length = 0;
    chrome = await startChromium();
    const again = await newTab('A after the restart');
    await again.page.goto(server.url);
    await again.ready(READY_TIMEOUT);
    const restored = await restoredLine(again);
    console.log(`  after the kill: ${restored}`);
    assert.match(restored, new RegExp(`restored ${3 * PER_CLASS} images in 3 classes`));
    assert.deepEqual(await names(again), ['apple', 'flower', 'bird']);
    assert.deepEqual(await again.counts(), [PER_CLASS, PER_CLASS, PER_CLASS]);
    // The model of the last finished epoch came back and predicts.
    await again.tid('model-status').waitFor({ state: 'visible', timeout: 60_000 });
    await again.tid('predict-input').setInputFiles(photos.bird[0]);
    await again.poll('a prediction from the restored model', async () => (await again.tid('prediction-row').count()) === 3, { timeout: 60_000 });
  }, 900_000);

  step('6. offline: with the host gone the page starts from its service worker, trains, predicts and exports', async () => {
    const s = sessions[0];
    await s.poll('the offline cache', async () => (await s.tid('storage-line').getAttribute('data-offline')) === 'ready', { timeout: 120_000 });
    await server.close();
    server = null;
    await s.page.reload();
    await s.ready(READY_TIMEOUT);
    assert.match(await restoredLine(s), new RegExp(`restored ${3 * PER_CLASS} images in 3 classes`));
    await s.tid('mode-frozen').check();
    await s.setNumber('epochs', 2);
    const run = await s.train('offline frozen', { timeout: 600_000 });
    assert.equal(run.metrics.epochs.length, 2);
    await s.tid('predict-input').setInputFiles(photos.fruit[0]);
    await s.poll('a prediction offline', async () => (await s.tid('prediction-row').count()) === 3, { timeout: 60_000 });
    const [download] = await Promise.all([s.page.waitForEvent('download', { timeout: 60_000 }), s.tid('export-button').click()]);
    const zip = readZip(fs.readFileSync(await download.path()));
    assert.deepEqual(JSON.parse(zip.get('labels.json')), ['apple', 'flower', 'bird']);
  }, 900_000);

  step('7. a host without COOP/COEP: "use every core" isolates the page through the service worker, and the threads run', async () => {
    server = await serve(DIST); // a new origin: no service worker, no project yet
    const s = await newTab('isolating');
    await s.page.goto(server.url);
    await s.ready(READY_TIMEOUT);
    assert.equal(await s.page.evaluate(() => self.crossOriginIsolated), false);
    await s.poll('the offline cache', async () => (await s.tid('storage-line').getAttribute('data-offline')) === 'ready', { timeout: 120_000 });
    await Promise.all([s.page.waitForEvent('load', { timeout: 120_000 }), s.tid('isolate-with-sw').click()]);
    assert.equal(await s.page.evaluate(() => self.crossOriginIsolated), true, 'the service worker made the page cross-origin isolated');
    await s.ready(READY_TIMEOUT);
    assert.equal(await s.tid('isolate-with-sw').count(), 0, 'no offer once isolated');
    const cores = Math.min(await s.page.evaluate(() => navigator.hardwareConcurrency), 16);
    await s.tid('backend-select').selectOption('cpu');
    await s.poll(`the CPU on ${cores} threads`, async () => (await s.tid('backend-status').getAttribute('data-threads')) === String(cores), { timeout: 180_000 });
    console.log(`  ${((await s.tid('backend-status').textContent()) ?? '').trim()}`);
  }, 2 * READY_TIMEOUT);
});
