// The recordings page: search (the filters of GET /api/v1/recordings), a results table paged by
// the API's cursor, and a recording's detail: the player (a reason is asked before each play or
// download; POST play answers a link bound to this session, streamed with HTTP ranges), the
// waveform drawn as SVG from the link's waveform, pause markers on the timeline, tags and notes.
import { api, errorText, formatDuration, label, notify, t } from "./common.js";
import { centerTimeToIso, formatDateTime } from "./when.js";

const names = JSON.parse(document.getElementById("names").textContent);
const form = document.getElementById("search");
const tbody = document.querySelector("#results tbody");
const status = document.getElementById("results-status");
const nextButton = document.getElementById("next-page");
const firstButton = document.getElementById("first-page");
const detail = document.getElementById("detail");
const audio = document.getElementById("audio");
const svg = document.getElementById("waveform");
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const HEIGHT = 120;

let query = null;
let nextCursor = null;
let current = null;
let monitoring = []; // the verified manifest's monitoring sessions of the open recording
let shape = null; // the waveform drawn for the open recording
document.body.dataset.loads = "true"; // until the state in the URL is restored (see the end)

function nameOf(kind, id) {
  if (id === null || id === undefined) return "—";
  return names[kind][String(id)] ?? `#${id}`;
}

function searchParameters() {
  const data = new FormData(form);
  const parameters = new URLSearchParams();
  for (const field of ["queue_id", "team_id", "operator_id", "direction", "caller_number"]) {
    const value = (data.get(field) || "").trim();
    if (value) parameters.set(field, value);
  }
  for (const field of ["since", "until"]) {
    const value = centerTimeToIso(data.get(field));
    if (value) parameters.set(field, value);
  }
  for (const [field, name] of [["min_seconds", "min_duration_ms"], ["max_seconds", "max_duration_ms"]]) {
    const value = data.get(field);
    if (value !== null && value !== "") parameters.set(name, String(Number(value) * 1000));
  }
  for (const tag of (data.get("tags") || "").split(",")) {
    if (tag.trim()) parameters.append("tag", tag.trim().toLowerCase());
  }
  for (const flag of ["has_pauses", "monitored", "incomplete"]) {
    if (data.get(flag)) parameters.set(flag, data.get(flag));
  }
  parameters.set("limit", "20");
  return parameters;
}

function cell(row, text, translate = true) {
  const element = document.createElement("td");
  element.textContent = text;
  if (!translate) element.setAttribute("translate", "no");
  row.append(element);
  return element;
}

function renderRow(recording) {
  const row = document.createElement("tr");
  row.dataset.recordingId = recording.id;
  const started = document.createElement("th");
  started.scope = "row";
  started.id = `started-${recording.id}`;
  started.textContent = formatDateTime(recording.started_at);
  row.append(started);
  cell(row, recording.duration_ms === null ? "—" : formatDuration(recording.duration_ms / 1000));
  cell(row, nameOf("operators", recording.operator_id), false);
  cell(row, nameOf("queues", recording.queue_id), false);
  cell(row, label("recordings.direction", recording.direction));
  cell(row, recording.caller_number ?? "—", false);
  cell(row, recording.tags.join(", "), false);
  const actions = document.createElement("td");
  const open = document.createElement("button");
  open.type = "button";
  open.className = "secondary";
  open.textContent = t("recordings.open");
  open.setAttribute("aria-describedby", started.id);
  open.addEventListener("click", () => openDetail(recording.id));
  actions.append(open);
  row.append(actions);
  tbody.append(row);
}

async function search(cursor) {
  const parameters = new URLSearchParams(query);
  if (cursor) parameters.set("cursor", cursor);
  status.textContent = t("recordings.searching");
  const result = await api("GET", `/api/v1/recordings?${parameters}`);
  if (!result.ok) {
    status.textContent = "";
    notify(errorText(result));
    return;
  }
  tbody.replaceChildren();
  for (const recording of result.body.items) renderRow(recording);
  nextCursor = result.body.next_cursor;
  nextButton.hidden = !nextCursor;
  firstButton.hidden = !cursor;
  status.textContent = result.body.items.length
    ? t("recordings.found", { count: result.body.items.length })
    : t("recordings.nothing_found");
}

