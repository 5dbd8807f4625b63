/**
 * The echo workload of a REAL cluster (docker, qemu, an existing cluster): what the client's
 * Service probes talk to, rendered for every strategy by the Talos kind. Pure: topology + strategy
 * in, manifests out.
 *
 *  - Image: agnhost from the Kubernetes e2e images, `registry.k8s.io/e2e-test-images/agnhost:2.52`
 *    (the tag kubernetes/kubernetes test/utils/image/manifest.go pins for `Agnhost`), subcommand
 *    `netexec` (test/images/agnhost/netexec/netexec.go): an HTTP server whose `/clientip` answers
 *    the request's remote address (`r.RemoteAddr`, "ip:port") and `/hostname` the pod's hostname.
 *    `--http-override=/clientip` makes EVERY path answer as `/clientip` ("If --http-override is
 *    set, the HTTP(S) server will always serve the override path"), so the probe's and the load's
 *    `GET /` learn the address the pod saw — the client's own under externalTrafficPolicy Local,
 *    a node's under Cluster (kube-proxy masquerades). src/traffic/target.ts `servedBy` reads that
 *    plain `ip:port` body. netexec answers ONE fact per path, so a reply does not also name the
 *    pod: the per-node share of Service traffic is not measured on real clusters (the report says
 *    "no node share measured"). `--udp-port=-1` turns its UDP server off.
 *  - agnhost has no raw TCP echo, so the Services do not carry the lab's stream port: the stream
 *    probe finds it closed and records no stream (not a reset).
 *  - One Deployment with one replica per workload node, spread by a topology spread constraint on
 *    `kubernetes.io/hostname` (whenUnsatisfiable DoNotSchedule): no node names are written, so the
 *    manifest fits runtimes that name nodes their own way (qemu). Control planes get pods only when
 *    Talos lets them (`cluster.allowSchedulingOnControlPlanes` removes their NoSchedule taint).
 *    The pod passes the `restricted` Pod Security level (Talos enforces `baseline`).
 *  - Services `web` (ETP Cluster) and `web-local` (ETP Local) — the topology's services — type
 *    LoadBalancer with their `loadBalancerClass` and their lab address where the Service mechanism
 *    reads it: the annotation the roles name (`RealSupport.addressAnnotation`: MetalLB
 *    `metallb.io/loadBalancerIPs`, Cilium `lbipam.cilium.io/ips`, kube-vip
 *    `kube-vip.io/loadbalancerIPs`), else `spec.loadBalancerIP`, which kube-vip and MetalLB still
 *    honour (kube-vip pkg/utils/ip.go@v1.2.3 falls back to it; MetalLB refuses a Service that
 *    sets both, controller_test.go "request IP from both svc.spec.LoadBalancerIP and custom
 *    annotation", so never both).
 */
import { stringify } from 'yaml';
import type { LbService, Topology } from '../../../model/types.js';
import type { RenderedFile, Strategy } from '../../../strategies/types.js';

/** kubernetes/kubernetes test/utils/image/manifest.go: configs[Agnhost] = {…, "agnhost", "2.52"}. */
export const AGNHOST_VERSION = '2.52';
export const AGNHOST_IMAGE = `registry.k8s.io/e2e-test-images/agnhost:${AGNHOST_VERSION}`;
export const ECHO_NAME = 'tlab-echo';
export const WORKLOAD_PATH = 'workload/echo.yaml';
export const SERVICES_PATH = 'workload/services.yaml';
const LABELS = { 'app.kubernetes.io/name': ECHO_NAME, 'app.kubernetes.io/part-of': 'talos-ha-lab' };

const docs = (list: unknown[], header: string[]) => header.map((l) => `# ${l}`).join('\n') + '\n' + list.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');

/** The namespaces of the topology's Services (the echo Deployment runs in each). */
function namespaces(t: Topology): string[] {
  return [...new Set(t.services.map((s) => s.namespace))];
}

