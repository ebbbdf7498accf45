// The supervisor console: the team's operators and the queues, kept current by the events of
// /api/v1/live (what live.view allows), within the time a WebSocket frame takes; no polling.
// The clocks on screen tick locally. Tiles apply the formulas of callwarden.acd.statistics:
// offered = answered + abandoned + overflowed; service level = answered within the queue's
// threshold / offered.
import {
  api,
  timeZone,
  errorText,
  everySecond,
  formatDuration,
  formatNumber,
  formatPercent,
  label,
  notify,
  openLive,
  t,
} from "./common.js";
import "./phone.js";

const board = JSON.parse(document.getElementById("board").textContent);
const queueNames = Object.fromEntries(board.tiles.map((tile) => [String(tile.id), tile.name]));
const now = Date.now();

const agents = new Map(
  board.rows.map((row) => [
    row.user_id,
    { state: row.state, since: now - row.seconds * 1000, queue: null },
  ]),
);
const tiles = new Map(
  board.tiles.map((tile) => [
    tile.id,
    {
      ...tile,
      waitingSince: new Map(
        Object.entries(tile.waiting_calls).map(([id, age]) => [id, now - age * 1000]),
      ),
    },
  ]),
);

// Calls in progress, by call id: who, which queue, since when, and the caller's own monitoring
// session on it (from the API's answers and the monitoring.* events).
const me = board.me;
const calls = new Map(
  board.calls.map((call) => [
    call.call_id,
    { ...call, since: now - call.seconds * 1000, element: null },
  ]),
);
const names = Object.fromEntries(
  [...document.querySelectorAll("#agents tbody tr")].map((element) => [
    element.dataset.userId,
    element.querySelector("th").textContent,
  ]),
);
let callRows = 0;

function renderCall(call) {
  if (!call.element) {
    const fragment = document.getElementById("call-row").content.cloneNode(true);
    call.element = fragment.querySelector("tr");
    call.element.dataset.callId = call.call_id;
    callRows += 1;
    for (const label of call.element.querySelectorAll("label[data-for]")) {
      const input = call.element.querySelector(`[data-input="${label.dataset.for}"]`);
      input.id = `call-${callRows}-${label.dataset.for}`;
      label.htmlFor = input.id;
    }
    call.element.querySelector('[data-action="start"]').addEventListener("click", () => startMonitoring(call));
    call.element.querySelector('[data-action="switch"]').addEventListener("click", () => switchMonitoring(call));
    call.element.querySelector('[data-action="end"]').addEventListener("click", () => endMonitoring(call));
    document.querySelector("#calls tbody").append(call.element);
  }
  const element = call.element;
  element.querySelector('[data-field="name"]').textContent = names[String(call.user_id)] ?? "—";
  element.querySelector('[data-field="queue"]').textContent = queueNames[String(call.queue_id)] ?? "—";
  element.querySelector('[data-part="refused"]').hidden = call.monitorable;
  element.querySelector('[data-part="start"]').hidden = !call.monitorable || call.session !== null;
  element.querySelector('[data-part="session"]').hidden = call.session === null;
  if (call.session) {
    element.dataset.mode = call.session.mode;
    element.querySelector('[data-field="session"]').textContent = t("calls.session", {
      mode: t(`monitor.${call.session.mode}`),
      state: t(`monitor.state_${call.session.state}`),
    });
  } else delete element.dataset.mode;
  renderCallsTable();
}

function renderCallsTable() {
  document.getElementById("calls").hidden = calls.size === 0;
  document.getElementById("no-calls").hidden = calls.size !== 0;
}

function dropCall(callId) {
  const call = calls.get(callId);
  if (!call) return;
  call.element?.remove();
  calls.delete(callId);
  renderCallsTable();
}

function sessionOf(view) {
  return { id: view.id, mode: view.mode, state: view.state };
}

async function startMonitoring(call) {
  const reason = call.element.querySelector('[data-input="reason"]');
  if (!reason.value.trim()) {
    notify(t("calls.reason_needed"));
    reason.focus();
    return;
  }
  const mode = call.element.querySelector('[data-input="mode"]').value;
  const result = await api("POST", "/api/v1/monitoring", {
    call_id: call.call_id,
    mode,
    reason: reason.value.trim(),
  });
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  call.session = sessionOf(result.body);
  renderCall(call);
}