/** The search and the open recording are kept in the URL, so that a reload (the language
 *  switch) or a shared link shows the same. */
function remember(recordingId) {
  const kept = new URLSearchParams(query ?? "");
  kept.delete("limit");
  if (recordingId) kept.set("open", recordingId);
  window.history.replaceState(null, "", `${window.location.pathname}?${kept}`);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  query = searchParameters();
  remember(detail.hidden ? null : current.id); // the open recording stays open
  search(null);
});
nextButton.addEventListener("click", () => search(nextCursor));
firstButton.addEventListener("click", () => search(null));

// -- detail ---------------------------------------------------------------------------------

function fact(id, text) {
  document.getElementById(id).textContent = text;
}

function markersText(recording) {
  const parts = [];
  if (recording.pauses.length) parts.push(t("recordings.paused_times", { count: recording.pauses.length }));
  if (recording.monitored) parts.push(t("recordings.was_monitored"));
  return parts.length ? parts.join(" / ") : t("recordings.no_markers");
}

function showRecording(recording) {
  current = recording;
  fact("d-started", formatDateTime(recording.started_at));
  fact("d-duration", recording.duration_ms === null ? "—" : formatDuration(recording.duration_ms / 1000));
  fact("d-operator", nameOf("operators", recording.operator_id));
  fact("d-queue", nameOf("queues", recording.queue_id));
  fact("d-caller", recording.caller_number ?? "—");
  fact("d-status", label("recordings.status", recording.status));
  fact("d-markers", markersText(recording));
  renderTags(recording.tags);
  const who = document.getElementById("who-listened");
  if (who) {
    const parameters = new URLSearchParams({ listened: recording.id, call: recording.call_id });
    who.href = `/audit?${parameters}`;
  }
}

async function openDetail(recordingId) {
  const result = await api("GET", `/api/v1/recordings/${recordingId}`);
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  audio.pause();
  audio.removeAttribute("src");
  document.getElementById("player").hidden = true;
  monitoring = [];
  shape = null;
  resetVerification();
  document.getElementById("play-reason").value = "";
  showRecording(result.body);
  await loadNotes();
  detail.hidden = false;
  remember(recordingId);
  document.getElementById("detail-heading").focus();
}

function renderTags(tags) {
  const list = document.getElementById("tag-list");
  list.replaceChildren();
  for (const tag of tags) {
    const item = document.createElement("li");
    const text = document.createElement("span");
    text.textContent = tag;
    text.setAttribute("translate", "no");
    text.id = `tag-${tags.indexOf(tag)}`;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "secondary small";
    remove.textContent = t("recordings.remove_tag");
    remove.setAttribute("aria-describedby", text.id);
    remove.addEventListener("click", () => changeTag(tag, false));
    item.append(text, " ", remove);
    list.append(item);
  }
}

async function changeTag(tag, present) {
  const result = await api("PUT", `/api/v1/recordings/${current.id}/tags`, { tag, present });
  if (!result.ok) {
    notify(errorText(result));
    return false;
  }
  showRecording(result.body);
  return true;
}

document.getElementById("add-tag").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("new-tag");
  if (await changeTag(input.value.trim().toLowerCase(), true)) input.value = "";
});

async function loadNotes() {
  const result = await api("GET", `/api/v1/recordings/${current.id}/notes`);
  const list = document.getElementById("note-list");
  list.replaceChildren();
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  for (const note of result.body.items) {
    const item = document.createElement("li");
    const when = document.createElement("time");
    when.dateTime = note.created_at;
    when.textContent = formatDateTime(note.created_at);
    const author = document.createElement("span");
    author.setAttribute("translate", "no");
    author.textContent = ` ${nameOf("operators", note.author_id)}: `;
    const text = document.createElement("span");
    text.setAttribute("translate", "no");
    text.textContent = note.text;
    item.append(when, author, text);
    list.append(item);
  }
}

