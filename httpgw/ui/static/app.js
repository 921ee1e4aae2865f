// ClusterKit dashboard: reads the node's own HTTP API (same origin) and its
// event stream, and shows members, the partition map, rebalances and events
// live. No framework and no build step: the node embeds this file as is.
//
// Update model: the event stream is read with fetch (EventSource cannot send
// the Authorization header) and every event is shown at once; each event
// also marks the state dirty, and one coalesced refresh (at most one in
// flight, at most one every 500 ms) re-reads the state routes with
// If-None-Match, so a burst of events costs a handful of requests.
'use strict';

const TOKEN_KEY = 'clusterkit.token';
const ROW_H = 22; // px: --row-h in app.css
const CELL_W = 26; // px: --cell-w
const LABEL_W = 64; // px: --label-w
const ROW_BUFFER = 10; // rows rendered above and below the viewport
const PAGE_LIMIT = 1000; // the gateway's maximum page size (httpgw/params.go)
const MAX_EVENTS = 200;
const MAX_REBALANCE_EVENTS = 20;
const MAX_MOVES_SHOWN = 500;
const REFRESH_GAP_MS = 500;
const SAFETY_REFRESH_MS = 15000;
const STALL_MS = 45000; // three missed keep-alives (the node sends one every 15 s)
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const REBALANCE_KINDS = new Set(['rebalance_start', 'rebalance_complete']);

const $ = (id) => document.getElementById(id);

// Everything the page shows, as last read from the node.
const state = {
  cluster: null, // body of GET /cluster
  detailed: null, // body of GET /health/detailed
  ready: null, // body of GET /ready
  nodes: [], // members sorted by ID
  parts: [], // [{n, id, owners: [{id, state}]}] by partition number
  version: null, // state version the tables were read at
  leader: '',
  error: '', // why the last refresh failed ('' = it worked)
  clusterId: '',
  filterNode: '',
  located: null, // {key, number} while a key lookup filters the map
};

// ---------------------------------------------------------------- token

let memoryToken = ''; // fallback when sessionStorage is unavailable

function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return memoryToken;
  }
}

function setToken(token) {
  memoryToken = token;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage blocked: the token lives in memory for this page only.
  }
  renderAuth();
}

function renderAuth() {
  $('auth-state').textContent = getToken() ? 'token set' : 'no token';
}

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// authHeaders adds the token to every request when one is set.
function authHeaders(extra) {
  const h = new Headers(extra || {});
  const token = getToken();
  if (token) h.set('Authorization', 'Bearer ' + token);
  return h;
}

// readError turns a failed answer into an ApiError with the node's message.
async function readError(res) {
  let code = 'http_' + res.status;
  let msg = res.statusText || 'HTTP ' + res.status;
  try {
    const body = await res.json();
    if (body && body.error) {
      msg = body.error;
      code = body.code || code;
    }
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  return new ApiError(res.status, code, msg);
}

// Bodies by path with their ETag, to send If-None-Match and reuse the body
// on 304 (the ETag is the state version: unchanged state, nothing to parse).
const etagCache = new Map();

async function getJSON(path, acceptStatus = []) {
  const headers = authHeaders({ Accept: 'application/json' });
  const cached = etagCache.get(path);
  if (cached) headers.set('If-None-Match', cached.etag);
  // no-store: let a 304 reach us instead of the browser cache answering.
  const res = await fetch(path, { headers, cache: 'no-store' });
  if (res.status === 304 && cached) return { body: cached.body, changed: false };
  if (!res.ok && !acceptStatus.includes(res.status)) throw await readError(res);
  const body = await res.json();
  const etag = res.headers.get('ETag');
  if (etag && res.ok) etagCache.set(path, { etag, body });
  return { body, changed: true };
}

async function postJSON(path, body) {
  const headers = authHeaders({ Accept: 'application/json' });
  const init = { method: 'POST', headers, cache: 'no-store' };
  if (body !== undefined) {
    headers.set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await readError(res);
  return res.json();
}

// ---------------------------------------------------------------- status line

function showStatus(text, kind) {
  const box = $('action-status');
  box.textContent = text;
  box.dataset.state = kind;
}

function showError(what, err) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    showStatus(`${what}: not allowed (${err.status} ${err.code}: ${err.message}). ` +
      'This cluster needs its token: enter it under "Cluster token" and try again.', 'auth');
  } else if (err instanceof ApiError) {
    showStatus(`${what} failed (${err.status} ${err.code}): ${err.message}`, 'error');
  } else {
    showStatus(`${what} failed: ${err.message || err}`, 'error');
  }
}

