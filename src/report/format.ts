/**
 * Number and text formatting shared by every renderer. Deterministic on purpose: no locale
 * (toLocaleString / Intl depend on the machine), no "now"; the same results give the same bytes.
 */
import type { Spread } from './model.js';

export const DASH = '—';

/** A duration: "430 ms" below a second, "52.3 s" above (3 significant digits is what a probe every 10 ms supports). */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  if (Math.abs(ms) < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return `${Math.abs(s) < 100 ? s.toFixed(1) : Math.round(s).toString()} s`;
}

/** A long duration: "8.4 s", "31 min 14 s". */
export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || Math.abs(ms) < 120_000) return fmtMs(ms);
  const total = Math.round(ms / 1000);
  return `${Math.floor(total / 60)} min ${total % 60} s`;
}

/** A latency in ms, without unit: 0.84, 12.3, 250. */
export function fmtLat(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return DASH;
  const a = Math.abs(ms);
  if (a < 10) return ms.toFixed(2);
  if (a < 100) return ms.toFixed(1);
  return Math.round(ms).toString();
}

export function fmtInt(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  return Math.round(n).toString();
}

export function fmtNum(n: number | null | undefined, digits = 1): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return DASH;
  return Number.isInteger(n) ? n.toString() : n.toFixed(digits);
}

/** A fraction 0..1 as a percentage: "100 %", "48 %", "0.4 %". */
export function fmtPct(f: number | null | undefined): string {
  if (f === null || f === undefined || !Number.isFinite(f)) return DASH;
  const p = f * 100;
  return `${p !== 0 && Math.abs(p) < 1 ? p.toFixed(1) : Math.round(p).toString()} %`;
}

/** "median (min–max)" with the given value formatter; only the median when all repeats agree or n = 1. */
export function fmtSpread(s: Spread | null | undefined, f: (n: number) => string): string {
  if (!s) return DASH;
  const m = f(s.median);
  if (s.n <= 1 || s.min === s.max) return m;
  return `${m} (${f(s.min)}–${f(s.max)})`;
}

/**
 * An outage over repeats, never a figure for one that did not end: "12.3 s (11.9 s–13.0 s)",
 * "> 60.0 s (not recovered)", "12.3 s; 1 of 3 not recovered (> 60.0 s)".
 */
export function fmtOutage(g: { outage: Spread | null; unrecovered: { n: number; atLeastMs: number } | null; runs: unknown[] }): string {
  const open = g.unrecovered;
  if (!open) return fmtSpread(g.outage, fmtMs);
  const lower = `> ${fmtMs(open.atLeastMs)}`;
  if (!g.outage) return `${lower} (not recovered)`;
  return `${fmtSpread(g.outage, fmtMs)}; ${open.n} of ${g.runs.length} not recovered (${lower})`;
}

/** "40.0–62.0 s", "0–1.5 s", "0–500 ms": one unit for both ends, the one of the upper end */
export function fmtBand(b: { min: number; max: number } | null | undefined): string {
  if (!b) return DASH;
  if (Math.abs(b.max) < 1000) return `${Math.round(b.min)}–${Math.round(b.max)} ms`;
  const s = (ms: number) => (ms === 0 ? '0' : Math.abs(ms) < 100_000 ? (ms / 1000).toFixed(1) : Math.round(ms / 1000).toString());
  return `${s(b.min)}–${s(b.max)} s`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** Plain string order (not localeCompare: ICU data differs between Node builds). */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A Markdown table cell: no line breaks, pipes escaped. */
export function mdCell(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/** Markdown inline text from data (names, reasons): characters that would format are escaped. */
export function mdText(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/([\\`*_[\]<>|])/g, '\\$1');
}