document.getElementById("add-note").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("new-note");
  const result = await api("POST", `/api/v1/recordings/${current.id}/notes`, { text: input.value });
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  input.value = "";
  await loadNotes();
});

// -- listening ------------------------------------------------------------------------------

/** The reason and rendition of the listen form, or null (and the reason asked for). */
function listenRequest() {
  const reasonInput = document.getElementById("play-reason");
  const reasonError = document.getElementById("reason-error");
  const reason = reasonInput.value.trim();
  if (!reason) {
    reasonError.hidden = false;
    reasonInput.setAttribute("aria-invalid", "true");
    reasonInput.focus();
    return null;
  }
  reasonError.hidden = true;
  reasonInput.removeAttribute("aria-invalid");
  const [mode, track] = document.getElementById("play-mode").value.split(":");
  return track ? { reason, mode, track } : { reason, mode };
}

function svgElement(name, attributes) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

function span(fromIso, untilIso, started, total) {
  const from = Math.max(0, Date.parse(fromIso) - started);
  const until = untilIso ? Date.parse(untilIso) - started : total;
  return { x: (from / total) * WIDTH, width: Math.max(2, ((until - from) / total) * WIDTH) };
}

function marker(className, place, titleText) {
  const element = svgElement("rect", { class: className, x: place.x, y: 0, width: place.width, height: HEIGHT });
  const title = svgElement("title", {});
  title.textContent = titleText;
  element.append(title);
  return element;
}

function drawWaveform() {
  if (!shape) return;
  svg.replaceChildren();
  const count = shape.maximum.length;
  const scale = (value) => HEIGHT / 2 - (value / 32768) * (HEIGHT / 2);
  const steps = [];
  for (let index = 0; index < count; index += 1) {
    const x = ((index + 0.5) * WIDTH) / count;
    steps.push(`M${x.toFixed(1)} ${scale(shape.maximum[index]).toFixed(1)}V${scale(shape.minimum[index]).toFixed(1)}`);
  }
  svg.append(svgElement("rect", { class: "wave-back", x: 0, y: 0, width: WIDTH, height: HEIGHT }));
  const total = current.duration_ms || count * shape.bucket_ms;
  const started = Date.parse(current.started_at);
  for (const pause of current.pauses) {
    const place = span(pause.started_at, pause.ended_at, started, total);
    svg.append(marker("wave-pause", place, t("recordings.legend_pause")));
  }
  for (const session of monitoring) {
    const place = span(session.started_at, session.ended_at, started, total);
    const name = nameOf("operators", session.supervisor_id);
    svg.append(marker("wave-monitor", place, t("recordings.monitored_by", { name })));
  }
  svg.append(svgElement("path", { class: "wave-line", d: steps.join("") }));
  svg.append(svgElement("line", { id: "play-head", class: "wave-head", x1: 0, x2: 0, y1: 0, y2: HEIGHT }));
}

function movePlayHead() {
  const head = document.getElementById("play-head");
  if (!head || !audio.duration) return;
  const x = ((audio.currentTime / audio.duration) * WIDTH).toFixed(1);
  head.setAttribute("x1", x);
  head.setAttribute("x2", x);
}

audio.addEventListener("timeupdate", movePlayHead);
audio.addEventListener("ended", () => {
  movePlayHead();
  audio.dataset.ended = "true";
});
svg.addEventListener("click", (event) => {
  if (!audio.duration) return;
  const box = svg.getBoundingClientRect();
  audio.currentTime = ((event.clientX - box.left) / box.width) * audio.duration;
});