async function switchMonitoring(call) {
  const mode = call.element.querySelector('[data-input="switch"]').value;
  const result = await api("PATCH", `/api/v1/monitoring/${encodeURIComponent(call.session.id)}`, { mode });
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  call.session = sessionOf(result.body);
  renderCall(call);
}

async function endMonitoring(call) {
  const result = await api("DELETE", `/api/v1/monitoring/${encodeURIComponent(call.session.id)}`);
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  call.session = null;
  renderCall(call);
}

function onMonitoringEvent(kind, fields) {
  if (fields.supervisor_id !== me) return;
  const call = calls.get(String(fields.call_id));
  if (!call) return;
  call.session = kind === "monitoring.ended" ? null : { id: fields.monitoring_id, mode: fields.mode, state: "joined" };
  renderCall(call);
}

// Alerts: a sign-in from a new address, a recording that failed, a caller waiting past the
// queue's service-level threshold, a call longer than LONG_CALL_SECONDS; each raised once.
const LONG_CALL_SECONDS = 600;
const raised = new Set();
const clock = new Intl.DateTimeFormat(document.documentElement.lang, {
  timeZone,
  hour: "2-digit",
  minute: "2-digit",
});

function alert(key, kind, values) {
  if (raised.has(key)) return;
  raised.add(key);
  const item = document.createElement("li");
  item.dataset.kind = kind;
  const time = document.createElement("time");
  time.textContent = clock.format(new Date());
  item.append(time, ` ${t(`alerts.${kind}`, values)}`);
  document.getElementById("alerts").prepend(item);
  document.getElementById("no-alerts").hidden = true;
}

function nameOf(userId) {
  return names[String(userId)] ?? String(userId);
}

function row(userId) {
  return document.querySelector(`#agents tr[data-user-id="${userId}"]`);
}

function renderAgent(userId, fields) {
  const element = row(userId);
  const agent = agents.get(userId);
  if (!element || !agent) return;
  element.dataset.state = agent.state;
  const state = element.querySelector('[data-field="state"]');
  const badge = document.createElement("span");
  badge.className = `state state-${agent.state}`;
  badge.textContent = t(`state.${agent.state}`);
  const parts = [badge];
  if (agent.state === "break" && fields?.reason) {
    const reason = document.createElement("span");
    reason.className = "muted";
    reason.dataset.field = "reason";
    reason.textContent = ` ${label("break", fields.reason)}`;
    parts.push(reason);
  }
  state.replaceChildren(...parts);
  element.querySelector('[data-field="queue"]').textContent =
    agent.queue === null ? "—" : (queueNames[String(agent.queue)] ?? "—");
  if (fields) element.querySelector('[data-field="calls"]').textContent = formatNumber(fields.calls_taken);
}

function renderTile(tile) {
  const element = document.querySelector(`.tile[data-queue-id="${tile.id}"]`);
  if (!element) return;
  const offered = tile.answered + tile.abandoned + tile.overflowed;
  element.querySelector('[data-field="waiting"]').textContent = formatNumber(tile.waitingSince.size);
  element.querySelector('[data-field="abandoned"]').textContent = formatNumber(tile.abandoned);
  element.querySelector('[data-field="service_level"]').textContent =
    offered ? formatPercent(tile.within / offered) : "—";
}

