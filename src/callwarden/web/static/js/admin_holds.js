// The legal holds page: the holds (GET /api/v1/legal-holds, released ones on request), a hold
// placed on a recording, a call, a person or a queue (POST, reason required) and released
// (POST .../release, reason required). Recordings under a hold are never purged or deleted.
// The server audits each (`recording.hold`, `recording.release`); a refusal is shown.
import { label, t } from "./common.js";
import {
  cell, loadList, names, onCreate, rowButton, rowHeader, send, showDone,
} from "./admin_common.js";
import { formatDateTime } from "./when.js";

const listStatus = document.getElementById("list-status");
const showReleased = document.getElementById("show-released");
const release = document.getElementById("release");
const releaseStatus = document.getElementById("release-status");
const kind = document.getElementById("p-kind");
let releasing = null;

function targetName(hold) {
  if (hold.target_kind === "user") return names.users[hold.target_id] ?? hold.target_id;
  if (hold.target_kind === "queue") return names.queues[hold.target_id] ?? hold.target_id;
  return hold.target_id;
}

function renderRow(hold) {
  const row = document.createElement("tr");
  row.dataset.holdId = String(hold.id);
  const target = rowHeader(row, `hold-${hold.id}`, targetName(hold));
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
  if (active) actions.append(rowButton(target, t("admin.holds.release"), () => openRelease(hold)));
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
  const path = `/api/v1/legal-holds?active=${active}`;
  await loadList(path, "holds", renderRow, { messages: "admin.holds", columns: 6 });
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

onCreate(
  "place-form",
  "place-status",
  "/api/v1/legal-holds",
  () => ({
    target_kind: kind.value,
    target_id: targetId(),
    reason: document.getElementById("p-reason").value.trim(),
  }),
  (hold) => t("admin.holds.placed_done", { target: targetName(hold) }),
  async () => {
    followKind();
    await load();
  },
);

document.getElementById("release-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!releasing) return;
  const body = { hold_id: releasing.id, reason: document.getElementById("r-reason").value.trim() };
  const result = await send("POST", "/api/v1/legal-holds/release", body, releaseStatus);
  if (!result) return;
  const done = t("admin.holds.released_done", { target: targetName(result.body) });
  showDone(listStatus, done);
  release.hidden = true;
  releasing = null;
  await load();
  showDone(listStatus, done);
});

document.getElementById("close-release").addEventListener("click", () => {
  release.hidden = true;
  releasing = null;
});

kind.addEventListener("change", followKind);
showReleased.addEventListener("change", load);
followKind();
load();
