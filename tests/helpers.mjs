// Helpers shared by the browser tests: polling, zip parsing, form filling, training runs, and
// the main-thread responsiveness probe.
import assert from 'node:assert/strict';
import zlib from 'node:zlib';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const firstInt = (s) => { const m = /\d+/.exec(s ?? ''); return m ? Number(m[0]) : NaN; };
export const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Installed before any page script: records every main-thread task longer than 50 ms. */
export const LONGTASK_PROBE = `
  window.__longtasks = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask', buffered: true });
  } catch (e) { window.__longtaskError = String(e); }
  // Long animation frames say which script ran (for diagnosis; not asserted).
  window.__loafs = [];
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        window.__loafs.push({ start: e.startTime, duration: e.duration, blocking: e.blockingDuration,
          scripts: (e.scripts || []).map((s) => ({ invoker: s.invoker, fn: s.sourceFunctionName, duration: s.duration })) });
      }
    }).observe({ type: 'long-animation-frame', buffered: true });
  } catch (e) { /* not supported */ }
`;

/** Parse a ZIP (via the central directory) into a Map name -> Buffer. */
export function readZip(buf) {
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
    assert.equal(buf.readUInt32LE(local), 0x04034b50, `zip: bad local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    const raw = buf.subarray(start, start + csize);
    assert.ok(method === 0 || method === 8, `zip: ${name} uses unsupported method ${method}`);
    out.set(name, method === 0 ? raw : zlib.inflateRawSync(raw));
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

/** Test-session context: the page, screenshots, page errors, timings. */
export class Session {
  constructor(page, artifacts) {
    this.page = page;
    this.artifacts = artifacts;
    this.pageErrors = [];
    this.timings = { runs: {} };
  }

  tid(id) { return this.page.getByTestId(id); }

  shot(name) { return this.page.screenshot({ path: `${this.artifacts}/${name}.png`, fullPage: true }); }

  checkPageErrors() {
    if (this.pageErrors.length) throw new Error(`uncaught page error(s):\n${this.pageErrors.join('\n')}`);
  }

  /** Poll fn until it returns a truthy value; fails early on uncaught page errors. */
  async poll(what, fn, { timeout = 30_000, interval = 250 } = {}) {
    const end = Date.now() + timeout;
    let lastErr;
    for (;;) {
      this.checkPageErrors();
      try { const v = await fn(); if (v) return v; lastErr = undefined; } catch (e) { lastErr = e; }
      if (Date.now() > end) {
        throw new Error(`timed out after ${timeout} ms waiting for ${what}${lastErr ? `: ${lastErr.message}` : ''}`);
      }
      await sleep(interval);
    }
  }

  async metrics() {
    const text = await this.page.evaluate(() => document.querySelector('[data-testid="metrics-json"]')?.textContent ?? null);
    return text ? JSON.parse(text) : null;
  }

  async status() { return ((await this.tid('train-status').textContent()) ?? '').trim(); }

  /** Fill a number/text input and commit it (Tab fires `change`), then check the value stuck. */
  async setNumber(id, value) {
    const input = this.tid(id);
    await input.fill(String(value));
    await input.press('Tab');
    const got = await input.inputValue();
    assert.equal(Number(got), Number(value), `setting ${id} to ${value} did not stick (value is "${got}")`);
  }

  async ready(timeout = 300_000) {
    await this.tid('ready').waitFor({ state: 'visible', timeout });
  }

  /** Card counts as numbers, in card order. */
  async counts() {
    return (await this.tid('class-count').allTextContents()).map(firstInt);
  }

  /**
   * Adds a third class card, names the cards `names` and uploads `uploads[i]` into card i;
   * waits until every card holds `expected` pictures.
   */
  async fillClasses(names, uploads, expected) {
    await this.tid('add-class').click();
    await this.poll(`${names.length} class cards`, async () => (await this.tid('class-card').count()) === names.length);
    const cards = this.tid('class-card');
    for (const [i, name] of names.entries()) {
      const input = cards.nth(i).getByTestId('class-name');
      await input.fill(name);
      await input.press('Tab');
      await cards.nth(i).getByTestId('class-file-input').setInputFiles(uploads[i]);
    }
    await this.poll(`every class has ${expected} pictures`, async () => (await this.counts()).every((n) => n === expected), { timeout: 180_000 });
    return cards;
  }

  /** Runs the Benchmark page at one batch size and one timed batch; returns its rows. */
  async runBench(batch = 4) {
    await this.tid('bench-tab').click();
    await this.tid('bench-batches').fill(String(batch));
    await this.tid('bench-batches').press('Tab');
    await this.tid('bench-iters').fill('1');
    await this.tid('bench-iters').press('Tab');
    await this.tid('bench-run').click();
    const rows = this.tid('bench-row');
    // Frozen and fine-tune at one batch size, then two ingest rows (640x480 and 12-MP phone photos).
    await this.poll('5 benchmark rows', async () => (await rows.count()) === 5, { timeout: 300_000, interval: 500 });
    const bench = await rows.evaluateAll((els) => els.map((e) => ({ what: e.getAttribute('data-what'), batch: Number(e.getAttribute('data-batch')), images_per_sec: Number(e.getAttribute('data-ips')), dispatches: e.getAttribute('data-dispatches') ? Number(e.getAttribute('data-dispatches')) : null })));
    assert.ok(bench.every((b) => b.images_per_sec > 0), JSON.stringify(bench));
    return bench;
  }

  /** Main-thread tasks longer than 50 ms since `since` (performance.now() time). */
  async longTasks(since) {
    // An observer that failed to start would report no long tasks at all: that must fail, not pass.
    const { tasks, error } = await this.page.evaluate((t) => ({ tasks: (window.__longtasks ?? []).filter((e) => e.start >= t), error: window.__longtaskError ?? null }), since);
    assert.equal(error, null, `the longtask observer did not start: ${error}`);
    return tasks;
  }

  async now() { return this.page.evaluate(() => performance.now()); }

  /**
   * A short discriminative run (1 warm-up + 1 fine-tuning epoch, batch 4, lr 1e-3) that must
   * end "done" with finite step losses falling from the first third to the last. Returns what
   * `train` returns.
   */
  async trainDiscriminative(label, { timeout }) {
    await this.tid('mode-discriminative').check();
    await this.setNumber('epochs', 2);
    await this.setNumber('warmup', 1);
    await this.setNumber('batch', 4);
    await this.setNumber('lr', 0.001);
    const run = await this.train(label, { timeout });
    const losses = run.metrics.steps.map((s) => s.loss);
    assert.ok(losses.length >= 6 && losses.every(Number.isFinite), JSON.stringify(losses));
    const k = Math.floor(losses.length / 3);
    assert.ok(mean(losses.slice(-k)) < mean(losses.slice(0, k)), `loss did not fall: ${JSON.stringify(losses)}`);
    return run;
  }

  /**
   * Click Train (or `button`) and wait for the run to end with `expect` (default "done").
   * Returns { wallMs, metrics, longest } where `longest` is the longest main-thread task
   * after the first second of the run.
   */
  async train(label, { button = 'train-button', expect = 'done', timeout = 900_000 } = {}) {
    const before = await this.metrics();
    const t0 = Date.now();
    const perf0 = await this.now();
    await this.tid(button).click();
    let seenRunning = false;
    let lastLog = t0;
    for (;;) {
      this.checkPageErrors();
      const s = await this.status();
      if (s === 'running') seenRunning = true;
      if (['done', 'failed', 'cancelled'].includes(s) && (seenRunning || JSON.stringify(await this.metrics()) !== JSON.stringify(before))) {
        if (s !== expect) {
          const err = (await this.tid('train-error').count()) ? await this.tid('train-error').first().textContent() : '(no train-error)';
          throw new Error(`training (${label}) ended "${s}", expected "${expect}": ${err}`);
        }
        break;
      }
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        const m = await this.metrics();
        console.log(`  [${label}] status=${s} after ${Math.round((Date.now() - t0) / 1000)} s, ${m?.epochs?.length ?? 0} epochs / ${m?.steps?.length ?? 0} steps`);
      }
      if (Date.now() - t0 > timeout) throw new Error(`training (${label}) not over after ${timeout} ms (status "${s}")`);
      await sleep(seenRunning ? 500 : 100);
    }
    const wallMs = Date.now() - t0;
    const metrics = await this.metrics();
    const tasks = await this.longTasks(perf0 + 1000);
    const longest = tasks.reduce((m, t) => Math.max(m, t.duration), 0);
    const tuned = (metrics.steps ?? []).filter((s) => s.epoch > (metrics.phases?.includes('warm_up') ? 1 : 0));
    this.timings.runs[label] = {
      wall_ms: wallMs,
      backend: metrics.backend,
      overall_images_per_sec: metrics.images_per_sec,
      backbone_images_per_sec: metrics.mode === 'frozen' ? metrics.extract_images_per_sec : (tuned.length ? mean(tuned.map((s) => s.images_per_sec)) : null),
      longest_main_thread_task_ms: longest,
      long_tasks: tasks.length,
    };
    if (longest > 50) {
      const loafs = await this.page.evaluate((t) => (window.__loafs ?? []).filter((e) => e.start >= t && e.blocking > 0), perf0 + 1000);
      console.log(`  [${label}] long frames: ${JSON.stringify(loafs.slice(0, 5))}`);
    }
    console.log(`  [${label}] ${s(metrics)} in ${wallMs} ms on ${metrics.backend}; longest main-thread task after 1 s: ${longest.toFixed(0)} ms (${tasks.length} tasks > 50 ms)`);
    return { wallMs, metrics, longest };
  }
}

function s(metrics) { return metrics.outcome ?? metrics.status; }