function tick() {
  const current = Date.now();
  for (const [userId, agent] of agents) {
    const element = row(userId);
    if (!element) continue;
    const seconds = (current - agent.since) / 1000;
    element.querySelector('[data-field="time"]').textContent = formatDuration(seconds);
    element.querySelector('[data-field="call"]').textContent =
      agent.state === "on_call" ? formatDuration(seconds) : "—";
  }
  for (const call of calls.values()) {
    const seconds = (current - call.since) / 1000;
    call.element?.querySelector('[data-field="duration"]').replaceChildren(formatDuration(seconds));
    if (seconds > LONG_CALL_SECONDS) {
      call.element?.setAttribute("data-alert", "long_call");
      alert(`long_call ${call.call_id}`, "long_call", { name: nameOf(call.user_id) });
    }
  }
  for (const tile of tiles.values()) {
    const element = document.querySelector(`.tile[data-queue-id="${tile.id}"]`);
    if (!element) continue;
    const oldest = Math.min(...tile.waitingSince.values());
    const longest = tile.waitingSince.size ? (current - oldest) / 1000 : 0;
    element.querySelector('[data-field="longest"]').textContent = formatDuration(longest);
    if (longest > tile.service_level_seconds) {
      element.dataset.alert = "long_wait";
      alert(`long_wait ${tile.id} ${oldest}`, "long_wait", { queue: tile.name });
    } else delete element.dataset.alert;
  }
}

function onAgentEvent(fields) {
  const agent = agents.get(fields.user_id);
  if (!agent) return;
  agent.state = fields.state;
  agent.since = Date.now();
  if (fields.state !== "on_call" && fields.state !== "ringing" && fields.state !== "wrap_up") {
    agent.queue = null;
  }
  renderAgent(fields.user_id, fields);
}

function onCallEvent(kind, fields) {
  const id = String(fields.call_id);
  if (kind === "acd.call_answered" && agents.has(fields.user_id)) {
    const monitorable = row(fields.user_id)?.dataset.monitorable === "true";
    const call = { call_id: id, user_id: fields.user_id, queue_id: fields.queue_id, since: Date.now(), monitorable, session: null, element: null };
    calls.set(id, call);
    renderCall(call);
  } else if (kind === "acd.call_ended" || kind === "acd.call_handled" || kind === "acd.call_abandoned") {
    dropCall(id);
  }
  const tile = tiles.get(fields.queue_id);
  if (fields.user_id !== null && agents.has(fields.user_id) && kind !== "acd.call_handled") {
    agents.get(fields.user_id).queue = fields.queue_id;
    renderAgent(fields.user_id);
  }
  if (!tile) return;
  if (kind === "acd.call_queued") tile.waitingSince.set(id, Date.now());
  else if (kind === "acd.call_answered" || kind === "acd.call_abandoned" || kind === "acd.call_overflowed") {
    tile.waitingSince.delete(id);
    if (kind === "acd.call_answered") {
      tile.answered += 1;
      if (fields.waited_seconds <= tile.service_level_seconds) tile.within += 1;
    } else if (kind === "acd.call_abandoned") tile.abandoned += 1;
    else tile.overflowed += 1;
  }
  renderTile(tile);
}

function setStatus(connected) {
  const status = document.getElementById("live-status");
  status.dataset.connected = String(connected);
  status.textContent = t(connected ? "live.connected" : "live.disconnected");
}

openLive(
  "/api/v1/live",
  (message) => {
    if (message.type !== "event") return;
    if (message.kind === "acd.agent_state_changed") onAgentEvent(message.fields);
    else if (message.kind.startsWith("acd.call_")) onCallEvent(message.kind, message.fields);
    else if (message.kind.startsWith("monitoring.")) onMonitoringEvent(message.kind, message.fields);
    else if (message.kind === "recording.failed") {
      alert(`recording_failed ${message.fields.recording_id}`, "recording_failed", {
        name: nameOf(message.fields.user_id),
      });
    } else if (message.kind === "security.new_sign_in_location" && message.fields.user_id !== me) {
      alert(`new_sign_in ${message.at} ${message.fields.user_id}`, "new_sign_in", {
        name: message.fields.username,
        address: message.fields.address,
      });
    }
    tick();
  },
  setStatus,
);

for (const button of document.querySelectorAll("button[data-force]")) {
  button.addEventListener("click", async () => {
    const userId = button.dataset.userId;
    const body = { state: button.dataset.force };
    if (body.state === "break") body.reason = document.getElementById(`reason-${userId}`).value;
    const result = await api("POST", `/api/v1/agents/${userId}/state`, body);
    if (!result.ok) notify(errorText(result));
  });
}

for (const call of calls.values()) renderCall(call);
renderCallsTable();
everySecond(tick);
