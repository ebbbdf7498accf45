// The audit page: the trail with filters (GET /api/v1/audit/entries, paged by offset), the
// chain's verification (POST /api/v1/audit/verify), and the shortcuts "who listened to this
// call" (recording.play of the recording and monitoring.* of its call) and "who monitored this
// operator" (monitoring.* entries whose details name the operator). Every read is audited by
// the server.
import { api, errorText, formatNumber, label, notify, t } from "./common.js";
import { centerTimeToIso, formatDateTime } from "./when.js";

const PAGE = 50;
const SHORTCUT_LIMIT = 500;
const form = document.getElementById("filters");
const tbody = document.querySelector("#entries tbody");
const status = document.getElementById("entries-status");
const previousButton = document.getElementById("previous-page");
const nextButton = document.getElementById("next-page");
const chain = document.getElementById("chain-status");

let filters = new URLSearchParams();
document.body.dataset.loads = "true"; // until the first entries and the chain's status are in
let offset = 0;

function filterParameters() {
  const data = new FormData(form);
  const parameters = new URLSearchParams();
  for (const field of ["actor_user_id", "action_prefix", "object_kind", "object_id", "outcome"]) {
    const value = (data.get(field) || "").trim();
    if (value) parameters.set(field, value);
  }
  for (const field of ["since", "until"]) {
    const value = centerTimeToIso(data.get(field));
    if (value) parameters.set(field, value);
  }
  return parameters;
}

function cell(row, text, translate = false) {
  const element = document.createElement("td");
  element.textContent = text;
  if (!translate) element.setAttribute("translate", "no");
  row.append(element);
}

function renderEntries(entries) {
  tbody.replaceChildren();
  for (const entry of entries) {
    const row = document.createElement("tr");
    row.dataset.action = entry.action;
    const sequence = document.createElement("th");
    sequence.scope = "row";
    sequence.setAttribute("translate", "no");
    sequence.textContent = String(entry.sequence);
    row.append(sequence);
    cell(row, formatDateTime(entry.recorded_at), true);
    cell(row, entry.actor_name);
    cell(row, entry.action);
    cell(row, entry.object_kind ? `${entry.object_kind} ${entry.object_id ?? ""}`.trim() : "—");
    cell(row, label("audit.outcome", entry.outcome), true);
    cell(row, entry.reason ?? "—");
    cell(row, entry.source_address ?? "—");
    tbody.append(row);
  }
}

async function entries(parameters) {
  const result = await api("GET", `/api/v1/audit/entries?${parameters}`);
  if (!result.ok) {
    notify(errorText(result));
    return null;
  }
  return result.body;
}

let pinnedUntil = null; // the pages after the first end where it began (see load)

/** One page of entries. Reading the trail adds entries to it (each read is audited), so the
 *  pages after the first are pinned to end just after the first page's newest entry: the
 *  offsets then keep pointing at the same entries. */
async function load() {
  const parameters = new URLSearchParams(filters);
  if (offset === 0) pinnedUntil = null;
  else if (pinnedUntil && !parameters.has("until")) parameters.set("until", pinnedUntil);
  parameters.set("limit", String(PAGE + 1));
  parameters.set("offset", String(offset));
  const found = await entries(parameters);
  if (found === null) return;
  if (offset === 0 && found.length) {
    pinnedUntil = new Date(Date.parse(found[0].recorded_at) + 1).toISOString();
  }
  renderEntries(found.slice(0, PAGE));
  previousButton.disabled = offset === 0;
  nextButton.disabled = found.length <= PAGE;
  status.textContent = found.length
    ? t("audit.showing", { from: offset + 1, to: offset + Math.min(found.length, PAGE) })
    : t("audit.nothing_found");
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  filters = filterParameters();
  offset = 0;
  // Kept in the URL: a reload (the language switch) or a shared link shows the same entries.
  window.history.replaceState(null, "", `${window.location.pathname}?${filters}`);
  load();
});