// ---------------------------------------------------------------- refresh

// One refresh at a time, at most one per REFRESH_GAP_MS: events arriving
// meanwhile only set dirty, and the refresh runs once more after.
const refresher = { running: false, dirty: false, timer: null, lastStart: 0 };

function scheduleRefresh() {
  refresher.dirty = true;
  if (refresher.running || refresher.timer) return;
  const wait = Math.max(0, refresher.lastStart + REFRESH_GAP_MS - Date.now());
  refresher.timer = setTimeout(runRefresh, wait);
}

async function runRefresh() {
  refresher.timer = null;
  refresher.running = true;
  refresher.dirty = false;
  refresher.lastStart = Date.now();
  try {
    await refreshAll();
  } finally {
    refresher.running = false;
    if (refresher.dirty) scheduleRefresh();
  }
}

// fetchAll reads every page of a paginated route (limit is at most 1000).
async function fetchAll(base, field) {
  const items = [];
  const versions = new Set();
  let changed = false;
  for (let offset = 0; ;) {
    const r = await getJSON(`${base}?limit=${PAGE_LIMIT}&offset=${offset}`);
    const page = r.body[field] || [];
    items.push(...page);
    versions.add(r.body.version);
    changed = changed || r.changed;
    offset += page.length;
    if (page.length === 0 || offset >= r.body.total) break;
  }
  // Pages read at different versions are no snapshot: the caller reads
  // again (version null never matches /cluster's).
  return { items, changed, version: versions.size === 1 ? [...versions][0] : null };
}

function partitionNumber(id) {
  const n = Number(String(id).replace(/^partition-/, ''));
  return Number.isInteger(n) ? n : -1;
}

function toPart(p) {
  let owners = p.owners;
  if (!owners) { // older nodes: owners from primary and replicas
    owners = [p.primary_node, ...(p.replica_nodes || [])].filter(Boolean).map((id) => ({ id, state: 'ready' }));
  }
  return { n: partitionNumber(p.id), id: p.id, owners };
}

async function refreshTables() {
  const nodes = await fetchAll('/nodes', 'nodes');
  let parts;
  try {
    parts = await fetchAll('/partitions', 'partitions');
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'not_ready') throw err;
    parts = { items: [], changed: true, version: nodes.version }; // no table yet: an empty map
  }
  if (nodes.changed) state.nodes = [...nodes.items].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  if (parts.changed) state.parts = parts.items.map(toPart).sort((a, b) => a.n - b.n);
  state.version = nodes.version === parts.version ? nodes.version : null;
  if (state.version === null) refresher.dirty = true; // torn read: again soon
  return nodes.changed || parts.changed;
}

async function refreshAll() {
  let tablesChanged = false;
  const oldLeader = state.leader;
  try {
    const [cl, det, rdy] = await Promise.all([
      getJSON('/cluster'), getJSON('/health/detailed'), getJSON('/ready', [503]),
    ]);
    state.cluster = cl.body;
    state.detailed = det.body;
    state.ready = rdy.body;
    // /nodes and /partitions share /cluster's ETag (the state version):
    // when /cluster is unchanged they are too.
    if (cl.changed || state.version !== cl.body.cluster?.version) {
      tablesChanged = await refreshTables();
    }
    // The leader is not part of the state version: read it from the
    // detailed health, which is never cached.
    state.leader = det.body.leader || cl.body.leader || '';
    state.error = '';
    noteClusterId(cl.body.cluster?.cluster_id || '');
  } catch (err) {
    state.error = err instanceof ApiError ? `${err.status} ${err.code}: ${err.message}` : String(err.message || err);
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) showError('Reading the cluster', err);
  }
  renderHeader();
  if (tablesChanged || oldLeader !== state.leader) {
    renderMembers();
    renderNodeFilter();
    renderMoves();
  }
  if (tablesChanged) updateGrid();
  renderLocateResult();
}

