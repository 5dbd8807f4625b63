// The live page: one EventSource on /events; the first message is a snapshot of the state so
// far, every later one a batch of RunEvents folded in with the same reducer the server uses
// (state.js = src/live/state.ts, transpiled by the server). Rendering is throttled: events may
// come in bursts, the screen is redrawn at most every RENDER_MS.
import { initialState, reduce } from './state.js';
import { topologyOption, addressColors } from './topology.js';
import { stripOption, clock, MARKER } from './strips.js';

const RENDER_MS = 150;
const FEED_SHOWN = 14;

let state = initialState();
let progressSeen = null;
let progressAt = 0;
let renderQueued = false;
let lastRender = 0;
const sig = { topo: '', strips: new Map(), results: '', feed: '', header: '', now: '', addresses: '' };
let topoChart = null;
const stripCharts = new Map();

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function fmtMs(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/** an outage that had not ended when observation stopped is a lower bound, never a figure */
function fmtOutage(ms, recovered) {
  return recovered === false ? `&gt; ${fmtMs(ms)} (not recovered)` : fmtMs(ms);
}

/** the verdict cell: in band or not, a baseline clean or not, and the report's flags beside it */
function verdictCell(r) {
  const verdict = r.baseline
    ? r.baseline.clean
      ? `<span class="yes">clean</span> <span class="muted">(${r.baseline.failedPct} % failed)</span>`
      : `<span class="no">NOT CLEAN: ${r.baseline.failedPct} % failed</span> <span class="muted">(over 1 %: host or lab, not the mechanism)</span>`
    : r.withinBand === true
      ? '<span class="yes">✔ yes</span>'
      : r.withinBand === false
        ? '<span class="no">✘ no</span>'
        : '<span class="muted">–</span>';
  const flags = (r.flags ?? []).map((f) => `<div class="flag muted">${esc(f)}</div>`).join('');
  return `${verdict}${flags}`;
}

function fmtLeft(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}

function targetLabel(target, service) {
  return target === 'api' ? 'API endpoint' : `Service ${service ?? ''}`;
}

// ---------------------------------------------------------------------------------------------
// connection

function connect() {
  const es = new EventSource('/events');
  const conn = $('conn');
  es.addEventListener('open', () => {
    conn.textContent = 'live';
    conn.classList.add('live');
  });
  es.addEventListener('error', () => {
    // EventSource reconnects by itself; the server sends a fresh snapshot then
    conn.textContent = state.status === 'running' || state.status === 'waiting' ? 'reconnecting…' : 'run ended';
    conn.classList.remove('live');
  });
  es.addEventListener('snapshot', (m) => {
    state = JSON.parse(m.data);
    queueRender();
  });
  es.addEventListener('message', (m) => {
    for (const e of JSON.parse(m.data)) state = reduce(state, e);
    queueRender();
  });
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, RENDER_MS - (performance.now() - lastRender));
  setTimeout(() => {
    renderQueued = false;
    lastRender = performance.now();
    render();
  }, wait);
}

// ---------------------------------------------------------------------------------------------
// rendering

function render() {
  if (state.progress !== progressSeen) {
    progressSeen = state.progress;
    progressAt = Date.now();
  }
  renderHeader();
  renderStrategies();
  renderTopology();
  renderNow();
  renderAddresses();
  renderStrips();
  renderResults();
  renderFeed();
}

function renderHeader() {
  const key = JSON.stringify([state.lab, state.provider, state.emulated, state.status, state.error, state.topology?.name]);
  if (key !== sig.header) {
    sig.header = key;
    $('lab').textContent = state.lab ? `lab ${state.lab}` : 'waiting for a run…';
    document.title = state.lab ? `${state.lab} · live · talos-ha-lab` : 'talos-ha-lab · live';
    const prov = $('provider');
    prov.hidden = !state.provider;
    prov.textContent = state.provider ? `provider ${state.provider}` : '';
    $('emulated').hidden = !state.emulated;
    const st = $('status');
    st.className = `status ${state.status}`;
    st.textContent = state.status === 'ok' ? 'done' : state.status;
    st.title = state.error ?? '';
    $('topo-name').textContent = state.topology ? `${state.topology.name} · ${state.topology.racks.reduce((n, r) => n + r.nodes.length, 0)} nodes` : '';
  }
  renderProgress();
}

