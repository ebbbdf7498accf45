// The operator desktop: one's own state (one click to change it), the current call from the
// desk's live feed (/api/v1/desk/live: one's own agent and calls only) with its caller as the
// policy shows it (/api/v1/desk/call), the pause/resume recording button (showing the state the
// API confirmed), the wrap-up form (disposition code and note), today's count.
import { api, errorText, everySecond, formatDuration, label, notify, openLive, t } from "./common.js";
import "./phone.js";

const queues = JSON.parse(document.getElementById("queues").textContent);
const stateElement = document.getElementById("state");
const stateTime = document.getElementById("state-time");
const reasonShown = document.getElementById("break-reason-shown");
const callsTaken = document.getElementById("calls-taken");
const call = { id: null, phase: null, since: 0, queue: null, ended: 0, caller: null };
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
  document.getElementById("wrap-up").hidden = call.phase !== "wrap_up";
  document.getElementById("recording-actions").hidden = true;
  if (call.phase === null) return;
  document.getElementById("call-phase").textContent = t(`desk.phase_${call.phase}`);
  document.getElementById("call-queue").textContent = queues[String(call.queue)] ?? "—";
  document.getElementById("call-caller").textContent = call.caller ?? t("desk.caller_unknown");
  const toggle = document.getElementById("recording-toggle");
  const controllable = call.phase === "talking" && ["on", "paused"].includes(recording.state);
  document.getElementById("recording-actions").hidden = !controllable;
  toggle.dataset.wanted = recording.state === "paused" ? "recording" : "paused";
  if (!toggle.disabled) {
    toggle.textContent = t(recording.state === "paused" ? "desk.resume_recording" : "desk.pause_recording");
  }
}

function showRecording() {
  const shown = document.getElementById("recording");
  shown.dataset.recording = recording.state;
  shown.textContent = t(`desk.recording_${recording.state}`);
}

/** Asks the call's caller number (masked unless one may see numbers) of one's current call. */
async function loadCaller(callId) {
  const result = await api("GET", "/api/v1/desk/call");
  if (!result.ok || call.id !== callId || result.body.call_id !== callId) return;
  call.caller = result.body.caller;
  showCall();
}

function startCall(fields, phase) {
  const known = call.id === fields.call_id;
  Object.assign(call, { id: fields.call_id, phase, since: Date.now(), queue: fields.queue_id });
  if (!known) {
    call.caller = null;
    recording.state = "none";
    document.getElementById("wrap-up").reset();
  }
  loadCaller(fields.call_id);
}

function tick() {
  stateTime.textContent = formatDuration((Date.now() - stateSince) / 1000);
  if (call.phase !== null) {
    const end = call.phase === "wrap_up" ? call.ended : Date.now();
    const shown = call.since === null ? "—" : formatDuration((end - call.since) / 1000);
    document.getElementById("call-time").textContent = shown;
  }
}

const handlers = {
  "acd.agent_state_changed": (fields) => {
    showState(fields.state, fields.reason);
    callsTaken.textContent = String(fields.calls_taken);
  },
  "acd.call_offered": (fields) => startCall(fields, "ringing"),
  "acd.call_answered": (fields) => startCall(fields, "talking"),
  "acd.call_ended": () => Object.assign(call, { phase: "wrap_up", ended: Date.now() }),
  "acd.call_handled": () => Object.assign(call, { id: null, phase: null, caller: null }),
  "acd.call_abandoned": () => Object.assign(call, { id: null, phase: null, caller: null }),
  "recording.started": () => Object.assign(recording, { state: "on" }),
  "recording.resumed": () => Object.assign(recording, { state: "on" }),
  "recording.paused": () => Object.assign(recording, { state: "paused" }),
  // A failed recording is stopped next (recording.failed, then recording.stopped): it stays
  // shown as stopped by a failure.
  "recording.stopped": () => {
    if (recording.state !== "failed") recording.state = "none";
  },
  "recording.failed": () => Object.assign(recording, { state: "failed" }),
  "monitoring.started": (fields) => monitoring.add(fields.monitoring_id),
  "monitoring.switched": (fields) => monitoring.add(fields.monitoring_id),
  "monitoring.ended": (fields) => monitoring.delete(fields.monitoring_id),
};

openLive("/api/v1/desk/live", (message) => {
  if (message.type !== "event") return;
  handlers[message.kind]?.(message.fields);
  document.getElementById("monitored").hidden = monitoring.size === 0;
  showRecording();
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

/** A page loaded during a call starts from it: the phase by the agent's state; the time in
 *  call from the state's start while talking (unknown in wrap-up). Events win over this. */
async function restoreCall() {
  const result = await api("GET", "/api/v1/desk/call");
  if (!result.ok || result.body.call_id === null || call.id !== null) return;
  const { call_id: id, phase, queue_id: queue, caller } = result.body;
  const since = phase === "wrap_up" ? null : stateSince;
  Object.assign(call, { id, phase, queue, caller, since, ended: Date.now() });
  showCall();
  tick();
}

const RECORDING_STATES = { recording: "on", paused: "paused", not_recording: "none" };

document.getElementById("recording-toggle").addEventListener("click", async (event) => {
  const toggle = event.currentTarget;
  const wanted = toggle.dataset.wanted;
  toggle.disabled = true;
  toggle.textContent = t("desk.recording_busy");
  const path = `/api/v1/calls/${encodeURIComponent(call.id)}/recording`;
  const result = await api("PUT", path, { state: wanted, reason: "operator desk" });
  toggle.disabled = false;
  if (result.ok) {
    recording.state = RECORDING_STATES[result.body.state] ?? "none";
    notify(t(wanted === "paused" ? "desk.recording_paused_confirmed" : "desk.recording_resumed_confirmed"), "info");
  } else {
    if (result.body?.error_id === "pause_not_confirmed") recording.state = "failed";
    notify(errorText(result));
  }
  showRecording();
  showCall();
});

document.getElementById("wrap-up").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (call.id === null) return;
  const form = event.currentTarget;
  const body = { code: form.elements.code.value, note: form.elements.note.value };
  const path = `/api/v1/calls/${encodeURIComponent(call.id)}/disposition`;
  const result = await api("PUT", path, body);
  notify(result.ok ? t("desk.wrap_up_saved") : errorText(result), result.ok ? "info" : "error");
});

restoreCall();
everySecond(tick);