export function echoDeployment(t: Topology, namespace: string): Record<string, unknown> {
  const replicas = Math.max(1, t.nodes.filter((n) => n.runsWorkloads).length);
  const ports = [...new Set(t.services.filter((s) => s.namespace === namespace).map((s) => s.targetPort))];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: ECHO_NAME, namespace, labels: LABELS },
    spec: {
      replicas,
      selector: { matchLabels: { 'app.kubernetes.io/name': ECHO_NAME } },
      template: {
        metadata: { labels: LABELS },
        spec: {
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { 'app.kubernetes.io/name': ECHO_NAME } } }],
          // the lab's drills take nodes away for seconds: pods stay bound to their node (no eviction churn within a run)
          tolerations: [
            { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3600 },
            { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 3600 },
          ],
          securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
          containers: ports.map((port) => ({
            name: `netexec-${port}`,
            image: AGNHOST_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            args: ['netexec', `--http-port=${port}`, '--udp-port=-1', '--http-override=/clientip'],
            ports: [{ name: `http-${port}`, containerPort: port, protocol: 'TCP' }],
            readinessProbe: { httpGet: { path: '/', port }, periodSeconds: 2, failureThreshold: 1 },
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          })),
        },
      },
    },
  };
}

/** The annotations that carry a Service's address to the controllers of this strategy. */
export function addressAnnotations(s: Pick<Strategy, 'cp' | 'svc'>): string[] {
  return [...new Set([s.svc.real?.addressAnnotation, s.cp.real?.addressAnnotation].filter((a): a is string => !!a))];
}

export function echoService(svc: LbService, annotations: string[]): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: svc.name,
      namespace: svc.namespace,
      labels: LABELS,
      ...(annotations.length ? { annotations: Object.fromEntries(annotations.map((a) => [a, svc.ip])) } : {}),
    },
    spec: {
      type: 'LoadBalancer',
      ...(svc.loadBalancerClass ? { loadBalancerClass: svc.loadBalancerClass } : {}),
      ...(annotations.length ? {} : { loadBalancerIP: svc.ip }),
      externalTrafficPolicy: svc.externalTrafficPolicy,
      selector: { 'app.kubernetes.io/name': ECHO_NAME },
      ports: [{ name: 'http', port: svc.port, targetPort: svc.targetPort, protocol: 'TCP' }],
    },
  };
}

/** The echo Deployment(s) and the topology's Services, as a real cluster gets them for this strategy. */
export function echoWorkloadFiles(t: Topology, s: Strategy): RenderedFile[] {
  const ann = addressAnnotations(s);
  const nodes = t.nodes.filter((n) => n.runsWorkloads).map((n) => n.name);
  return [
    {
      path: WORKLOAD_PATH,
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      hosts: nodes,
      content: docs(
        namespaces(t).map((ns) => echoDeployment(t, ns)),
        [
          `The echo workload: ${AGNHOST_IMAGE} netexec, one pod per workload node (${nodes.join(', ') || 'none'}), every path answering the client address it saw.`,
          'No raw TCP echo (agnhost has none): the lab’s stream probe records no streams on real clusters.',
        ],
      ),
    },
    {
      path: SERVICES_PATH,
      kind: 'k8s-manifest',
      delivery: 'kubectl',
      content: docs(
        t.services.map((x) => echoService(x, ann)),
        [
          `Services of type LoadBalancer on the pool's addresses for ${s.ref.id}: ${t.services.map((x) => `${x.namespace}/${x.name} ${x.ip} ETP ${x.externalTrafficPolicy}${x.loadBalancerClass ? ` class ${x.loadBalancerClass}` : ''}`).join(', ')}.`,
          ann.length ? `The address is requested with ${ann.join(' and ')}.` : 'The address is requested with spec.loadBalancerIP (no role names an annotation).',
        ],
      ),
    },
  ];
}

/** Is this rendered file the echo workload (applied after the mechanisms' own manifests, deleted before them)? */
export function isWorkloadFile(f: RenderedFile): boolean {
  return f.path === WORKLOAD_PATH || f.path === SERVICES_PATH;
}