document.getElementById("listen").addEventListener("submit", async (event) => {
  event.preventDefault();
  const request = listenRequest();
  if (!request) return;
  const result = await api("POST", `/api/v1/recordings/${current.id}/play`, request);
  if (!result.ok) {
    notify(errorText(result));
    return;
  }
  const drawn = await api("GET", `${result.body.waveform_url}?buckets=500`);
  if (drawn.ok) {
    shape = drawn.body;
    drawWaveform();
  } else {
    notify(errorText(drawn));
  }
  document.getElementById("player").hidden = false;
  delete audio.dataset.ended;
  audio.src = result.body.stream_url;
  try {
    await audio.play();
  } catch {
    notify(t("recordings.press_play"), "info");
  }
});

document.getElementById("download")?.addEventListener("click", async () => {
  const request = listenRequest();
  if (!request) return;
  const response = await fetch(`/api/v1/recordings/${current.id}/download`, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "X-CSRF-Token": document.querySelector('meta[name="csrf-token"]').content,
    },
    body: JSON.stringify(request),
  });
  if (!response.ok) {
    const body = (response.headers.get("content-type") || "").startsWith("application/json")
      ? await response.json()
      : null;
    notify(errorText({ status: response.status, body }));
    return;
  }
  const link = document.createElement("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = `recording-${current.id}.wav`;
  document.body.append(link);
  link.click();
  link.remove();
  window.setTimeout(() => URL.revokeObjectURL(link.href), 10000);
});

// -- integrity ------------------------------------------------------------------------------

const CHECK_KEYS = {
  signature: "signature",
  "catalogue digest": "catalogue_digest",
  "chunks authenticate and decrypt": "chunks",
  "chunk digests": "chunk_digests",
  "file digest": "file_digest",
  completeness: "completeness",
  "audio digests": "audio_digests",
};
const verifyStatus = document.getElementById("verify-status");

function resetVerification() {
  verifyStatus.dataset.state = "unknown";
  verifyStatus.textContent = t("recordings.verify_not_yet");
  document.getElementById("verify-checks").replaceChildren();
  document.getElementById("verify-facts").hidden = true;
}

function showVerification(view) {
  const checks = document.getElementById("verify-checks");
  checks.replaceChildren();
  verifyStatus.dataset.state = view.verified ? "verified" : "failed";
  if (view.verified) {
    verifyStatus.textContent = t("recordings.verify_ok");
    for (const name of view.checks) {
      const item = document.createElement("li");
      item.textContent = CHECK_KEYS[name] ? t(`recordings.check.${CHECK_KEYS[name]}`) : name;
      checks.append(item);
    }
    document.getElementById("verify-digest").textContent = view.file_sha256;
    document.getElementById("verify-signer").textContent = view.signer_fingerprint;
    document.getElementById("verify-facts").hidden = false;
    monitoring = view.monitoring_sessions;
    drawWaveform();
  } else {
    const reason = document.createElement("code");
    reason.setAttribute("translate", "no");
    reason.textContent = view.error;
    verifyStatus.replaceChildren(`${t("recordings.verify_failed")} `, reason);
  }
}

document.getElementById("verify").addEventListener("click", async () => {
  verifyStatus.dataset.state = "checking";
  verifyStatus.textContent = t("recordings.verify_checking");
  const result = await api("POST", `/api/v1/recordings/${current.id}/verify`);
  if (!result.ok) {
    resetVerification();
    notify(errorText(result));
    return;
  }
  showVerification(result.body);
});

async function restore() {
  const asked = new URLSearchParams(window.location.search);
  const open = asked.get("open");
  asked.delete("open");
  if ([...asked.keys()].length || open) {
    for (const [name, value] of asked) {
      const field = form.elements.namedItem(name);
      if (field && field.tagName === "SELECT") field.value = value;
    }
    asked.set("limit", "20");
    query = asked;
    await search(null);
    if (open && /^[0-9a-f]{32}$/.test(open)) await openDetail(open);
  }
  document.body.dataset.loaded = "true";
}

restore();
