/**
 * `settings.kubeVip`: which kube-vip release the lab emulates (and the real providers deploy),
 * shared by the ARP and BGP mechanisms. The release decides timer defaults and behaviour (see
 * ./versions.ts); a release that lacks something the lab asks for is refused when the lab loads
 * (BFD before v1.2.2: the roles' strategyIssue).
 */
import type { Settings, Topology } from '../../model/types.js';
import type { SettingsGroupDef } from '../types.js';
import { KUBE_VIP_DEFAULT_VERSION, kubeVipRelease, versionProblem, type KubeVipRelease } from './versions.js';

declare module '../../model/types.js' {
  interface Settings {
    kubeVip: { version: string };
  }
}

export const kubeVipSettings: SettingsGroupDef = {
  group: 'kubeVip',
  defaults: {
    // the current release (kube-vip Makefile@v1.2.3 VERSION := v1.2.3), which the real providers deploy
    version: KUBE_VIP_DEFAULT_VERSION,
  },
  issues(s) {
    const why = versionProblem(s.kubeVip.version);
    return why ? [{ fields: ['kubeVip.version'], message: why }] : [];
  },
  timerDefaults(s) {
    if (versionProblem(s.kubeVip.version)) return {};
    // the pinned release's lease defaults; vip_arpRate 3000 ms in every release read
    // (pkg/kubevip/config_environment.go @v0.8.9, @v1.2.3)
    return { kubeVip: { ...kubeVipRelease(s.kubeVip.version).lease, arpRateMs: 3000 } };
  },
};

/** The release a topology emulates (the default one for topologies built without settings, e.g. in tests). */
export function releaseOf(t: Pick<Topology, 'settings'>): KubeVipRelease {
  const s = (t.settings as Partial<Settings> | undefined)?.kubeVip;
  return kubeVipRelease(s?.version ?? KUBE_VIP_DEFAULT_VERSION);
}
