/**
 * What each kube-vip release does that changes a measured outage, by release. The lab emulates the
 * release chosen by `settings.kubeVip.version` (default: the current release, which the real
 * providers deploy). Every rule names the upstream file and the tag it was read at; a rule that
 * changed names the first release with the new behaviour. Releases outside [OLDEST, NEWEST] are
 * refused: their behaviour has not been read.
 *
 * Timer defaults: `timers.kubeVip` defaults to the DEFAULT release's values (./timers.ts). A lab
 * that pins another release gets THAT release's lease defaults (src/model/settings.ts layers them
 * under the files' own timers), so a pinned v0.8.9 runs 5/3/1 s unless the lab sets
 * `timers.kubeVip` itself, and an explicit `timers.kubeVip` always wins.
 */

export const KUBE_VIP_DEFAULT_VERSION = 'v1.2.3';
/** the oldest and newest releases whose code was read for these rules */
export const OLDEST_KNOWN = 'v0.8.0';
export const NEWEST_KNOWN = 'v1.2.3';

export interface KubeVipRelease {
  version: string;
  image: string;
  /** the lease defaults of `kube-vip manager` (cobra flags, used when vip_lease* env vars are unset) */
  lease: { leaseDurationS: number; renewDeadlineS: number; retryPeriodS: number };
  /**
   * The first gratuitous ARP after winning the control-plane lease:
   * `immediate` — a per-VIP loop sends one at once, then repeats;
   * `arp-loop` — the new leader only registers the VIP with the process-wide ARP loop, which sends
   * on its own period (vip_arpRate): the first GARP goes out 0…arpRate after the takeover.
   */
  garp: 'immediate' | 'arp-loop';
  /** the repeat period of the control-plane VIP's GARP, from vip_arpRate (ms, after the 500 ms floor) */
  cpArpRepeatMs(arpRateMs: number): number;
  /** BFD on the BGP sessions (bgp_peers' 7th field) */
  bfd: boolean;
  /**
   * What the process does after losing the control-plane lease:
   * `die` — log.Fatal / panic: it ends at once, its other leases are not released;
   * `exit` — it signals itself and shuts down gracefully (ReleaseOnCancel releases its other
   * leases), then exits. Either way the kubelet starts the container again.
   */
  onLostCpLease: 'die' | 'exit';
  /** …after losing the global Services lease (plndr-svcs-lock); `hang` = starts shutting down (no new campaign) but never exits */
  onLostServicesLease: 'die' | 'exit' | 'hang';
}

