// The topology as an echarts `graph` series with fixed positions (layout 'none'): clients and
// the uplink on top, routers below, one column per rack LAN with its nodes (control planes
// first) and the load-balancer box, the addresses (API VIP, each Service) as pills at the bottom
// tied to whoever holds them now. Positions are computed in the container's own pixels, so
// symbols (sized in pixels by echarts) never overlap whatever the window size.

export const ADDRESS_COLORS = ['#ffb020', '#22d3ee', '#f472b6', '#a3e635', '#a78bfa', '#fb923c'];

const C = {
  text: '#eef2fa',
  muted: '#a3afc7',
  segment: '#51607f',
  link: '#44536f',
  router: '#6d28d9',
  routerBorder: '#c4b5fd',
  cp: '#1e3a8a',
  cpBorder: '#60a5fa',
  worker: '#134e4a',
  workerBorder: '#2dd4bf',
  client: '#334155',
  clientBorder: '#94a3b8',
  lb: '#7c2d12',
  lbBorder: '#fb923c',
  victim: '#7f1d1d',
  victimBorder: '#f87171',
  bgpUp: '#34d399',
  bgpDown: '#f87171',
};

/** colour of each address key, in the state's order (API first) */
export function addressColors(state) {
  const m = new Map();
  state.addresses.forEach((a, i) => m.set(a.key, ADDRESS_COLORS[i % ADDRESS_COLORS.length]));
  return m;
}

/**
 * The chart option and the height the container needs: two invisible anchors pin the view to
 * (0,0)–(width, height) so one layout pixel is one screen pixel (segment bars, sized in pixels,
 * then meet the taps of their hosts exactly).
 */