function renderProgress() {
  const p = state.progress;
  const fill = $('progress-fill');
  const text = $('progress-text');
  if (!p) {
    fill.style.width = '0';
    text.textContent = '–';
    return;
  }
  fill.style.width = `${p.total ? Math.round((p.done / p.total) * 100) : 0}%`;
  const running = state.status === 'running';
  const left = running ? Math.max(0, p.leftMs - (Date.now() - progressAt)) : 0;
  text.textContent = `${p.done} / ${p.total} runs · ${running ? `≈ ${fmtLeft(left)} left` : state.status === 'ok' ? 'finished' : state.status}`;
  text.dataset.leftMs = String(Math.round(left));
}

function renderStrategies() {
  const nav = $('strategies');
  const key = JSON.stringify([state.strategies, state.strategy]);
  if (key === nav.dataset.sig) return;
  nav.dataset.sig = key;
  nav.innerHTML = state.strategies
    .map((s) => {
      const cls = ['chip', s.id === state.strategy && s.phase !== 'unapply' ? 'current' : '', s.phase === 'unapply' ? 'done' : '', s.phase === 'unsupported' ? 'unsupported' : ''].join(' ');
      const title = s.reason ? ` title="${esc(s.reason)}"` : '';
      return `<span class="${cls}"${title}>${s.recommended ? '<span class="star">★</span>' : ''}${esc(s.id)}</span>`;
    })
    .join('');
}

function renderTopology() {
  const el = $('topology');
  if (!window.echarts || !state.topology) return;
  const width = el.clientWidth;
  const c = state.current;
  const key = JSON.stringify([state.topology.name, state.addresses, state.bgp, c && [c.victim, c.phase, c.drill], width]);
  if (key === sig.topo) return;
  sig.topo = key;
  const { option, height } = topologyOption(state, width);
  if (Math.abs(el.clientHeight - height) > 1) el.style.height = `${height}px`;
  if (!topoChart) topoChart = window.echarts.init(el, null, { renderer: 'canvas' });
  else topoChart.resize();
  topoChart.setOption(option, true);
  const holders = Object.fromEntries(state.addresses.map((a) => [a.key, a.holders.join(',')]));
  el.dataset.holders = JSON.stringify(holders);
}

function renderNow() {
  const c = state.current;
  const key = JSON.stringify([c, state.lastT, state.status]);
  if (key === sig.now) return;
  sig.now = key;
  const body = $('now-body');
  if (!c) {
    body.innerHTML = `<p class="muted">${state.status === 'waiting' ? 'Waiting for the run to start.' : state.strategy ? `Applying ${esc(state.strategy)}…` : 'No drill yet.'}</p>`;
    return;
  }
  const strategy = state.strategies.find((s) => s.id === c.strategy);
  const band = c.band ? `${fmtMs(c.band.min)} – ${fmtMs(c.band.max)}` : 'none (baseline)';
  const rel = (t) => (t === null || c.injectAt === null ? '' : ` +${((t - c.injectAt) / 1000).toFixed(2)} s`);
  const step = (kind, t, label) => `<span class="step ${kind}${t !== null ? ' seen' : ''}">${label}${kind === 'inject' ? '' : rel(t)}</span>`;
  // the outage so far, as the probes show it: first failure after the injection → converge
  let outage = '';
  if (c.outageMs !== undefined && c.injectAt === null) {
    outage = '<span class="muted">no fault injected: the reference run</span>';
  } else if (c.outageMs !== undefined) {
    const verdict = c.withinBand === true ? '<b class="good">within the band</b>' : c.withinBand === false ? '<b class="bad">outside the band</b>' : '';
    outage = `outage <b class="${c.outageMs ? 'bad' : 'good'}">${fmtOutage(c.outageMs, c.recovered)}</b> ${verdict}`;
  } else if (c.injectAt !== null) {
    if (c.firstFailAt !== null) {
      const end = c.convergeAt ?? state.lastT;
      outage = `outage ${c.convergeAt ? '' : 'so far '}<b class="bad">${fmtMs(Math.max(0, end - c.firstFailAt))}</b>${c.convergeAt ? '' : ' <span class="muted">(first failed probe → now)</span>'}`;
    } else outage = '<span class="muted">no failed probe yet</span>';
  }
  body.innerHTML = `
    <div class="drill">${esc(c.drill)}${c.victim ? ` <span class="victim">on ${esc(c.victim)}</span>` : ''}</div>
    <div class="target">${esc(targetLabel(c.target, c.service))} · <span class="muted">${esc(c.address)}</span></div>
    <dl>
      <dt>strategy</dt><dd>${esc(c.strategy)}${strategy && strategy.label !== c.strategy ? ` <span class="muted">— ${esc(strategy.label)}</span>` : ''}</dd>
      <dt>repeat</dt><dd>${c.repeat + 1}</dd>
      <dt>band</dt><dd title="${esc(c.band?.basis ?? '')}">${esc(band)}</dd>
      <dt>phase</dt><dd><span class="phase ${c.phase}">${c.phase === 'pre' ? 'traffic on, before the fault' : c.phase}</span></dd>
    </dl>
    <div class="steps">
      ${step('inject', c.injectAt, 'inject')}${step('detect', c.detectAt, 'detect')}${step('announce', c.announceAt, 'announce')}${step('converge', c.convergeAt, 'converge')}${step('restore', c.restoreAt, 'restore')}
    </div>
    <div class="outage-now">${outage}</div>`;
}

