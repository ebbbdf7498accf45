// The retention page of the admin console: how long recordings are kept, by default, per team
// and per queue (GET /api/v1/retention-policies), set or removed (PUT, `days: null` removes).
// The server audits each change (`retention.update`); a refusal is shown with its reason.
import { formatNumber, label, t } from "./common.js";
import { cell, loadList, names, rowButton, rowHeader, send, showDone } from "./admin_common.js";
import { formatDateTime } from "./when.js";

const tbody = document.querySelector("#policies tbody");
const listStatus = document.getElementById("list-status");
const form = document.getElementById("set");
const scope = document.getElementById("r-scope");
const team = document.getElementById("r-team");
const queue = document.getElementById("r-queue");

function target(policy) {
  if (policy.scope === "team") return names.teams[String(policy.team_id)] ?? String(policy.team_id);
  if (policy.scope === "queue") return names.queues[String(policy.queue_id)] ?? String(policy.queue_id);
  return null;
}

function body(policy, days) {
  return { scope: policy.scope, team_id: policy.team_id, queue_id: policy.queue_id, days };
}

function renderRow(policy, index) {
  const row = document.createElement("tr");
  row.dataset.scope = policy.scope;
  const kind = rowHeader(row, `policy-${index}`, label("admin.retention.scope", policy.scope), true);
  const name = target(policy);
  if (name === null) cell(row, t("admin.retention.everything"), true);
  else cell(row, name);
  cell(row, t("admin.retention.days_value", { days: formatNumber(policy.days) }), true);
  const remove = () => change(body(policy, null), listStatus);
  cell(row, "", true).append(rowButton(kind, t("admin.retention.remove"), remove));
  return row;
}

async function load() {
  await loadList("/api/v1/retention-policies", "policies", renderRow);
}

async function change(request, status) {
  const result = await send("PUT", "/api/v1/retention-policies", request, status);
  if (!result) return;
  showDone(status, t("admin.retention.saved"));
  tbody.replaceChildren(...result.body.items.map(renderRow));
}

function followScope() {
  team.disabled = scope.value !== "team";
  queue.disabled = scope.value !== "queue";
}

scope.addEventListener("change", followScope);
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const request = {
    scope: scope.value,
    team_id: scope.value === "team" ? Number(team.value) : null,
    queue_id: scope.value === "queue" ? Number(queue.value) : null,
    days: Number(document.getElementById("r-days").value),
  };
  await change(request, document.getElementById("set-status"));
});

const purgeStatus = document.getElementById("purge-status");

function showPurge(status) {
  let text = t("admin.purge.never");
  if (status.running) text = t("admin.purge.running", { since: formatDateTime(status.started_at) });
  else if (status.finished_at) {
    text = t("admin.purge.finished", { when: formatDateTime(status.finished_at) });
  }
  purgeStatus.textContent = text;
  delete purgeStatus.dataset.kind;
  for (const key of ["examined", "purged", "held", "failed"]) {
    document.getElementById(`purge-${key}`).textContent = formatNumber(status[key]);
  }
}

async function loadPurge() {
  const result = await send("GET", "/api/v1/retention-policies/purge", undefined, purgeStatus);
  if (result) showPurge(result.body);
}

document.getElementById("purge-start").addEventListener("click", async () => {
  const result = await send("POST", "/api/v1/retention-policies/purge", undefined, purgeStatus);
  if (result) showPurge(result.body);
});

document.getElementById("purge-refresh").addEventListener("click", loadPurge);

followScope();
load();
loadPurge();
