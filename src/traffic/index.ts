/**
 * Measurement library: open-loop load generator, outage probe, long-lived stream probe, and the
 * pure functions that turn their raw samples into results. Every generator/probe is a plain
 * object with stop() (and an AbortSignal option) returning data; the client agent
 * (./agent.ts) hosts them inside a lab namespace.
 */
export { epochNow, perfToEpoch, epochToPerf } from './clock.js';
export { LatencyHistogram, latencyStats, EMPTY_STATS, type LatencyStats } from './histogram.js';
export {
  parseTarget,
  classifyError,
  servedBy,
  type ErrorKind,
  type ParsedTarget,
  type TlsOptions,
  type ServedBy,
} from './target.js';
export { OpenLoopEngine, serialiseColumns, type SampleColumns, type EngineOptions, type EngineProgress } from './engine.js';
export { startLoad, runLoad, type LoadOptions, type LoadResult, type LoadGenerator, type LoadMode } from './loadgen.js';
export {
  windowStats,
  phaseStats,
  timeline,
  clientIpPreserved,
  type WindowStats,
  type PhaseStats,
  type TimelineBucket,
} from './stats.js';
export {
  startOutageProbe,
  computeOutage,
  type ProbeSample,
  type OutageSample,
  type OutageProbe,
  type OutageProbeOptions,
  type OutageOptions,
  type OutageResult,
  type OutageBurst,
  type ProbeStatus,
} from './outage.js';
export { ProbeWorker, startWorkerProbe, type RemoteProbe, type RemoteProbeStatus, type WorkerProbeOptions } from './probe-worker.js';
export {
  startStreamProbe,
  type StreamProbe,
  type StreamProbeOptions,
  type StreamOutcome,
  type StreamsResult,
  type StreamBreak,
} from './streams.js';
export { runLoadCommand, formatLoad, jsonView, type LoadCommandOptions } from './cli-load.js';