function renderAddresses() {
  const key = JSON.stringify([state.addresses, state.bgp, state.strategies, state.status]);
  if (key === sig.addresses) return;
  sig.addresses = key;
  const colors = addressColors(state);
  const mode = { l2: 'ARP', bgp: 'BGP', lb: 'load balancer' };
  // nobody holding an address is alarming only while a strategy is up
  const phase = state.strategies.find((s) => s.id === state.strategy)?.phase;
  const applied = state.status === 'running' && (phase === 'apply' || phase === 'ready');
  $('addresses').innerHTML = state.addresses
    .map((a) => {
      const holders = a.holders.length ? `<span class="holders">${esc(a.holders.join(', '))}</span>` : applied ? '<span class="none">nobody</span>' : '<span class="muted">nobody</span>';
      const nh = a.nexthops
        .filter((n) => n.via.length || a.mode === 'bgp')
        .map((n) => `${esc(n.router)} → ${n.via.length ? esc(n.via.join(' · ')) : 'no route'}${n.via.length > 1 ? ` (ECMP ×${n.via.length})` : ''}`)
        .join('; ');
      return `<li data-key="${esc(a.key)}" data-holders="${esc(a.holders.join(','))}">
        <span class="swatch" style="background:${colors.get(a.key)}"></span>
        <span>${esc(a.label)} <span class="ip">${esc(a.ip)}</span></span>
        <span>→ ${holders}${a.mode ? `<span class="mode">${mode[a.mode]}</span>` : ''}</span>
        ${nh ? `<span class="nexthops">next hops: ${nh}</span>` : ''}
      </li>`;
    })
    .join('');
  const sessions = Object.entries(state.bgp).map(([router, peers]) => {
    if (!peers.length) return `${esc(router)}: no BGP sessions`;
    const isUp = (p) => /^established$/i.test(p.state);
    const up = peers.filter(isUp).length;
    // a big fabric lists only the sessions that are down
    const shown = peers.length > 6 ? peers.filter((p) => !isUp(p)) : peers;
    const list = shown.map((p) => `<span class="${isUp(p) ? 'up' : 'down'}" title="${esc(p.state)}">${esc(p.host ?? p.peer)}</span>`).join(' ');
    const lead = peers.length > 6 ? (shown.length ? ' — down:' : '') : ':';
    return `${esc(router)} BGP <span class="${up === peers.length ? 'up' : 'down'}">${up}/${peers.length} up</span>${lead} ${list}`;
  });
  $('bgp').innerHTML = sessions.join('<br>');
}