export function topologyOption(state, width) {
  const t = state.topology;
  if (!t) return { option: { series: [] }, height: 200 };
  const colors = addressColors(state);
  const L = layout(t, state.addresses, width);
  const nodes = [
    { name: 'anchor:tl', x: 0, y: 0, symbolSize: 0, label: { show: false }, tooltip: { show: false } },
    { name: 'anchor:br', x: L.width, y: L.height, symbolSize: 0, label: { show: false }, tooltip: { show: false } },
  ];
  const edges = [];
  const at = (name) => L.pos.get(name);

  // who holds what, and which node is under a fault
  const holds = new Map(); // host -> [address]
  for (const a of state.addresses) for (const h of a.holders) holds.set(h, [...(holds.get(h) ?? []), a]);
  const c = state.current;
  const victim = c && c.victim && c.phase === 'injected' ? c.victim : null;

  // segments: a flat bar with its name and CIDR, taps where hosts attach
  for (const s of t.segments) {
    const g = L.segments.get(s.name);
    if (!g) continue;
    nodes.push({
      name: `seg:${s.name}`,
      x: (g.x1 + g.x2) / 2,
      y: g.y,
      symbol: 'rect',
      symbolSize: [g.x2 - g.x1, 8],
      itemStyle: { color: C.segment },
      label: { show: true, position: 'insideLeft', offset: [0, -18], color: C.muted, fontSize: 14, formatter: `${s.name}  ${s.cidr}` },
      tooltip: { formatter: `${s.kind} segment ${s.name}<br>${s.cidr}` },
    });
  }
  for (const l of t.links) {
    const p = at(l.host);
    const g = L.segments.get(l.segment);
    if (!p || !g) continue;
    const tap = `tap:${l.host}:${l.segment}`;
    nodes.push({ name: tap, x: p.x, y: g.y, symbolSize: 0, label: { show: false }, tooltip: { show: false } });
    edges.push({ source: l.host, target: tap, lineStyle: { color: C.link, width: 2 } });
  }

  const box = (name, x, y, kind, extra) => {
    const held = holds.get(name) ?? [];
    const isVictim = name === victim;
    const color = isVictim ? C.victim : C[kind];
    const border = isVictim ? C.victimBorder : held.length ? colors.get(held[0].key) : C[`${kind}Border`];
    const lines = [`{n|${name}}`, `{ip|${extra.ip}}`];
    if (isVictim) lines.push(`{fault|✖ ${c.drill}}`);
    // address badges, wrapped to the box's width (about 8 px a character at the badge font)
    let line = [];
    let chars = 0;
    for (const a of held) {
      if (line.length && chars + a.label.length + 2 > L.badgeChars) {
        lines.push(line.join(' '));
        line = [];
        chars = 0;
      }
      line.push(`{b${ADDRESS_COLORS.indexOf(colors.get(a.key))}|${a.label}}`);
      chars += a.label.length + 2;
    }
    if (line.length) lines.push(line.join(' '));
    const boxSize = [L.box[0], Math.max(L.box[1], lines.length * (L.font + 4) + 14)];
    nodes.push({
      name,
      x,
      y,
      symbol: kind === 'router' ? 'circle' : 'roundRect',
      symbolSize: kind === 'router' ? L.routerSize : boxSize,
      itemStyle: {
        color,
        borderColor: border,
        borderWidth: held.length || isVictim ? 5 : 2,
        shadowBlur: held.length ? 22 : 0,
        shadowColor: held.length ? border : 'transparent',
      },
      label: {
        show: true,
        position: 'inside',
        formatter: kind === 'router' ? `{n|${name}}` : lines.join('\n'),
        rich: rich(L.font),
        lineHeight: L.font + 4,
      },
      tooltip: { formatter: extra.tip },
      z: 3,
    });
  };

  for (const r of t.routers) {
    const p = at(r.name);
    if (p) box(r.name, p.x, p.y, 'router', { ip: r.ip, tip: `router ${r.name} (${r.role})<br>AS ${r.asn}${r.bgp ? '' : ' — no BGP'}` });
  }
  for (const cl of t.clients) {
    const p = at(cl.name);
    if (p) box(cl.name, p.x, p.y, 'client', { ip: cl.ip, tip: `client ${cl.name}<br>${cl.ip}` });
  }
  if (t.lb) {
    const p = at(t.lb.name);
    if (p) box(t.lb.name, p.x, p.y, 'lb', { ip: t.lb.ip, tip: `load balancer ${t.lb.name}<br>${t.lb.ip}` });
  }
  for (const rack of t.racks) {
    for (const n of rack.nodes) {
      const p = at(n.name);
      if (p) box(n.name, p.x, p.y, n.role === 'controlplane' ? 'cp' : 'worker', { ip: n.ip, tip: `${n.role === 'controlplane' ? 'control plane' : 'worker'} ${n.name}<br>${n.ip}` });
    }
  }

  // BGP sessions as observed on each router
  for (const [router, peers] of Object.entries(state.bgp)) {
    for (const p of peers) {
      const host = p.host ?? p.peer;
      if (!at(router) || !at(host)) continue;
      const up = /^established$/i.test(p.state);
      // an established session is the normal case: drawn faint; a session down stands out
      edges.push({
        source: router,
        target: host,
        lineStyle: up ? { color: C.bgpUp, width: 1.2, type: 'solid', curveness: 0.25, opacity: 0.45 } : { color: C.bgpDown, width: 3, type: 'dashed', curveness: 0.25, opacity: 1 },
        tooltip: { formatter: `BGP ${router} ↔ ${host}: ${p.state}` },
      });
    }
  }

  // addresses: a pill each, tied to its holders; BGP next hops of each router drawn in its colour
  for (const a of state.addresses) {
    const p = at(`addr:${a.key}`);
    if (!p) continue;
    const color = colors.get(a.key);
    const mode = a.mode === 'bgp' ? 'BGP' : a.mode === 'l2' ? 'ARP' : a.mode === 'lb' ? 'LB' : '';
    nodes.push({
      name: `addr:${a.key}`,
      x: p.x,
      y: p.y,
      symbol: 'roundRect',
      symbolSize: L.pill,
      itemStyle: { color, borderColor: '#0a0f1c', borderWidth: 2 },
      label: { show: true, formatter: `{pl|${a.label}}\n{pi|${a.ip}${mode ? ` · ${mode}` : ''}}`, rich: rich(L.font) },
      tooltip: { formatter: `${a.label} ${a.ip}<br>held by ${a.holders.join(', ') || 'nobody'}` },
      z: 4,
    });
    for (const h of a.holders) {
      if (!at(h)) continue;
      edges.push({ source: `addr:${a.key}`, target: h, lineStyle: { color, width: 4, opacity: 0.95, curveness: 0 }, z: 2 });
    }
    for (const nh of a.nexthops) {
      for (const v of nh.via) {
        if (!at(nh.router) || !at(v)) continue;
        edges.push({ source: nh.router, target: v, lineStyle: { color, width: 3, type: 'dotted', curveness: -0.2, opacity: 0.9 }, tooltip: { formatter: `${nh.router} → ${a.ip} via ${v} (ECMP)` } });
      }
    }
  }

  const option = {
    backgroundColor: 'transparent',
    tooltip: { confine: true, backgroundColor: '#0f172a', borderColor: '#334155', textStyle: { color: C.text, fontSize: 15 } },
    animationDurationUpdate: 400,
    series: [
      {
        id: 'topology',
        type: 'graph',
        layout: 'none',
        roam: false,
        silent: false,
        left: 10,
        right: 10,
        top: 10,
        bottom: 10,
        edgeSymbol: ['none', 'none'],
        emphasis: { disabled: true },
        data: nodes,
        links: edges,
      },
    ],
  };
  return { option, height: L.height + 20 };
}

