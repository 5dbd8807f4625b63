/**
 * The live page in a real browser: headless Debian Chromium (playwright-core, fresh profile)
 * against the live server, while the recorded smb --quick stream
 * (test/fixtures/live/smb-quick.jsonl) is replayed on the run's event bus with its timing
 * compressed. What a room would see: the API VIP highlight moving from cp1 to cp2, the strip
 * chart growing and showing the failure, the results table filling, the report link — with no
 * console error and no request leaving the machine. Screenshots go to test-output/ (gitignored).
 * No root needed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../src/model/load.js';
import { RunEvents, type RunEvent } from '../../src/orchestrator/events.js';
import { startLiveServer, type LiveServer } from '../../src/live/server.js';

// LAB_CHROMIUM: another Chromium binary (default: Debian's)
const CHROMIUM = process.env.LAB_CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(REPO_ROOT, 'test-output');
/** replay speed-up, and the longest pause between two events once compressed */
const SPEEDUP = 8;
const MAX_GAP_MS = 250;
const API_COLOR = '#ffb020';

const fixture: RunEvent[] = readFileSync(join(REPO_ROOT, 'test/fixtures/live/smb-quick.jsonl'), 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as RunEvent);

let context: BrowserContext | undefined;
let server: LiveServer | undefined;
const temps: string[] = [];

afterAll(async () => {
  await context?.close();
  await server?.close();
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

describe('live page in headless Chromium', () => {
  it('shows the failover as it happens: holder moves cp1 → cp2, strip chart fails then recovers, results fill; screenshot saved', async () => {
    expect(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM}: install it with \`apt-get install chromium\` (Debian), or \`make test\`, which installs what is missing`).toBe(true);
    mkdirSync(OUT, { recursive: true });

    // the run's output directory, where the report will be "written"
    const out = mkdtempSync(join(tmpdir(), 'live-page-out-'));
    temps.push(out);
    const events = new RunEvents();
    const logs: string[] = [];
    server = await startLiveServer({ events, log: (m) => logs.push(m), reportDir: () => out });
    const origin = new URL(server.url).origin;

    const profile = mkdtempSync(join(tmpdir(), 'live-page-chromium-'));
    temps.push(profile);
    const env = { ...process.env } as Record<string, string>;
    delete env.DISPLAY;
    delete env.WAYLAND_DISPLAY;
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      env,
      viewport: { width: 1920, height: 1080 },
      timeout: 60_000,
    });
    const problems: string[] = [];
    const external: string[] = [];
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('data:')) return route.continue();
      external.push(url);
      return route.abort();
    });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      if (r.url().startsWith(origin) && !r.url().endsWith('/events')) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    });

    const res = await page.goto(server.url, { waitUntil: 'load' });
    expect(res?.status()).toBe(200);
    await expect.poll(() => page.locator('#conn').innerText()).toBe('live');
    expect(await page.locator('#lab').innerText()).toBe('waiting for a run…');

    // -- replay: up to the moment before the crash of the API VIP holder
    const idx = (pred: (e: RunEvent) => boolean) => {
      const i = fixture.findIndex(pred);
      expect(i).toBeGreaterThanOrEqual(0);
      return i;
    };
    const injectApi = idx((e) => e.type === 'inject' && e.target === 'api');
    const movedApi = idx((e) => e.type === 'holders' && e.target === 'api' && e.holders.includes('cp2'));
    const endApi = idx((e) => e.type === 'drill-end' && e.target === 'api');
    const endSvc = idx((e) => e.type === 'drill-end' && e.target === 'service');
    let at = 0;
    const replayTo = async (until: number) => {
      for (; at < until; at++) {
        const e = fixture[at]!;
        const gap = at ? (e.t - fixture[at - 1]!.t) / SPEEDUP : 0;
        if (gap > 0) await sleep(Math.min(gap, MAX_GAP_MS));
        events.emit(e);
      }
    };

    await replayTo(injectApi);
    await expect.poll(() => page.locator('#lab').innerText()).toBe('lab smb');
    expect(await page.locator('#emulated').isVisible()).toBe(true);
    expect(await page.locator('#emulated').innerText()).toContain('emulated');
    await expect.poll(() => page.locator('#addresses [data-key="api"]').getAttribute('data-holders')).toBe('cp1');
    await expect.poll(() => highlighted(page)).toEqual({ cp1: API_COLOR, cp2: null });
    expect(await page.locator('#now-body .drill').innerText()).toBe('crash on cp1');
    await expect.poll(() => page.locator('#progress-text').innerText()).toMatch(/^0 \/ 2 runs · ≈ \d+ s left$/);
    const before = await stripData(page, 'api');
    expect(before.points).toBeGreaterThan(3);
    expect(before.failed.every((v) => v === 0)).toBe(true);

    // -- the crash, until the observer sees cp2 holding the VIP
    await replayTo(movedApi + 1);
    await expect.poll(() => page.locator('#addresses [data-key="api"]').getAttribute('data-holders')).toBe('cp2');
    await expect.poll(() => highlighted(page)).toEqual({ cp1: null, cp2: API_COLOR });
    // cp1 is drawn as the crashed victim
    expect(await nodeLabel(page, 'cp1')).toContain('crash');
    await expect.poll(async () => (await stripData(page, 'api')).points).toBeGreaterThan(before.points + 40);
    const during = await stripData(page, 'api');
    // a whole run of 100 ms buckets where every probe failed
    expect(during.failed.filter((v) => v === 100).length).toBeGreaterThanOrEqual(40);
    // the phase markers are drawn as their events arrive; converge is stamped when the probe is
    // clean again, which the page may draw a frame after the holder change
    await expect.poll(async () => (await stripData(page, 'api')).markers).toEqual(expect.arrayContaining(['inject', 'detect', 'announce', 'converge']));
    await expect.poll(() => page.locator('#now-body .step.converge').innerText()).toBe('converge +4.50 s');

    // -- drill-end: the results table gets its row
    await replayTo(endApi + 1);
    await expect.poll(() => page.locator('#results tbody tr').count()).toBe(1);
    const row = await page.locator('#results tbody tr').first().innerText();
    for (const text of ['kube-vip-arp+kube-vip-arp', 'API', 'crash', 'cp1', '4.51 s', '4.00 s – 10.4 s', 'yes', '1319']) expect(row).toContain(text);

    // -- the Service crash, to its result: the moment worth a screenshot
    await replayTo(endSvc + 1);
    await expect.poll(() => page.locator('#results tbody tr').count()).toBe(2);
    expect(await page.locator('#results tbody tr').first().innerText()).toContain('web');
    await expect.poll(() => page.locator('#addresses [data-key="svc:web"]').getAttribute('data-holders')).toBe('cp2');
    const web = await stripData(page, 'svc:web');
    expect(web.failed.filter((v) => v === 100).length).toBeGreaterThanOrEqual(40);
    await sleep(400); // let the last frame settle
    await page.screenshot({ path: join(OUT, 'live-page.png'), fullPage: true });

    // -- the end of the run: report written, link shown and served
    writeFileSync(join(out, 'report.html'), '<!doctype html><title>report</title><h1>HA strategies compared: lab smb</h1>');
    await replayTo(fixture.length);
    await expect.poll(() => page.locator('#status').innerText()).toBe('DONE');
    await expect.poll(() => page.locator('#report-link').isVisible()).toBe(true);
    expect(await page.locator('#report-link').getAttribute('href')).toBe('/report/report.html');
    const report = await page.request.get(new URL('/report/report.html', server.url).href);
    expect(report.status()).toBe(200);
    expect(await report.text()).toContain('HA strategies compared: lab smb');
    expect(await page.locator('#progress-text').innerText()).toBe('2 / 2 runs · finished');
    await page.screenshot({ path: join(OUT, 'live-page-end.png'), fullPage: true });

    expect(problems).toEqual([]);
    expect(external).toEqual([]);
    expect(logs.some((l) => /WARNING/.test(l))).toBe(false);
  });
});