function renderStrips() {
  if (!window.echarts) return;
  const host = $('strips');
  const colors = addressColors(state);
  const active = state.current && state.current.phase !== 'done' && state.status === 'running' ? state.current.key : null;
  for (const s of state.strips) {
    let card = host.querySelector(`[data-key="${CSS.escape(s.key)}"]`);
    if (!card) {
      card = document.createElement('section');
      card.className = 'strip';
      card.dataset.key = s.key;
      const legend = Object.entries(MARKER)
        .map(([kind, m]) => `<span><i style="background:${m.color}"></i>${kind}</span>`)
        .join('');
      card.innerHTML = `<h2><span class="swatch"></span><span class="name"></span><span class="state"></span></h2><div class="legend">${legend}</div><div class="strip-chart"></div>`;
      host.appendChild(card);
      stripCharts.set(s.key, window.echarts.init(card.querySelector('.strip-chart'), null, { renderer: 'canvas' }));
    }
    const address = state.addresses.find((a) => a.key === s.key);
    card.querySelector('.swatch').style.background = colors.get(s.key) ?? '#888';
    card.querySelector('.name').textContent = `${s.label}${address ? ` · ${address.ip}` : ''}`;
    const last = s.buckets.length ? s.buckets[s.buckets.length - 1].t + 100 : null;
    const end = s.key === active ? Math.max(last ?? 0, state.lastT ?? 0) : (last ?? state.lastT ?? Date.now());
    card.classList.toggle('active', s.key === active);
    card.classList.toggle('idle', s.key !== active);
    card.querySelector('.state').textContent = s.key === active ? 'probing now' : s.buckets.length ? `last probed ${clock(last)}` : 'not probed yet';
    const k = `${s.buckets.length}|${last}|${s.buckets.length ? JSON.stringify(s.buckets[s.buckets.length - 1]) : ''}|${JSON.stringify(s.markers)}|${end}`;
    if (sig.strips.get(s.key) === k) continue;
    sig.strips.set(s.key, k);
    stripCharts.get(s.key).setOption(stripOption(s, end), true);
    card.dataset.points = String(s.buckets.length);
    card.dataset.failing = String(s.buckets.filter((b) => b.fail > 0).length);
    card.dataset.minSuccess = String(s.buckets.reduce((m, b) => Math.min(m, b.ok + b.fail ? (b.ok / (b.ok + b.fail)) * 100 : 100), 100));
    card.dataset.markers = s.markers.map((m) => m.kind).join(',');
  }
}

function renderResults() {
  const key = `${state.results.length}|${state.results.at(-1)?.t}|${state.report?.html}`;
  if (key === sig.results) return;
  const previous = sig.results ? Number(sig.results.split('|')[0]) : 0;
  sig.results = key;
  const rows = state.results.slice().reverse();
  $('results-empty').hidden = rows.length > 0;
  $('results').querySelector('tbody').innerHTML = rows
    .map((r, i) => {
      const isNew = i < rows.length - previous && previous > 0 ? ' new' : '';
      if (!r.supported) {
        return `<tr class="unsupported${isNew}"><td>${esc(r.strategy)}</td><td>${esc(targetLabel(r.target, r.service))}</td><td>${esc(r.drill)}</td><td colspan="6">unsupported: ${esc(r.reason ?? '')}</td></tr>`;
      }
      const band = r.band ? `${fmtMs(r.band.min)} – ${fmtMs(r.band.max)}` : '–';
      return `<tr class="${isNew}"><td>${esc(r.strategy)}</td><td>${esc(r.target === 'api' ? 'API' : r.service ?? 'Service')}</td><td>${esc(r.drill)}</td><td>${esc(r.victim ?? '–')}</td><td class="num outage${r.withinBand === false || r.recovered === false ? ' out' : ''}">${fmtOutage(r.outageMs, r.recovered)}</td><td class="num">${band}</td><td>${verdictCell(r)}</td><td class="num">${r.errors}</td><td class="num">${r.resets}</td></tr>`;
    })
    .join('');
  const link = $('report-link');
  link.hidden = !state.report?.html;
}

function renderFeed() {
  const items = state.feed.slice(-FEED_SHOWN).reverse();
  const key = items.length ? `${items[0].t}|${items[0].text}|${state.feed.length}` : '';
  if (key === sig.feed) return;
  sig.feed = key;
  const inject = state.current?.injectAt ?? null;
  $('feed').innerHTML = items
    .map((f) => {
      const rel = inject !== null && f.t >= inject - 60_000 ? `${f.t >= inject ? '+' : '−'}${(Math.abs(f.t - inject) / 1000).toFixed(3)}` : clock(f.t);
      return `<li class="${f.kind}"><time title="${esc(new Date(f.t).toISOString())}">${rel}</time><span>${esc(f.text)}</span></li>`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------

window.addEventListener('resize', () => {
  topoChart?.resize();
  for (const c of stripCharts.values()) c.resize();
  sig.topo = '';
  sig.strips.clear();
  queueRender();
});
// the time left counts down between progress events
setInterval(renderProgress, 1000);
connect();
queueRender();