/** The filters of the URL into the form and the query (the dates stay as given, in UTC). */
function filtersFromUrl(asked) {
  const kept = new URLSearchParams();
  for (const name of ["actor_user_id", "action_prefix", "object_kind", "object_id", "outcome", "since", "until"]) {
    const value = asked.get(name);
    if (!value) continue;
    kept.set(name, value);
    const field = form.elements.namedItem(name);
    if (field && field.type !== "datetime-local") field.value = value;
  }
  return kept;
}
previousButton.addEventListener("click", () => {
  offset = Math.max(0, offset - PAGE);
  load();
});
nextButton.addEventListener("click", () => {
  offset += PAGE;
  load();
});

/** Plays of the recording and monitoring of the call, newest first: who listened. */
async function whoListened(recordingId, callId) {
  const queries = [];
  if (recordingId) {
    queries.push(new URLSearchParams({ action_prefix: "recording.play", object_id: recordingId }));
  }
  if (callId) queries.push(new URLSearchParams({ action_prefix: "monitoring.", object_id: callId }));
  const found = [];
  for (const parameters of queries) {
    parameters.set("limit", String(SHORTCUT_LIMIT));
    const page = await entries(parameters);
    if (page === null) return;
    found.push(...page);
  }
  found.sort((a, b) => b.sequence - a.sequence);
  showShortcut(found, "audit.listened_to", { what: recordingId || callId });
}

async function whoMonitored(operatorId) {
  const parameters = new URLSearchParams({ action_prefix: "monitoring.", limit: String(SHORTCUT_LIMIT) });
  const page = await entries(parameters);
  if (page === null) return;
  const found = page.filter((entry) => String(entry.details.operator_id) === String(operatorId));
  const name = document.querySelector(`#a-actor option[value="${CSS.escape(String(operatorId))}"]`);
  showShortcut(found, "audit.monitored_operator", { what: name ? name.textContent : operatorId });
}

function showShortcut(found, key, values) {
  renderEntries(found);
  previousButton.disabled = true;
  nextButton.disabled = true;
  status.textContent = `${t(key, values)} ${t("audit.shortcut_count", { count: found.length })}`;
}

document.getElementById("who-listened-call").addEventListener("click", () => {
  const objectId = document.getElementById("a-object").value.trim();
  if (!objectId) {
    notify(t("audit.need_object"));
    document.getElementById("a-object").focus();
    return;
  }
  whoListened(objectId, objectId);
});

document.getElementById("who-monitored-operator").addEventListener("click", () => {
  const operatorId = document.getElementById("a-actor").value;
  if (!operatorId) {
    notify(t("audit.need_person"));
    document.getElementById("a-actor").focus();
    return;
  }
  whoMonitored(operatorId);
});

async function verifyChain() {
  chain.dataset.state = "checking";
  chain.textContent = t("audit.chain_checking");
  const result = await api("POST", "/api/v1/audit/verify", {});
  if (!result.ok) {
    chain.dataset.state = "unknown";
    chain.textContent = t("audit.chain_unknown");
    notify(errorText(result));
    return;
  }
  const view = result.body;
  chain.dataset.state = view.intact ? "intact" : "broken";
  if (view.intact) withNumber(chain, "audit.chain_intact", "count", view.verified);
  else withNumber(chain, "audit.chain_broken", "sequence", view.broken ? view.broken.sequence : "?");
}

/** The message `key` with its number in an element of its own, marked as data. */
function withNumber(element, key, name, value) {
  const [before, after] = t(key, { [name]: "\u0000" }).split("\u0000");
  const number = document.createElement("data");
  number.value = String(value);
  number.textContent = typeof value === "number" ? formatNumber(value) : String(value);
  number.setAttribute("translate", "no");
  element.replaceChildren(before, number, after ?? "");
}

document.getElementById("verify-chain").addEventListener("click", verifyChain);

// A link from a recording ("who listened to this call") opens the page on that shortcut.
async function start() {
  const asked = new URLSearchParams(window.location.search);
  if (asked.get("listened") || asked.get("call")) {
    document.getElementById("a-object").value = asked.get("listened") || asked.get("call");
    await whoListened(asked.get("listened"), asked.get("call"));
  } else {
    filters = filtersFromUrl(asked);
    await load();
  }
  await verifyChain();
  document.body.dataset.loaded = "true";
}

start();
