/**
 * The list of emulated components an agent can host. Each line maps a kind to the module that
 * implements it (a default export of type ComponentFactory). Add a component here, nowhere else.
 */
import { registerComponent } from './registry.js';

const def = (p: Promise<{ default: unknown }>) => p.then((m) => m.default as never);

// control-plane side (issue 4)
registerComponent('apiserver', () => def(import('../cluster/apiserver.js')));
registerComponent('kubeprism', () => def(import('../cluster/kubeprism.js')));
registerComponent('kubelet-client', () => def(import('../cluster/kubelet-client.js')));
registerComponent('talos-vip', () => def(import('../strategies/cp/talos-vip.agent.js')));
registerComponent('kube-vip', () => def(import('../strategies/kube-vip.agent.js')));
// service side (issue 5)
registerComponent('echo', () => def(import('../cluster/echo.js')));
registerComponent('kube-proxy', () => def(import('../cluster/kube-proxy.js')));
registerComponent('metallb', () => def(import('../strategies/svc/metallb.agent.js')));
registerComponent('cilium', () => def(import('../strategies/svc/cilium.agent.js')));
// client side (issue 8)
registerComponent('traffic', () => def(import('../traffic/agent.js')));
