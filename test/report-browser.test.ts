import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { buildReport } from '../src/report/build.js';
import { crossSimilarity, RESNET_LAYERS, selfSimilarity, writeSimilarityDir } from './report-synthetic.js';

/**
 * The generated report opened in a real headless Chromium: every chart drawn, nothing logged, nothing
 * fetched. npm test's pretest step installs Debian's chromium (scripts/test-system-deps.sh); CHROMIUM_PATH picks another;
 * ROBUSTSIM_SKIP_BROWSER=1 skips it, and node:test then reports it as skipped with that reason.
 */

const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const skip = process.env.ROBUSTSIM_SKIP_BROWSER === '1';

test('the report renders in headless Chromium with no errors and no network requests', { skip: skip ? 'ROBUSTSIM_SKIP_BROWSER=1' : false, timeout: 60_000 }, async () => {
  assert.ok(
    existsSync(executablePath),
    `no Chromium at ${executablePath}: install it ('apt-get install chromium', as npm test's pretest step does when run as root), set CHROMIUM_PATH, or set ROBUSTSIM_SKIP_BROWSER=1 to skip this test`,
  );
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'robustsim-browser-'));
  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  try {
    const sims = [
      await writeSimilarityDir(dir, 'sl-st', selfSimilarity({ name: 'sl-st', end: 0.05, layers: ['stem', '<script>alert(1)</script>', ...RESNET_LAYERS.slice(1)] })),
      await writeSimilarityDir(dir, 'sl-at', selfSimilarity({ name: 'sl-at', end: 0.9 })),
      await writeSimilarityDir(dir, 'st-vs-at', crossSimilarity('sl-st', 'sl-at')),
    ];
    const out = path.join(dir, 'report.html');
    const { charts } = await buildReport({ sims, out, title: 'browser check', notes: 'synthetic' });
    const url = pathToFileURL(out).href;

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const messages: string[] = [];
    const pageErrors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') messages.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => {
      pageErrors.push(`dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(url, { waitUntil: 'load' });

    const svgs = await page.$$eval('svg', (nodes) =>
      nodes.map((svg) => {
        const box = svg.getBoundingClientRect();
        return { width: box.width, height: box.height, marks: svg.querySelectorAll('.role-mark path, .role-mark rect').length };
      }),
    );
    assert.equal(svgs.length, charts, 'one svg per chart');
    svgs.forEach((s, k) => {
      assert.ok(s.width > 50 && s.height > 50, `svg ${k} has a visible size (${s.width} x ${s.height})`);
      assert.ok(s.marks > 0, `svg ${k} contains drawn marks`);
    });
    // The first heatmap (sl-st, clean x clean) has one cell per layer pair.
    const firstCells = await page.$eval('#input-1 svg .mark-rect.role-mark', (g) => g.querySelectorAll('path').length);
    assert.equal(firstCells, (RESNET_LAYERS.length + 1) ** 2);
    const heading = await page.textContent('#input-1 h2');
    assert.equal(heading, 'sl-st');
    assert.ok((await page.content()).includes('&lt;script&gt;alert(1)&lt;/script&gt;'), 'hostile name shown as text');

    assert.deepEqual(messages, [], 'no console errors or warnings');
    assert.deepEqual(pageErrors, [], 'no page errors or dialogs');
    assert.deepEqual(requests, [url], 'the only request is the page itself');
  } finally {
    await browser.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});