// A node answering for another cluster (restarted on a fresh data dir):
// its seqs start over, so the event history and cursor must too.
function noteClusterId(id) {
  if (!id) return;
  if (state.clusterId && id !== state.clusterId) restartStreamFromScratch();
  state.clusterId = id;
}

// ---------------------------------------------------------------- header

const HEALTH = new Set(['healthy', 'degraded', 'critical', 'unknown']);

function healthStatus() {
  if (state.error) return 'unknown';
  const s = state.detailed?.cluster_status || state.cluster?.cluster?.health || 'unknown';
  return HEALTH.has(s) ? s : 'unknown';
}

function healthReasons() {
  // What we read before the node stopped answering is stale: say only that.
  if (state.error) return [`cannot read the node: ${state.error}`];
  const out = [];
  const d = state.detailed;
  if (d) {
    for (const id of d.unhealthy_node_ids || []) out.push(`unhealthy member: ${id} (suspect)`);
    if (d.under_replicated_partitions > 0) out.push(`${d.under_replicated_partitions} under-replicated partitions`);
    if (d.unowned_partitions > 0) out.push(`${d.unowned_partitions} partitions without a live owner`);
    const ft = d.failure_tolerance;
    if (ft) {
      const plural = (n, w) => `${n} more ${w} failure${n === 1 ? '' : 's'}`;
      out.push(`survives ${plural(ft.voters, 'voter')} (quorum) and ${plural(ft.nodes, 'node')} (every partition owned)`);
    }
  }
  for (const r of state.ready?.reasons || []) out.push(`not ready: ${r}`);
  for (const p of d?.problems || []) {
    if (!(state.ready?.reasons || []).includes(p)) out.push(p);
  }
  return out;
}

function renderHeader() {
  const c = state.cluster?.cluster;
  $('cluster-name').textContent = c?.name || '(not configured)';
  const self = state.cluster?.node_id || state.detailed?.node_id || '?';
  const name = state.detailed?.node_name;
  $('node-id').textContent = name && name !== self ? `${self} (${name})` : self;
  $('leader').textContent = state.leader || 'none';
  const health = healthStatus();
  const h = $('cluster-health');
  h.textContent = health;
  h.dataset.health = health;
  const list = $('health-reasons');
  list.replaceChildren(...healthReasons().map((r) => el('li', {}, r)));
  $('rebalance-paused').hidden = !c?.rebalance_paused;
}

// ---------------------------------------------------------------- DOM helper

// el builds an element; text goes in with textContent only, so nothing read
// from the cluster is ever parsed as HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-') || k === 'title' || k === 'role' || k === 'type' || k.startsWith('aria-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : String(c));
  return e;
}

// ---------------------------------------------------------------- members

function roleOf(node) {
  if (node.id === state.leader) return 'leader';
  return node.voter ? 'voter' : 'non-voter';
}

// loads counts primaries and partitions held per node.
function loads() {
  const m = new Map();
  for (const p of state.parts) {
    p.owners.forEach((o, i) => {
      const l = m.get(o.id) || { primary: 0, total: 0 };
      if (i === 0) l.primary++;
      l.total++;
      m.set(o.id, l);
    });
  }
  return m;
}

