/** The control-plane endpoint mechanisms (DESIGN.md), by id; loaded lazily by src/strategies/index.ts. */
import type { Mechanism } from '../types.js';
import { talosVipMechanism } from './talos-vip.js';
import { kubeVipArpMechanism } from './kube-vip-arp.js';
import { kubeVipBgpMechanism } from './kube-vip-bgp.js';
import { haproxyMechanism } from './haproxy.js';

export const cpMechanisms: Record<string, Mechanism> = {
  'talos-vip': talosVipMechanism,
  'kube-vip-arp': kubeVipArpMechanism,
  'kube-vip-bgp': kubeVipBgpMechanism,
  haproxy: haproxyMechanism,
};