// These run in the page (no DOM types in this project's tsconfig: the page's globals through `g`).

/** the border colour of cp1 and cp2 in the topology graph, when it marks an address holder */
async function highlighted(page: Page): Promise<{ cp1: string | null; cp2: string | null }> {
  return page.evaluate(() => {
    const g = globalThis as any;
    const chart = g.echarts?.getInstanceByDom(g.document.getElementById('topology'));
    const data: { name: string; itemStyle: { borderColor: string; shadowBlur: number } }[] = chart?.getOption().series[0].data ?? [];
    const of = (n: string) => {
      const d = data.find((x) => x.name === n);
      return d && d.itemStyle.shadowBlur > 0 ? d.itemStyle.borderColor : null;
    };
    return { cp1: of('cp1'), cp2: of('cp2') };
  });
}

async function nodeLabel(page: Page, name: string): Promise<string> {
  return page.evaluate((n) => {
    const g = globalThis as any;
    const data: { name: string; label: { formatter: string } }[] = g.echarts.getInstanceByDom(g.document.getElementById('topology')).getOption().series[0].data;
    return data.find((x) => x.name === n)?.label.formatter ?? '';
  }, name);
}

/** what a strip chart draws: its points, the failed share per point, the marker kinds */
async function stripData(page: Page, key: string): Promise<{ points: number; failed: number[]; markers: string[] }> {
  return page.evaluate((k) => {
    const g = globalThis as any;
    const card = g.document.querySelector(`.strip[data-key="${k}"]`);
    if (!card) return { points: 0, failed: [], markers: [] };
    const option = g.echarts.getInstanceByDom(card.querySelector('.strip-chart')).getOption();
    // the success line (the failed share is drawn from it up to 100 %)
    const failed: number[] = option.series.find((s: { id: string }) => s.id === 'success').data.map((d: [number, number]) => Math.round((100 - d[1]) * 10) / 10);
    return { points: failed.length, failed, markers: String(card.dataset.markers ?? '').split(',').filter(Boolean) };
  }, key);
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
