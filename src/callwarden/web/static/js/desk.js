// The operator desktop: one's own state (one click to change it), the current call from the
// desk's live feed (/api/v1/desk/live: one's own agent and calls only), today's count.
import { api, errorText, everySecond, formatDuration, label, notify, openLive, t } from "./common.js";

const queues = JSON.parse(document.getElementById("queues").textContent);
const stateElement = document.getElementById("state");
const stateTime = document.getElementById("state-time");
const reasonShown = document.getElementById("break-reason-shown");
const callsTaken = document.getElementById("calls-taken");
const call = { phase: null, since: 0, queue: null, ended: 0 };
const monitoring = new Set(); // sessions on one's own calls that one is told about
const recording = { state: "none" }; // the current call's recording: none, on, paused, failed
let stateSince = Date.now() - Number(stateTime.dataset.seconds) * 1000;

function showState(state, reason, seconds = 0) {
  stateElement.dataset.state = state;
  stateElement.className = `state state-${state}`;
  stateElement.textContent = t(`state.${state}`);
  reasonShown.textContent = state === "break" && reason ? label("break", reason) : "";
  stateSince = Date.now() - seconds * 1000;
}

function showCall() {
  const details = document.getElementById("call-details");
  document.getElementById("no-call").hidden = call.phase !== null;
  details.hidden = call.phase === null;
  if (call.phase === null) return;
  document.getElementById("call-phase").textContent = t(`desk.phase_${call.phase}`);
  document.getElementById("call-queue").textContent = queues[String(call.queue)] ?? "—";
}

function tick() {
  stateTime.textContent = formatDuration((Date.now() - stateSince) / 1000);
  if (call.phase !== null) {
    const end = call.phase === "wrap_up" ? call.ended : Date.now();
    document.getElementById("call-time").textContent = formatDuration((end - call.since) / 1000);
  }
}

const handlers = {
  "acd.agent_state_changed": (fields) => {
    showState(fields.state, fields.reason);
    callsTaken.textContent = String(fields.calls_taken);
  },
  "acd.call_offered": (fields) => Object.assign(call, { phase: "ringing", since: Date.now(), queue: fields.queue_id }),
  "acd.call_answered": (fields) => Object.assign(call, { phase: "talking", since: Date.now(), queue: fields.queue_id }),
  "acd.call_ended": () => Object.assign(call, { phase: "wrap_up", ended: Date.now() }),
  "acd.call_handled": () => Object.assign(call, { phase: null }),
  "acd.call_abandoned": () => Object.assign(call, { phase: null }),
  "recording.started": () => Object.assign(recording, { state: "on" }),
  "recording.resumed": () => Object.assign(recording, { state: "on" }),
  "recording.paused": () => Object.assign(recording, { state: "paused" }),
  "recording.stopped": () => Object.assign(recording, { state: "none" }),
  "recording.failed": () => Object.assign(recording, { state: "failed" }),
  "monitoring.started": (fields) => monitoring.add(fields.monitoring_id),
  "monitoring.switched": (fields) => monitoring.add(fields.monitoring_id),
  "monitoring.ended": (fields) => monitoring.delete(fields.monitoring_id),
};

openLive("/api/v1/desk/live", (message) => {
  if (message.type !== "event") return;
  handlers[message.kind]?.(message.fields);
  document.getElementById("monitored").hidden = monitoring.size === 0;
  const shown = document.getElementById("recording");
  shown.dataset.recording = recording.state;
  shown.textContent = t(`desk.recording_${recording.state}`);
  showCall();
  tick();
});

for (const button of document.querySelectorAll("button[data-change-state]")) {
  button.addEventListener("click", async () => {
    const state = button.dataset.changeState;
    const body = { state };
    if (state === "break") body.reason = document.getElementById("break-reason").value;
    const result = await api("POST", "/api/v1/agents/me/state", body);
    if (!result.ok) {
      notify(errorText(result));
      return;
    }
    if (result.body.state !== stateElement.dataset.state) {
      showState(result.body.state, result.body.break_reason, result.body.time_in_state_seconds);
    }
    callsTaken.textContent = String(result.body.calls_taken);
  });
}

everySecond(tick);
