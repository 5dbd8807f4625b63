/**
 * Latency histogram in milliseconds with microsecond resolution: a thin wrapper over
 * hdr-histogram-js (HdrHistogram, as used by wrk2 and fortio). Values are recorded as integer
 * microseconds with 3 significant digits (relative error <= 0.1%), auto-resizing, so one shape
 * serves a 50 µs loopback reply and a 60 s ARP-cache outage alike.
 */
import * as hdr from 'hdr-histogram-js';

/** The latency fields of a run in results.json (`latencyMs`), plus count/min/mean. */
export interface LatencyStats {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  min: number;
  mean: number;
  count: number;
}

export const EMPTY_STATS: Readonly<LatencyStats> = Object.freeze({ p50: 0, p90: 0, p99: 0, p999: 0, max: 0, min: 0, mean: 0, count: 0 });

const US_PER_MS = 1000;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

export class LatencyHistogram {
  private readonly h: hdr.Histogram;

  constructor(significantDigits: 1 | 2 | 3 | 4 | 5 = 3) {
    this.h = hdr.build({
      bitBucketSize: 32,
      autoResize: true,
      lowestDiscernibleValue: 1, // 1 µs
      highestTrackableValue: 60 * 60 * 1000 * US_PER_MS, // 1 h, grows if needed
      numberOfSignificantValueDigits: significantDigits,
    });
  }

  /** Record one latency in ms (negative values, which a clock cannot give, are clamped to 0). */
  record(ms: number): void {
    this.h.recordValue(Math.max(0, Math.round(ms * US_PER_MS)));
  }

  recordMany(ms: number, count: number): void {
    this.h.recordValueWithCount(Math.max(0, Math.round(ms * US_PER_MS)), count);
  }

  get count(): number {
    return this.h.totalCount;
  }

  /** Value at a percentile (0–100), in ms; 0 when empty. */
  percentile(p: number): number {
    return this.h.totalCount ? this.h.getValueAtPercentile(p) / US_PER_MS : 0;
  }

  get max(): number {
    return this.h.totalCount ? this.h.maxValue / US_PER_MS : 0;
  }

  get min(): number {
    return this.h.totalCount ? this.h.minNonZeroValue / US_PER_MS : 0;
  }

  get mean(): number {
    return this.h.totalCount ? this.h.mean / US_PER_MS : 0;
  }

  stats(): LatencyStats {
    if (!this.h.totalCount) return { ...EMPTY_STATS };
    return {
      p50: round3(this.percentile(50)),
      p90: round3(this.percentile(90)),
      p99: round3(this.percentile(99)),
      p999: round3(this.percentile(99.9)),
      max: round3(this.max),
      min: round3(this.min),
      mean: round3(this.mean),
      count: this.h.totalCount,
    };
  }

  add(other: LatencyHistogram): void {
    this.h.add(other.h);
  }

  reset(): void {
    this.h.reset();
  }

  /** Compressed base64 (the HdrHistogram interchange format), to keep raw distributions. */
  encode(): string {
    return hdr.encodeIntoCompressedBase64(this.h);
  }

  static decode(base64: string): LatencyHistogram {
    const out = new LatencyHistogram();
    out.h.add(hdr.decodeFromCompressedBase64(base64, 32, false));
    return out;
  }

  /** Free the native memory (only matters for WebAssembly histograms; harmless otherwise). */
  destroy(): void {
    this.h.destroy();
  }
}

/** Percentiles of a list of ms values. */
export function latencyStats(values: Iterable<number>): LatencyStats {
  const h = new LatencyHistogram();
  for (const v of values) h.record(v);
  return h.stats();
}
