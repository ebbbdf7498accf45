// The supervisor console: the team's operators and the queues, kept current by the events of
// /api/v1/live (what live.view allows), within the time a WebSocket frame takes; no polling.
// The clocks on screen tick locally. Tiles apply the formulas of callwarden.acd.statistics:
// offered = answered + abandoned + overflowed; service level = answered within the queue's
// threshold / offered.
import {
  api,
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
  for (const tile of tiles.values()) {
    const element = document.querySelector(`.tile[data-queue-id="${tile.id}"]`);
    if (!element) continue;
    const oldest = Math.min(...tile.waitingSince.values());
    element.querySelector('[data-field="longest"]').textContent = formatDuration(
      tile.waitingSince.size ? (current - oldest) / 1000 : 0,
    );
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
  const tile = tiles.get(fields.queue_id);
  if (fields.user_id !== null && agents.has(fields.user_id) && kind !== "acd.call_handled") {
    agents.get(fields.user_id).queue = fields.queue_id;
    renderAgent(fields.user_id);
  }
  if (!tile) return;
  const id = String(fields.call_id);
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

everySecond(tick);
