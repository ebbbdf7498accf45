// The legal holds page: the holds (GET /api/v1/legal-holds, released ones on request), a hold
// placed on a recording, a call, a person or a queue (POST, reason required) and released
// (POST .../release, reason required). Recordings under a hold are never purged or deleted.
// The server audits each (`recording.hold`, `recording.release`); a refusal is shown.
import { api, formatNumber, label, t } from "./common.js";
import { cell, names, showDone, showRefusal } from "./admin_common.js";
import { formatDateTime } from "./when.js";

const tbody = document.querySelector("#holds tbody");
const listStatus = document.getElementById("list-status");
const showReleased = document.getElementById("show-released");
const release = document.getElementById("release");
const releaseStatus = document.getElementById("release-status");
const kind = document.getElementById("p-kind");
let releasing = null;
document.body.dataset.loads = "true";

function targetName(hold) {
  if (hold.target_kind === "user") return names.users[hold.target_id] ?? hold.target_id;
  if (hold.target_kind === "queue") return names.queues[hold.target_id] ?? hold.target_id;
  return hold.target_id;
}

function renderRow(hold) {
  const row = document.createElement("tr");
  row.dataset.holdId = String(hold.id);
  const target = document.createElement("th");
  target.scope = "row";
  target.id = `hold-${hold.id}`;
  target.setAttribute("translate", "no");
  target.textContent = targetName(hold);
  row.append(target);
  cell(row, label("admin.holds.kind", hold.target_kind), true);
  cell(row, hold.reason);
  const placedBy = hold.placed_by === null ? "" : names.users[String(hold.placed_by)] ?? "";
  cell(row, `${formatDateTime(hold.placed_at)} ${placedBy}`.trim());
  const active = hold.released_at === null;
  cell(
    row,
    active
      ? t("admin.holds.active")
      : t("admin.holds.released", { when: formatDateTime(hold.released_at) }),
    true,
  );
  const actions = cell(row, "", true);
  if (active) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    button.textContent = t("admin.holds.release");
    button.setAttribute("aria-describedby", target.id);
    button.addEventListener("click", () => openRelease(hold));
    actions.append(button);
  }
  return row;
}

function openRelease(hold) {
  releasing = hold;
  document.getElementById("r-target").textContent = targetName(hold);
  document.getElementById("r-reason").value = "";
  releaseStatus.textContent = "";
  release.hidden = false;
  document.getElementById("r-reason").focus();
}

async function load() {
  const active = showReleased.checked ? "false" : "true";
  const result = await api("GET", `/api/v1/legal-holds?active=${active}`);
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, listStatus);
    return;
  }
  const holds = result.body.items;
  if (holds.length) tbody.replaceChildren(...holds.map(renderRow));
  else {
    const row = document.createElement("tr");
    cell(row, t("admin.holds.none"), true).colSpan = 6;
    tbody.replaceChildren(row);
  }
  listStatus.textContent = t("admin.holds.count", { count: formatNumber(holds.length) });
}

function followKind() {
  document.getElementById("p-text-field").hidden = !["recording", "call"].includes(kind.value);
  document.getElementById("p-user-field").hidden = kind.value !== "user";
  document.getElementById("p-queue-field").hidden = kind.value !== "queue";
}

function targetId() {
  if (kind.value === "user") return document.getElementById("p-user").value;
  if (kind.value === "queue") return document.getElementById("p-queue").value;
  return document.getElementById("p-text").value.trim();
}

document.getElementById("place-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("place-status");
  const body = {
    target_kind: kind.value,
    target_id: targetId(),
    reason: document.getElementById("p-reason").value.trim(),
  };
  const result = await api("POST", "/api/v1/legal-holds", body);
  if (!result.ok) {
    showRefusal(result, status);
    return;
  }
  showDone(status, t("admin.holds.placed_done", { target: targetName(result.body) }));
  event.target.reset();
  followKind();
  await load();
});

document.getElementById("release-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!releasing) return;
  const body = { hold_id: releasing.id, reason: document.getElementById("r-reason").value.trim() };
  const result = await api("POST", "/api/v1/legal-holds/release", body);
  if (!result.ok) {
    showRefusal(result, releaseStatus);
    return;
  }
  showDone(listStatus, t("admin.holds.released_done", { target: targetName(result.body) }));
  release.hidden = true;
  releasing = null;
  await load();
  showDone(listStatus, t("admin.holds.released_done", { target: targetName(result.body) }));
});

document.getElementById("close-release").addEventListener("click", () => {
  release.hidden = true;
  releasing = null;
});

kind.addEventListener("change", followKind);
showReleased.addEventListener("change", load);
followKind();
load();
