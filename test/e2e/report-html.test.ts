/**
 * report.html in a real browser: headless Debian Chromium driven by playwright-core, with
 * JavaScript OFF and every non-file request blocked and recorded — the page must need neither.
 * Checks the header text a person sees and that every chart drew (SVG with painted paths of real
 * size), and saves full-page screenshots under test-output/report-html/ (gitignored). No display
 * needed: DISPLAY / WAYLAND_DISPLAY are removed from Chromium's environment.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT } from '../../src/model/load.js';
import type { Results } from '../../src/results/types.js';
import { writeReports } from '../../src/report/writer.js';

// LAB_CHROMIUM: another Chromium binary (default: Debian's)
const CHROMIUM = process.env.LAB_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(REPO_ROOT, 'test-output', 'report-html');
const fixture = (name: string): Results => JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/results', `${name}.results.json`), 'utf8')) as Results;

let browser: Browser | undefined;

/** Launched by the first test (not in beforeAll: a missing browser must FAIL the tests, not skip them). */
async function launch(): Promise<Browser> {
  expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (Debian), or \`make test\`, which installs what is missing`).toBe(true);
  if (browser) return browser;
  const env = { ...process.env } as Record<string, string>;
  delete env.DISPLAY;
  delete env.WAYLAND_DISPLAY;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    env,
    timeout: 60_000,
  });
  return browser;
}

afterAll(async () => {
  await browser?.close();
});

describe('report.html in headless Chromium', () => {
  for (const name of ['smb', 'minecraft'] as const) {
    it(`${name}: header visible, every chart drawn, offline and without JavaScript; screenshot saved`, async () => {
      const dir = join(OUT, name);
      mkdirSync(dir, { recursive: true });
      const results = fixture(name);
      const [, htmlFile] = await writeReports(results, dir);
      const expectedCharts = (readFileSync(htmlFile!, 'utf8').match(/<figure class="chart"/g) ?? []).length;
      expect(expectedCharts).toBeGreaterThan(name === 'smb' ? 20 : 6);

      const context = await (await launch()).newContext({ javaScriptEnabled: false, viewport: { width: 1400, height: 1000 } });
      const external: string[] = [];
      await context.route('**/*', (route) => {
        const url = route.request().url();
        if (url.startsWith('file:')) return route.continue();
        external.push(url);
        return route.abort();
      });
      try {
        const page = await context.newPage();
        const response = await page.goto(pathToFileURL(htmlFile!).href, { waitUntil: 'load' });
        expect(response === null || response.ok()).toBe(true);

        // the header a person reads
        await expect.poll(() => page.locator('header h1').innerText()).toBe(`HA strategies compared: lab ${name}`);
        const banner = await page.locator('header .emulated').innerText();
        expect(banner).toContain('emulated Talos control plane');
        for (const [k, v] of Object.entries(results.provider.components)) expect(banner).toContain(`${k} ${v}`);
        expect(await page.locator('header strong').first().innerText()).toBe('emulated Talos control plane');
        expect(await page.locator('header table.facts').innerText()).toContain(`${results.topology.controlPlanes} control plane`);

        // every chart: an SVG of real size with painted paths (drawn by ECharts, not left empty)
        const svgs = page.locator('figure.chart > svg');
        expect(await svgs.count()).toBe(expectedCharts);
        let drawn = 0;
        for (let i = 0; i < expectedCharts; i++) {
          const svg = svgs.nth(i);
          const box = await svg.boundingBox();
          expect(box, `chart ${i} has no box`).not.toBeNull();
          expect(box!.width).toBeGreaterThan(300);
          expect(box!.height).toBeGreaterThan(100);
          const painted = await svg.locator('path[d]:not([d=""])').count();
          if (painted >= 5) drawn++;
          // the title is visible text inside the chart
          expect((await svg.locator('text').allTextContents()).join(' ')).toMatch(/Kubernetes API endpoint|LoadBalancer Service/);
        }
        expect(drawn).toBe(expectedCharts);

        // a bar of the outage chart has a real painted area
        const firstOutage = page.locator('figure.chart', { hasText: 'outage against the expected band' }).first().locator('svg path[fill]:not([fill="none"])');
        const areas = await Promise.all((await firstOutage.all()).slice(0, 40).map((p) => p.boundingBox()));
        expect(areas.some((b) => b !== null && b.width > 5 && b.height > 5)).toBe(true);

        // tables carry the figures and the flags
        expect(await page.locator('#recommendation').innerText()).toContain('Where the measurement agrees or disagrees with the article');
        expect(await page.locator('td.bad').count()).toBeGreaterThan(0);

        const shot = join(dir, `${name}.png`);
        await page.screenshot({ path: shot, fullPage: true });
        expect(statSync(shot).size).toBeGreaterThan(50_000);
        expect(external).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }
});
