/**
 * The live page of a REAL run: `lab run minecraft --quick --drills baseline,crash --live` on the
 * sim, followed in headless Chromium while it runs. What a workshop room sees: the API address
 * held by cp1, gone while cp1 is down (one node: nobody takes it over), back when it boots; the
 * API strip chart growing through the failure; the results table filling; the report link at the
 * end — and no console error. The screenshot is kept in test-output/live-run.png.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../src/model/load.js';

const CHROMIUM = process.env.LAB_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(REPO_ROOT, 'test-output');

let child: ChildProcess | undefined;
let context: BrowserContext | undefined;
const temps: string[] = [];

afterAll(async () => {
  await context?.close();
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((r) => child!.once('exit', r));
  }
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('the live page of a real run', () => {
  it('follows a crash of the only node: holder gone then back, strip chart through the failure, results and report link', async () => {
    expect(process.getuid?.()).toBe(0);
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}`).toBe(true);
    mkdirSync(OUT, { recursive: true });
    const out = mkdtempSync(join(tmpdir(), 'live-run-out-'));
    temps.push(out);
    child = spawn(process.execPath, [join(REPO_ROOT, 'scripts', 'lab.mjs'), 'run', 'minecraft', '--quick', '--drills', 'baseline,crash', '--strategies', 'talos-vip+metallb-l2', '--live', '--out', out], {
      cwd: REPO_ROOT,
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no live URL within 120 s:\n${stderr.slice(-3000)}`)), 120_000);
      child!.stderr!.on('data', (b: Buffer) => {
        stderr += b.toString();
        const m = /live view: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child!.once('exit', (code) => reject(new Error(`lab run exited ${code} before serving the page:\n${stderr.slice(-3000)}`)));
    });
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

    const profile = mkdtempSync(join(tmpdir(), 'live-run-chromium-'));
    temps.push(profile);
    const env = { ...process.env } as Record<string, string>;
    delete env.DISPLAY;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      env,
      viewport: { width: 1920, height: 1080 },
      timeout: 60_000,
    });
    const problems: string[] = [];
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(url, { waitUntil: 'load' });
    await expect.poll(() => page.locator('#lab').innerText(), { timeout: 60_000 }).toBe('lab minecraft');
    expect(await page.locator('#emulated').isVisible()).toBe(true);

    // before the crash cp1 holds the API VIP
    const holders = () => page.locator('#addresses [data-key="api"]').getAttribute('data-holders');
    await expect.poll(holders, { timeout: 180_000, interval: 250 }).toBe('cp1');
    await expect.poll(() => page.locator('#now-body .drill').innerText(), { timeout: 180_000, interval: 250 }).toMatch(/^crash on cp1/);
    const before = await stripPoints(page, 'api');
    // the only node is down: nobody holds the VIP (seen from the agent and wire events)
    await expect.poll(holders, { timeout: 60_000, interval: 200 }).toBe('');
    await page.screenshot({ path: join(OUT, 'live-run.png') });
    // it boots after the downtime and takes the VIP again
    await expect.poll(holders, { timeout: 90_000, interval: 250 }).toBe('cp1');
    const after = await stripPoints(page, 'api');
    expect(after.points).toBeGreaterThan(before.points + 50);
    expect(after.failed.some((v) => v >= 90)).toBe(true);
    await expect.poll(() => page.locator('#results tbody tr').count(), { timeout: 120_000 }).toBeGreaterThanOrEqual(2);
    await expect.poll(() => page.locator('#report-link').isVisible(), { timeout: 180_000 }).toBe(true);
    expect(await exited).toBe(0);
    expect(problems).toEqual([]);
  }, 600_000);
});

/** the points of a strip chart and the failed share of each (from the page's own chart) */
async function stripPoints(page: Page, key: string): Promise<{ points: number; failed: number[] }> {
  return page.evaluate((k) => {
    const g = globalThis as any;
    const card = g.document.querySelector(`.strip[data-key="${k}"]`);
    if (!card) return { points: 0, failed: [] };
    const option = g.echarts.getInstanceByDom(card.querySelector('.strip-chart')).getOption();
    const failed: number[] = option.series.find((s: { id: string }) => s.id === 'success').data.map((d: [number, number]) => Math.round((100 - d[1]) * 10) / 10);
    return { points: failed.length, failed };
  }, key);
}