function renderMembers() {
  const load = loads();
  const rows = state.nodes.map((n) => {
    const health = n.status === 'active' ? 'alive' : 'suspect';
    const role = roleOf(n);
    const services = Object.entries(n.services || {}).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}=${v}`).join(', ');
    const l = load.get(n.id) || { primary: 0, total: 0 };
    const cell = (field, text, value) => el('td', { 'data-field': field, 'data-value': value }, text);
    const button = (action, label, title) => el('button', { type: 'button', 'data-action': action, title }, label);
    return el('tr', { 'data-node-id': n.id, class: health === 'suspect' ? 'suspect' : '' },
      cell('id', n.id), cell('name', n.name || ''), cell('address', n.ip || ''),
      cell('role', role, role), cell('health', health, health), cell('zone', n.zone || ''),
      cell('weight', String(n.weight ?? '')), cell('drained', n.drained ? 'drained' : ''),
      cell('services', services), cell('partitions', `${l.primary}/${l.total}`),
      el('td', { class: 'actions' },
        button('drain', 'Drain', `Hand everything ${n.id} holds over to other members`),
        button('undrain', 'Undrain', `Give ${n.id} its share of partitions again`),
        button('transfer-leader', 'Make leader', `Hand Raft leadership to ${n.id}`)));
  });
  $('members').tBodies[0].replaceChildren(...rows);
}

// ---------------------------------------------------------------- actions

const ACTIONS = {
  drain: (id) => ({ path: `/nodes/${encodeURIComponent(id)}/drain`, label: `Drain ${id}` }),
  undrain: (id) => ({ path: `/nodes/${encodeURIComponent(id)}/undrain`, label: `Undrain ${id}` }),
  'transfer-leader': (id) => ({ path: '/leadership/transfer', body: { target_id: id }, label: `Transfer leadership to ${id}` }),
  'pause-rebalance': () => ({ path: '/rebalance/pause', label: 'Pause rebalancing' }),
  'resume-rebalance': () => ({ path: '/rebalance/resume', label: 'Resume rebalancing' }),
};

async function runAction(name, id) {
  const a = ACTIONS[name](id);
  showStatus(`${a.label}…`, 'pending');
  try {
    const r = await postJSON(a.path, a.body);
    const said = r.message || (r.leader ? `the leader is now ${r.leader}` : 'done');
    showStatus(`${a.label}: ${said}`, 'ok');
  } catch (err) {
    showError(a.label, err);
  } finally {
    scheduleRefresh();
  }
}

// planRebalance shows what the next rebalance would do (POST
// /rebalance?dry_run=true: commits nothing, but needs the token).
async function planRebalance() {
  const box = $('rebalance-plan-result');
  showStatus('Planning a rebalance (dry run)…', 'pending');
  try {
    const plan = await postJSON('/rebalance?dry_run=true');
    const parts = plan.partitions || [];
    const items = parts.slice(0, 200).map((p) =>
      el('li', { 'data-partition': partitionNumber(p.partition_id) },
        `${p.partition_id}: ${(p.current || []).join(', ') || '(none)'} → ${(p.target || []).join(', ') || '(none)'}`));
    box.replaceChildren(
      el('strong', {}, parts.length ? `${parts.length} partitions would change` : 'Nothing to move'),
      ` — ${plan.moves} copies, ${plan.primary_changes} primary changes, ${plan.pending} still pending`,
      el('ul', {}, ...items));
    box.hidden = false;
    showStatus('Dry run done: nothing was changed.', 'ok');
  } catch (err) {
    showError('Plan a rebalance', err);
  }
}

// ---------------------------------------------------------------- partition map

// The map renders only the rows in view (plus a buffer) at fixed height
// inside a body as tall as every row, so 1,024 x 50 stays cheap.
const grid = { view: [], first: -1, last: -1, columns: '', frame: 0, headH: 0, filterKey: '' };

function computeView() {
  if (state.located) return state.parts.filter((p) => p.n === state.located.number);
  if (state.filterNode) return state.parts.filter((p) => p.owners.some((o) => o.id === state.filterNode));
  return state.parts;
}

function renderGridHeader(box) {
  const key = state.nodes.map((n) => n.id + (n.status === 'active' ? '' : '!')).join(',');
  if (key === grid.columns) return;
  grid.columns = key;
  const width = `${LABEL_W + state.nodes.length * CELL_W}px`;
  const head = box.querySelector('.phead');
  head.style.width = width;
  box.querySelector('.pbody').style.width = width;
  grid.headH = 0; // measured again on the next render
  head.replaceChildren(el('div', { class: 'pcell plabel', role: 'columnheader' }, '#'),
    ...state.nodes.map((n) => el('div', {
      class: n.status === 'active' ? 'pcell' : 'pcell suspect', role: 'columnheader',
      'data-node-id': n.id, title: `${n.id}${n.name ? ' (' + n.name + ')' : ''}`,
    }, n.id)));
}

// updateGrid recomputes the filtered view and re-renders the visible rows.
function updateGrid() {
  const box = $('partitions');
  renderGridHeader(box);
  grid.view = computeView();
  box.querySelector('.pbody').style.height = `${grid.view.length * ROW_H}px`;
  const total = state.parts.length;
  $('partitions-count').textContent = `${grid.view.length} of ${total} partitions`;
  renderRows(true);
}

function renderRows(force) {
  const box = $('partitions');
  if (!grid.headH) grid.headH = box.querySelector('.phead').offsetHeight;
  const top = Math.max(0, box.scrollTop - grid.headH);
  const first = Math.max(0, Math.floor(top / ROW_H) - ROW_BUFFER);
  const last = Math.min(grid.view.length, Math.ceil((top + box.clientHeight) / ROW_H) + ROW_BUFFER);
  if (!force && first === grid.first && last === grid.last) return;
  const win = box.querySelector('.pwindow');
  const cols = state.nodes.map((n) => [n.id, `<div class="pcell" role="cell" data-node-id="${esc(n.id)}"`]);
  // One HTML string is several times faster than building the cells with
  // createElement; every value in it is escaped. The rows flow inside a
  // window moved to the first row's offset (no per-row inline style, which
  // the CSP would block in markup).
  const rows = (from, to) => {
    let html = '';
    for (let i = from; i < to; i++) html += partitionRow(grid.view[i], cols);
    return html;
  };
  if (force || first >= grid.last || last <= grid.first) {
    win.innerHTML = rows(first, last);
  } else {
    // A scroll: keep the rows still in range, add and drop only the rest.
    for (let i = grid.first; i < first; i++) win.firstElementChild.remove();
    for (let i = last; i < grid.last; i++) win.lastElementChild.remove();
    if (first < grid.first) win.insertAdjacentHTML('afterbegin', rows(first, grid.first));
    if (last > grid.last) win.insertAdjacentHTML('beforeend', rows(grid.last, last));
  }
  win.style.top = `${first * ROW_H}px`;
  grid.first = first;
  grid.last = last;
}

// esc makes a value safe inside HTML text and quoted attributes.
function esc(v) {
  return String(v).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function partitionRow(p, cols) {
  const owners = new Map(p.owners.map((o, i) => [o.id, { role: i === 0 ? 'primary' : 'replica', state: o.state }]));
  let html = `<div class="prow" role="row" data-partition="${p.n}"><div class="pcell plabel" role="rowheader" title="${esc(p.id)}">${p.n}</div>`;
  for (const [id, open] of cols) {
    const o = owners.get(id);
    if (!o) {
      html += open + '></div>';
      continue;
    }
    const syncing = o.state === 'syncing';
    const letter = o.role === 'primary' ? 'P' : 'R';
    html += `${open} data-owner="${o.role}"${syncing ? ' data-state="syncing"' : ''} title="${esc(p.id)} on ${esc(id)}: ${o.role}${syncing ? ' (syncing)' : ''}">${syncing ? letter + '…' : letter}</div>`;
  }
  return html + '</div>';
}

function onGridScroll() {
  if (grid.frame) return; // one render per frame
  grid.frame = requestAnimationFrame(() => {
    grid.frame = 0;
    renderRows(false);
  });
}

function renderNodeFilter() {
  const select = $('node-filter');
  const keep = state.filterNode;
  // Rebuilding would close the list under the user's pointer: only on change.
  const key = state.nodes.map((n) => n.id).join(',') + '|' + keep;
  if (key === grid.filterKey) return;
  grid.filterKey = key;
  const options = [el('option', { value: '' }, 'All nodes'), ...state.nodes.map((n) => el('option', { value: n.id }, n.id))];
  // Keep a filter on a node that just left: the map shows it holds nothing.
  if (keep && !state.nodes.some((n) => n.id === keep)) options.push(el('option', { value: keep }, `${keep} (gone)`));
  select.replaceChildren(...options);
  select.value = keep;
}

// ---------------------------------------------------------------- key lookup

async function locateKey(key) {
  if (!key) return;
  showStatus(`Locating ${JSON.stringify(key)}…`, 'pending');
  try {
    const r = await getJSON('/locate?key=' + encodeURIComponent(key));
    state.located = { key, number: r.body.number, answer: r.body };
    $('locate-clear').hidden = false;
    showStatus('', 'ok');
    updateGrid();
    $('partitions').scrollTop = 0;
  } catch (err) {
    showError(`Locate ${JSON.stringify(key)}`, err);
  }
  renderLocateResult();
}

function clearLocate() {
  state.located = null;
  $('locate-input').value = '';
  $('locate-clear').hidden = true;
  renderLocateResult();
  updateGrid();
}

// The result names the owners from the live map, so it follows moves.
function renderLocateResult() {
  const out = $('locate-result');
  const loc = state.located;
  if (!loc) {
    out.hidden = true;
    out.textContent = '';
    return;
  }
  const part = state.parts.find((p) => p.n === loc.number);
  let owners = part ? part.owners.map((o) => o.id + (o.state === 'syncing' ? ' (syncing)' : '')) : [];
  if (!part) owners = [loc.answer.primary?.id, ...(loc.answer.replicas || []).map((r) => r.id)].filter(Boolean);
  const list = owners.length ? `primary ${owners[0]}` + (owners.length > 1 ? `, replicas ${owners.slice(1).join(', ')}` : '') : 'no owner';
  out.textContent = `${JSON.stringify(loc.key)} is in partition ${loc.number} (partition-${loc.number}): ${list}`;
  out.hidden = false;
}

// ---------------------------------------------------------------- rebalance

function renderMoves() {
  const moves = [];
  for (const p of state.parts) {
    for (const o of p.owners) if (o.state === 'syncing') moves.push([p.n, o.id]);
  }
  $('rebalance-moves').replaceChildren(...moves.slice(0, MAX_MOVES_SHOWN).map(([n, id]) =>
    el('li', { 'data-partition': n, 'data-node-id': id }, `partition ${n} → ${id} (syncing)`)));
  const more = $('rebalance-moves-more');
  more.hidden = moves.length <= MAX_MOVES_SHOWN;
  more.textContent = `… and ${moves.length - MAX_MOVES_SHOWN} more`;
  $('rebalance-summary').textContent = moves.length ? `${moves.length} copies syncing` : 'no hand-off in progress';
}

// ---------------------------------------------------------------- events

// Each event holds its fields in a member named after its kind.
function nodeOf(ev) {
  const e = ev[ev.kind] || {};
  if (ev.kind === 'partition_change') return e.copy_to_node?.id || '';
  if (ev.kind === 'cluster_health_change') return (e.unhealthy_node_ids || []).join(', ');
  return e.node?.id || e.trigger_node_id || '';
}

function summarize(ev) {
  const e = ev[ev.kind] || {};
  const plural = (n, word) => `${n ?? 0} ${word}${n === 1 ? '' : 's'}`;
  switch (ev.kind) {
    case 'partition_change': {
      const flags = [e.initial && 'initial', !e.initial && e.no_live_source && 'NO LIVE SOURCE'].filter(Boolean);
      // No role: the node released the partition (it no longer owns it).
      const what = e.role ? `→ ${e.copy_to_node?.id} as ${e.role}` : `released by ${e.copy_to_node?.id}`;
      return `${e.partition_id} ${what} (${e.change_reason}, epoch ${e.epoch})` + (flags.length ? ` [${flags.join(', ')}]` : '');
    }
    case 'node_join':
      return `joined${e.is_bootstrap ? ' (bootstrap)' : ''}; ${plural(e.cluster_size, 'member')}`;
    case 'node_rejoin':
      return `rejoined after ${((e.offline_duration_ms || 0) / 1000).toFixed(1)} s offline`;
    case 'node_leave':
      return `left (${e.reason}); held ${(e.partitions_owned || []).length} primaries, ${(e.partitions_replica || []).length} replicas`;
    case 'rebalance_start':
      return `rebalance started (${e.trigger}): ${plural(e.partitions_to_move, 'partition')} to move`;
    case 'rebalance_complete':
      return `rebalance complete (${e.trigger}): ${plural(e.partitions_moved, 'partition')} moved in ${Math.round(e.duration_ms || 0)} ms`;
    case 'cluster_health_change':
      return `${e.previous_status} → ${e.status}; ${e.unhealthy_nodes}/${e.total_nodes} unhealthy, ` +
        `${e.under_replicated_partitions} under-replicated, ${e.unowned_partitions} unowned`;
    case 'custom_data_change':
      return `${JSON.stringify(e.key)} ${e.deleted ? 'deleted' : 'written'} (version ${e.version})`;
    default:
      return '';
  }
}

function clock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const two = (n) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function eventItem(ev) {
  return el('li', { 'data-kind': ev.kind, 'data-seq': ev.seq },
    el('time', { dateTime: ev.time, title: ev.time }, clock(ev.time)),
    el('span', { class: 'kind' }, ev.kind),
    el('span', { class: 'node' }, nodeOf(ev)),
    el('span', { class: 'summary' }, summarize(ev)));
}

// prependNewest puts a batch (oldest first) on top of a list, newest first,
// and trims the list to max items.
function prependNewest(list, events, max) {
  const frag = document.createDocumentFragment();
  for (let i = events.length - 1; i >= Math.max(0, events.length - max); i--) frag.append(eventItem(events[i]));
  list.prepend(frag);
  while (list.children.length > max) list.lastElementChild.remove();
}

// showEvents renders one batch of events at once (a history replay can be
// thousands: only the newest are built), then asks for one refresh.
function showEvents(events) {
  if (!events.length) return;
  prependNewest($('events'), events, MAX_EVENTS);
  const rebalances = events.filter((e) => REBALANCE_KINDS.has(e.kind));
  if (rebalances.length) prependNewest($('rebalance-events'), rebalances, MAX_REBALANCE_EVENTS);
  // Custom-data writes change nothing this page shows: no refresh for them.
  if (events.some((e) => e.kind !== 'custom_data_change')) scheduleRefresh();
}

// ---------------------------------------------------------------- event stream

// The stream resumes with ?since=<last seq seen>: the node then sends every
// later event it retains, without gap or duplicate. The first connection asks
// for the oldest event the node still retains (since=oldest), so the list
// starts with recent history; a resume point the node no longer has (410)
// restarts there too, with a note that events were missed.
const stream = {
  since: 'oldest', // where the next connection starts ('' = live only)
  lastSeq: null, // [index, sub] of the last event shown, to drop duplicates
  backoff: BACKOFF_MIN_MS,
  ctrl: null,
  goneTries: 0,
  generation: 0, // bumped to abandon a connection loop
};

function setLive(live) {
  const s = $('stream-status');
  s.textContent = live ? 'live' : 'reconnecting';
  s.dataset.live = String(live);
}

function parseSeq(seq) {
  const [i, s] = String(seq).split('.');
  return [Number(i), s === undefined ? Infinity : Number(s)];
}

function seqAfter(a, b) {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

// afterGone restarts after a 410 (or an in-stream "gone") with the oldest
// event the node retains, then, if that fails too, live only.
function afterGone() {
  stream.goneTries++;
  stream.since = stream.goneTries === 1 ? 'oldest' : '';
  if (stream.lastSeq) {
    const note = $('events-note');
    note.textContent = 'Some events were missed while disconnected (the node no longer has them); the tables were re-read.';
    note.hidden = false;
  }
  scheduleRefresh(); // the events in between are lost: re-read the state
}

async function connect(generation) {
  const q = stream.since ? '?since=' + encodeURIComponent(stream.since) : '';
  const ctrl = new AbortController();
  stream.ctrl = ctrl;
  let delivered = 0;
  try {
    const res = await fetch('/events' + q, {
      headers: authHeaders({ Accept: 'text/event-stream' }), cache: 'no-store', signal: ctrl.signal,
    });
    if (res.status === 410) {
      afterGone();
      return stream.goneTries <= 2; // retry at once, unless it keeps failing
    }
    if (!res.ok || !res.body) throw await readError(res);
    stream.goneTries = 0;
    setLive(true);
    scheduleRefresh(); // catch up with what changed while disconnected
    delivered = await readStream(res.body, ctrl, generation);
  } catch {
    // Network error, abort or stall: reconnect with backoff below.
  } finally {
    ctrl.abort();
    if (generation === stream.generation) setLive(false);
  }
  if (delivered > 0) {
    stream.backoff = BACKOFF_MIN_MS;
    stream.goneTries = 0;
  }
  scheduleRefresh(); // state may have changed while disconnected
  return false;
}

async function streamLoop(generation) {
  while (generation === stream.generation) {
    const immediate = await connect(generation);
    if (generation !== stream.generation) return;
    if (!immediate) {
      await new Promise((r) => setTimeout(r, stream.backoff));
      stream.backoff = Math.min(BACKOFF_MAX_MS, stream.backoff * 2);
    }
  }
}

function startStream() {
  stream.generation++;
  if (stream.ctrl) stream.ctrl.abort();
  streamLoop(stream.generation);
}

function restartStreamFromScratch() {
  stream.since = 'oldest';
  stream.lastSeq = null;
  stream.goneTries = 0;
  $('events').replaceChildren();
  $('rebalance-events').replaceChildren();
  startStream();
}

// readStream parses server-sent events (id:, event:, data:, comments) from
// the body, shows each chunk's events at once, and returns how many came.
async function readStream(body, ctrl, generation) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let rec = { id: null, event: '', data: [] };
  let count = 0;
  let stall = setTimeout(() => ctrl.abort(), STALL_MS);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done || generation !== stream.generation) return count;
      clearTimeout(stall); // any bytes, keep-alives included, prove it alive
      stall = setTimeout(() => ctrl.abort(), STALL_MS);
      buf += value;
      const lines = buf.split(/\r?\n/);
      buf = lines.pop(); // an incomplete line waits for the next chunk
      const batch = [];
      for (const line of lines) {
        if (line === '') {
          const ev = dispatch(rec);
          if (ev) batch.push(ev);
          rec = { id: null, event: '', data: [] };
        } else if (line[0] === ':') {
          onComment(line.slice(1).trim());
        } else {
          const i = line.indexOf(':');
          const field = i < 0 ? line : line.slice(0, i);
          let val = i < 0 ? '' : line.slice(i + 1);
          if (val[0] === ' ') val = val.slice(1);
          if (field === 'id' && !val.includes('\0')) rec.id = val;
          else if (field === 'event') rec.event = val;
          else if (field === 'data') rec.data.push(val);
        }
      }
      count += batch.length;
      showEvents(batch);
    }
  } finally {
    clearTimeout(stall);
    reader.cancel().catch(() => {});
  }
}

// The opening comment names the stream's cursor ("after 14.66", "after
// entry 19"): resuming from it is exact even before any event arrives.
function onComment(text) {
  const m = /^clusterkit events after (entry )?(\S+)$/.exec(text);
  if (m) stream.since = m[2];
}

// dispatch handles one complete record; it returns the event to show, if any.
function dispatch(rec) {
  if (rec.event === 'gone') {
    let msg = '';
    try { msg = JSON.parse(rec.data.join('\n')).error; } catch { /* keep '' */ }
    afterGone(msg);
    return null;
  }
  if (rec.id !== null) stream.since = rec.id;
  if (!rec.data.length) return null;
  let ev;
  try {
    ev = JSON.parse(rec.data.join('\n'));
  } catch {
    return null;
  }
  if (!ev || !ev.kind) return null;
  ev.seq = ev.seq || rec.id || '';
  const seq = parseSeq(ev.seq);
  if (stream.lastSeq && !seqAfter(seq, stream.lastSeq)) return null; // already shown
  stream.lastSeq = seq;
  stream.goneTries = 0;
  return ev;
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('login').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('token-input');
    const token = input.value.trim();
    input.value = ''; // never leave the token in the page
    if (!token) return;
    setToken(token);
    showStatus('Token saved for this browser tab.', 'ok');
    scheduleRefresh();
  });
  $('token-clear').addEventListener('click', () => {
    $('token-input').value = '';
    setToken('');
    showStatus('Token cleared.', 'ok');
  });
  $('members').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-action]');
    const row = b && b.closest('tr[data-node-id]');
    if (row) runAction(b.dataset.action, row.dataset.nodeId);
  });
  $('rebalance-pause').addEventListener('click', () => runAction('pause-rebalance'));
  $('rebalance-resume').addEventListener('click', () => runAction('resume-rebalance'));
  $('rebalance-plan').addEventListener('click', planRebalance);
  $('node-filter').addEventListener('change', (e) => {
    state.filterNode = e.target.value;
    if (state.located) clearLocate();
    else updateGrid();
    $('partitions').scrollTop = 0;
  });
  $('locate-form').addEventListener('submit', (e) => {
    e.preventDefault();
    locateKey($('locate-input').value);
  });
  $('locate-clear').addEventListener('click', clearLocate);
  $('partitions').addEventListener('scroll', onGridScroll, { passive: true });
  window.addEventListener('resize', () => { grid.headH = 0; onGridScroll(); });
}

function main() {
  wire();
  renderAuth();
  setLive(false);
  updateGrid();
  scheduleRefresh();
  setInterval(scheduleRefresh, SAFETY_REFRESH_MS); // catches what no event announces
  startStream();
}

main();
