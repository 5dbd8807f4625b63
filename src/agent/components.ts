/**
 * The list of emulated components an agent can host. Each line maps a kind to the module that
 * implements it (a default export of type ComponentFactory). Add a component here, nowhere else.
 */
import { registerComponent } from './registry.js';
import { loadPlugin } from '../util/plugin.js';
import type { ComponentFactory } from './types.js';

const at = (kind: string, path: string) => registerComponent(kind, () => loadPlugin<ComponentFactory>('agent component', kind, import.meta.url, path));

// control-plane side (issue 4)
at('apiserver', '../cluster/apiserver.js');
at('kubeprism', '../cluster/kubeprism.js');
at('kubelet-client', '../cluster/kubelet-client.js');
at('talos-vip', '../strategies/cp/talos-vip.agent.js');
at('kube-vip', '../strategies/kube-vip.agent.js');
// service side (issue 5)
at('echo', '../cluster/echo.js');
at('kube-proxy', '../cluster/kube-proxy.js');
at('metallb', '../strategies/svc/metallb.agent.js');
at('cilium', '../strategies/svc/cilium.agent.js');
// client side (issue 8)
at('traffic', '../traffic/agent.js');
