/**
 * The run's event stream: everything a run does and observes, as it happens, in one typed union.
 * The engine publishes; listeners consume — the terminal progress, the live page (`--live`,
 * `lab watch`), and the output directory's `live.jsonl` (so another process can follow a run it did not
 * start). Every event is JSON-serialisable and carries `t` (epoch ms, the agents' clock).
 *
 * Figures in these events are what probes and observers saw (probe samples, holders read from
 * kernel addresses or router routes, agent and wire events); the bands are what the timers
 * predict, stored beside them — the same split as results.json.
 */
import type { AgentEvent } from '../emulation/agent/types.js';
import type { Topology, Target } from '../model/types.js';
import type { RunRecord } from '../results/types.js';

/** One planned run (strategy × target × drill × repeat), known before the first one starts. */
export interface PlannedRun {
  strategy: string;
  target: Target;
  service?: string;
  drill: string;
  repeat: number;
  /** what the timers predict this run costs (pre + observe + settle), for the time left */
  estimateMs: number;
}

export type RunEvent =
  | {
      type: 'run-start';
      t: number;
      lab: string;
      provider: string;
      /** true = the control plane is emulated (the sim): never presented as Talos figures */
      emulated: boolean;
      /** lab instance id(s): one per parallel instance */
      instances: string[];
      topology: Topology;
      strategies: { id: string; label: string; recommended: boolean }[];
      plan: PlannedRun[];
      estimateMs: number;
      out: string;
    }
  /**
   * `watched` false: the strategy runs on a lab instance the live view does not follow (with
   * --parallel, only the first instance's topology, holders and probes are streamed; the others'
   * phases and results still are)
   */
  | { type: 'strategy'; t: number; strategy: string; phase: 'apply' | 'ready' | 'unapply' | 'unsupported'; reason?: string; watched?: boolean }
  | {
      type: 'drill-start';
      t: number;
      strategy: string;
      target: Target;
      service?: string;
      drill: string;
      repeat: number;
      victim: string | null;
      /** the address the client probes */
      address: string;
      band: { min: number; max: number; basis: string } | null;
    }
  | { type: 'inject' | 'restore'; t: number; strategy: string; target: Target; drill: string; victim: string | null }
  /** probe samples since the previous batch (the outage probe, ≤ 10 ms apart) */
  | { type: 'probe'; t: number; strategy: string; target: Target; samples: { t: number; ok: boolean; latencyMs: number }[] }
  /** who holds/announces the target's address now (observed, not predicted) */
  | { type: 'holders'; t: number; strategy: string; target: Target; address: string; holders: string[] }
  /** BGP sessions of a router as observed (vtysh) */
  | { type: 'bgp'; t: number; router: string; peers: { peer: string; state: string }[] }
  /** an agent or wire event (acquired/released, garp on the wire, route changes on a router…) */
  | { type: 'mechanism'; t: number; strategy: string; event: AgentEvent }
  | { type: 'drill-end'; t: number; strategy: string; target: Target; drill: string; repeat: number; record: RunRecord }
  | { type: 'progress'; t: number; done: number; total: number; leftMs: number }
  | { type: 'log'; t: number; message: string }
  | { type: 'report'; t: number; files: string[] }
  | { type: 'run-end'; t: number; status: 'ok' | 'failed' | 'interrupted'; error?: string };

export type RunEventType = RunEvent['type'];
export type Listener = (e: RunEvent) => void;

/** A synchronous fan-out: a listener that throws is dropped from the run, never breaks it. */
export class RunEvents {
  private readonly listeners = new Set<Listener>();

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  emit(e: RunEvent): void {
    for (const l of [...this.listeners]) {
      try {
        l(e);
      } catch {
        this.listeners.delete(l);
      }
    }
  }
}