function rich(font) {
  const r = {
    n: { color: C.text, fontSize: font + 2, fontWeight: 700, lineHeight: font + 6 },
    ip: { color: '#c8d3ea', fontSize: font - 2, lineHeight: font + 2 },
    fault: { color: '#fecaca', fontSize: font - 1, fontWeight: 700, lineHeight: font + 4 },
    pl: { color: '#0a0f1c', fontSize: font + 1, fontWeight: 800, lineHeight: font + 4 },
    pi: { color: '#0a0f1c', fontSize: font - 2, lineHeight: font + 2 },
  };
  ADDRESS_COLORS.forEach((col, i) => {
    r[`b${i}`] = { color: '#0a0f1c', backgroundColor: col, borderRadius: 4, padding: [1, 5], fontSize: font - 2, fontWeight: 700, lineHeight: font + 4 };
  });
  return r;
}

/**
 * Rows, top to bottom: clients, uplink, edge router + fabric (racked labs), rack routers, rack
 * LANs, nodes, address pills. One column per rack; items wrap inside their column.
 */
export function layout(t, addresses, width) {
  const W = Math.max(480, width - 20);
  const pos = new Map();
  const segments = new Map();
  const racks = t.racks.length ? t.racks : [{ segment: '', nodes: [], routers: [] }];
  const colW = W / racks.length;
  const colX = (i) => colW * i + colW / 2;

  // item sizes from the densest rack
  const perRack = racks.map((r) => r.nodes.length + (t.lb && t.lb.segment === r.segment ? 1 : 0));
  const maxItems = Math.max(1, ...perRack);
  const roomy = colW / Math.min(maxItems, 6) >= 150;
  const box = roomy ? [136, 86] : [96, 66];
  const font = roomy ? 15 : 13;
  const gapX = box[0] + (roomy ? 22 : 12);
  const cols = Math.max(1, Math.min(maxItems, Math.floor((colW - 10) / gapX)));
  const rowsOfNodes = Math.ceil(maxItems / cols);

  const step = 78;
  let y = 44;
  const hasEdge = t.routers.some((r) => !r.nodeSegments.length);
  const clientsY = y;
  y += step;
  const uplinkY = y;
  y += step - 10;
  const edgeY = hasEdge ? y : null;
  if (hasEdge) y += step;
  const fabricY = hasEdge ? y : null;
  if (hasEdge) y += step - 10;
  const rackRouterY = y;
  y += step;
  const lanY = y;
  y += box[1] / 2 + 34;
  const nodesY = y;
  y += rowsOfNodes * (box[1] + 18) - 18 + box[1] / 2 + 70;
  const pillsY = y;

  // rack routers, nodes, the load balancer in its rack
  racks.forEach((r, i) => {
    const x0 = colX(i);
    const rr = t.routers.filter((x) => x.nodeSegments.length && r.routers.includes(x.name));
    rr.forEach((x, j) => pos.set(x.name, { x: x0 + (j - (rr.length - 1) / 2) * 110, y: rackRouterY }));
    const items = [...r.nodes.map((n) => n.name), ...(t.lb && t.lb.segment === r.segment ? [t.lb.name] : [])];
    const n = Math.min(cols, items.length);
    items.forEach((name, k) => {
      const row = Math.floor(k / cols);
      const col = k % cols;
      const inRow = row === Math.floor((items.length - 1) / cols) ? items.length - row * cols : n;
      // the load balancer keeps a little distance from the nodes
      const lbGap = name === t.lb?.name && items.length > 1 ? 16 : 0;
      pos.set(name, { x: x0 + (col - (inRow - 1) / 2) * gapX + lbGap, y: nodesY + row * (box[1] + 18) });
    });
    if (r.segment) {
      const xs = items.map((name) => pos.get(name).x).concat(rr.map((x) => pos.get(x.name).x));
      const lo = Math.min(x0 - colW / 2 + 20, ...xs.map((v) => v - box[0] / 2));
      const hi = Math.max(x0 + colW / 2 - 20, ...xs.map((v) => v + box[0] / 2));
      segments.set(r.segment, { x1: Math.max(lo, x0 - colW / 2 + 8), x2: Math.min(hi, x0 + colW / 2 - 8), y: lanY });
    }
  });

  // edge router(s) over the fabric; the flat lab's single router sits between uplink and LAN
  const edges = t.routers.filter((r) => !r.nodeSegments.length);
  edges.forEach((r, j) => pos.set(r.name, { x: W / 2 + (j - (edges.length - 1) / 2) * 140, y: edgeY ?? rackRouterY }));
  const fabric = t.segments.filter((s) => s.kind === 'fabric');
  for (const f of fabric) {
    const xs = t.routers.filter((r) => r.segments.includes(f.name)).map((r) => pos.get(r.name)?.x ?? W / 2);
    segments.set(f.name, { x1: Math.min(...xs) - 80, x2: Math.max(...xs) + 80, y: fabricY ?? rackRouterY - step / 2 });
  }

  // clients over the uplink, centred on the router(s) that serve it
  const uplinks = t.segments.filter((s) => s.kind === 'uplink');
  for (const u of uplinks) {
    const rs = t.routers.filter((r) => r.segments.includes(u.name)).map((r) => pos.get(r.name)?.x ?? W / 2);
    const cx = rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : W / 2;
    const cl = t.clients.filter((c) => c.segments.includes(u.name));
    cl.forEach((c, k) => pos.set(c.name, { x: cx + (k - (cl.length - 1) / 2) * gapX, y: clientsY }));
    const xs = [...rs, ...cl.map((c) => pos.get(c.name).x)];
    segments.set(u.name, { x1: Math.min(...xs) - box[0] / 2 - 30, x2: Math.max(...xs) + box[0] / 2 + 30, y: uplinkY });
  }

  // address pills in a row at the bottom
  const pill = [Math.min(190, Math.max(150, W / (addresses.length + 1) - 30)), 48];
  addresses.forEach((a, i) => pos.set(`addr:${a.key}`, { x: W / 2 + (i - (addresses.length - 1) / 2) * (pill[0] + 40), y: pillsY }));

  return { pos, segments, box, badgeChars: Math.floor((box[0] - 12) / (font * 0.62)), routerSize: roomy ? 64 : 54, pill, font, width: W, height: pillsY + pill[1] / 2 + 6 };
}