/** Parse `vX.Y.Z` → [X, Y, Z], or null. */
export function parseVersion(v: string): [number, number, number] | null {
  const m = /^v(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** a < b → negative, a = b → 0, a > b → positive */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x || !y) throw new Error(`not a release version: ${!x ? a : b}`);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

const atLeast = (v: string, min: string) => compareVersions(v, min) >= 0;

/** null when the lab can emulate this release, else why not */
export function versionProblem(version: string): string | null {
  if (!parseVersion(version)) return `expected a kube-vip release such as ${KUBE_VIP_DEFAULT_VERSION} (vX.Y.Z), got '${version}'`;
  if (!atLeast(version, OLDEST_KNOWN) || !atLeast(NEWEST_KNOWN, version)) {
    return `kube-vip ${version} is outside the releases whose behaviour this lab emulates (${OLDEST_KNOWN}–${NEWEST_KNOWN}); expected one of those`;
  }
  return null;
}

export function kubeVipRelease(version: string): KubeVipRelease {
  const why = versionProblem(version);
  if (why) throw new Error(why);
  return {
    version,
    // .github/workflows/release.yaml@v1.2.3 pushes ghcr.io/kube-vip/kube-vip:<tag>
    image: `ghcr.io/kube-vip/kube-vip:${version}`,
    // cmd/kube-vip.go: leaseDuration/leaseRenewDuration/leaseRetry = 5/3/1 s up to v1.0.x
    // (@v0.8.0 … @v1.0.4); 15/10/2 s (client-go's own defaults) from v1.1.0 (@v1.1.0 … @v1.2.3,
    // commit 7caf5f6 "align CLI lease flag defaults with Kubernetes client-go defaults").
    lease: atLeast(version, 'v1.1.0') ? { leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2 } : { leaseDurationS: 5, renewDeadlineS: 3, retryPeriodS: 1 },
    // pkg/cluster/service.go@v0.8.9/@v0.8.10: vipService starts one goroutine per VIP that sends a
    // GARP at once and repeats. From v0.9.0 the leader only inserts the VIP into the shared ARP
    // manager (pkg/cluster/service.go layer2Update@v0.9.2/@v1.2.3 → arpMgr.Insert), whose single
    // loop walks every instance each vip_arpRate (pkg/arp/arp.go StartAdvertisement: a sleep loop
    // @v0.9.2, a time.Ticker @v1.2.3); AddIP itself sends nothing (pkg/vip/address.go@v1.2.3).
    garp: atLeast(version, 'v0.9.0') ? 'arp-loop' : 'immediate',
    // pkg/cluster/service.go@v0.8.9: the control-plane loop sleeps a hard-coded 3 s ("will repeat
    // every 3 seconds"); @v0.8.10 and the ARP manager from v0.9.0 use vip_arpRate, raised to
    // 3000 ms below 500 ms (pkg/arp/arp.go NewManager@v1.2.3).
    cpArpRepeatMs: (rate) => (atLeast(version, 'v0.8.10') ? (rate < 500 ? 3000 : rate) : 3000),
    // BFD arrived with commit be0a7dd "This enables BFD in kube-vip" (first tag v1.2.2):
    // pkg/kubevip/config_bgp.go and pkg/bgp/peers.go (api.BfdPeerConfig) @v1.2.2/@v1.2.3; none @v1.2.1.
    bfd: atLeast(version, 'v1.2.2'),
    // pkg/cluster/clusterLeaderElection.go: log.Fatal("lost leadership, restarting kube-vip")
    // @v0.8.9, panic("") @v0.8.10…@v1.0.4; from v1.1.0 StartVipService's goroutine calls killFunc
    // when the lease context ends (pkg/cluster/service.go@v1.1.0/@v1.2.3), i.e. Manager.Kill →
    // SIGINT to itself → waitForShutdown cancels every context (pkg/manager/manager.go@v1.2.3).
    onLostCpLease: atLeast(version, 'v1.1.0') ? 'exit' : 'die',
    // global Services lease: log.Fatal @v0.8.9, panic @v0.9.2 (pkg/manager/manager_arp.go); a
    // SIGINT to itself @v1.0.4 (manager_arp.go) and killFunc @v1.1.x (pkg/manager/worker/common.go
    // OnStoppedLeading). From v1.2.0 runGlobalElection runs OnStartedLeading (the Services watcher)
    // in a goroutine it waits for before returning (`defer wg.Wait()`, pkg/manager/worker/common.go
    // @v1.2.0/@v1.2.3; a plain call @v1.1.2): after losing this lease a v1.2.x process removes its
    // Service addresses and starts its shutdown (no new campaign), but never exits, so the kubelet
    // never restarts it — reproduced on the v1.2.3 build 7ce55caf; the fix (a panic in that path)
    // came after v1.2.3.
    onLostServicesLease: atLeast(version, 'v1.2.0') ? 'hang' : atLeast(version, 'v1.0.0') ? 'exit' : 'die',
  };
}

/**
 * kube-vip's own BGP timers (GoBGP), the same in every release read: cmd/kube-vip.go
 * bgpHoldTimer 30 s, bgpKeepAliveInterval 10 s (@v0.8.9, @v0.9.2, @v1.2.3); ConnectRetry hard-coded
 * 10 s (pkg/bgp/peers.go @v0.8.9, @v1.2.3).
 */
export const KUBE_VIP_BGP_DEFAULTS = { keepaliveS: 10, holdS: 30, connectRetryS: 10 };
