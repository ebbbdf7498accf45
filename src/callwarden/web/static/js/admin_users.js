// The users page of the admin console: the list with filters (GET /api/v1/users), create
// (POST), and for one user: name, team and extension (PATCH), change role (PUT .../role), new SIP password and web password
// (PATCH), MFA reset (POST .../mfa/reset), disable and enable. The server decides and audits
// every change; a refusal is shown with its reason.
import { t } from "./common.js";
import {
  cell, detailPanel, formFields, loadList, names, onCreate, rowButton, rowHeader, send, showDone,
} from "./admin_common.js";

const PAGE = 50;
const filters = document.getElementById("filters");
const listStatus = document.getElementById("list-status");
const previousButton = document.getElementById("previous-page");
const nextButton = document.getElementById("next-page");
const toggle = document.getElementById("toggle-enabled");
const panel = detailPanel();

let offset = 0;

function query() {
  const parameters = new URLSearchParams(formFields(filters));
  parameters.set("limit", String(PAGE));
  parameters.set("offset", String(offset));
  return parameters;
}

function statusText(user) {
  return user.enabled ? t("admin.users.enabled") : t("admin.users.disabled");
}

function renderRow(user) {
  const row = document.createElement("tr");
  row.dataset.userId = String(user.id);
  row.dataset.enabled = String(user.enabled);
  const name = rowHeader(row, `user-${user.id}`, user.username);
  cell(row, user.display_name || "—");
  cell(row, user.role);
  cell(row, user.team_id === null ? "—" : names.teams[String(user.team_id)] ?? String(user.team_id));
  cell(row, user.extension ?? "—");
  cell(row, statusText(user), true).className = "user-status";
  cell(row, "", true).append(rowButton(name, t("admin.manage"), () => open(user)));
  return row;
}

async function load() {
  const path = `/api/v1/users?${query()}`;
  const body = await loadList(path, "users", renderRow, { messages: "admin.users" });
  if (!body) return;
  listStatus.dataset.kind = "";
  previousButton.disabled = offset === 0;
  nextButton.disabled = offset + body.items.length >= body.total;
  if (panel.selected) {
    const fresh = body.items.find((user) => user.id === panel.selected.id);
    if (fresh) showSelected(fresh);
  }
}

function showSelected(user) {
  panel.selected = user;
  document.getElementById("d-username").textContent = user.username;
  document.getElementById("d-role").value = String(user.role_id);
  document.getElementById("d-display").value = user.display_name;
  document.getElementById("d-team").value = user.team_id === null ? "" : String(user.team_id);
  document.getElementById("d-extension").value = user.extension ?? "";
  const supervised = new Set(user.supervised_team_ids.map(String));
  for (const box of document.querySelectorAll(".d-supervises")) {
    box.checked = supervised.has(box.value);
  }
  toggle.dataset.enabled = String(user.enabled);
  toggle.textContent = user.enabled ? t("admin.users.disable") : t("admin.users.enable");
}

function open(user) {
  showSelected(user);
  panel.open(user);
  document.getElementById("d-display").focus();
}

/** Runs one change of the selected user; on success says `doneKey` and reloads the list. */
async function change(method, path, body, doneKey, values = {}) {
  const selected = panel.selected;
  if (!selected) return null;
  const result = await send(method, path, body, panel.status);
  if (!result) return null;
  showDone(panel.status, t(doneKey, { username: selected.username, ...values }));
  await load();
  return result;
}

const base = () => `/api/v1/users/${panel.selected.id}`;

document.getElementById("details-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const team = document.getElementById("d-team").value;
  const extension = document.getElementById("d-extension").value.trim();
  const body = {
    display_name: document.getElementById("d-display").value.trim(),
    team_id: team ? Number(team) : null,
    extension: extension || null,
  };
  await change("PATCH", base(), body, "admin.users.details_saved");
});

// The teams the user supervises (their team-scope grants reach these and the teams below).
document.getElementById("supervises-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const supervises = [...document.querySelectorAll(".d-supervises")]
    .filter((box) => box.checked)
    .map((box) => Number(box.value));
  await change("PATCH", base(), { supervises }, "admin.users.supervises_saved");
});

document.getElementById("role-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const roleId = Number(document.getElementById("d-role").value);
  await change("PUT", `${base()}/role`, { role_id: roleId }, "admin.users.role_changed", {
    role: names.roles[String(roleId)] ?? String(roleId),
  });
});

for (const [formId, field, doneKey] of [
  ["sip-form", "sip_password", "admin.users.sip_reset_done"],
  ["password-form", "password", "admin.users.password_set_done"],
]) {
  const form = document.getElementById(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = form.elements.namedItem(field);
    const done = await change("PATCH", base(), { [field]: input.value }, doneKey);
    if (done) input.value = "";
  });
}

document.getElementById("reset-mfa").addEventListener("click", async () => {
  const selected = panel.selected;
  if (!selected) return;
  const result = await send("POST", `${base()}/mfa/reset`, undefined, panel.status);
  if (!result) return;
  const key = result.body.had_mfa ? "admin.users.mfa_reset_done" : "admin.users.mfa_none";
  showDone(panel.status, t(key, { username: selected.username }));
});

toggle.addEventListener("click", async () => {
  const enabled = toggle.dataset.enabled === "true";
  const action = enabled ? "disable" : "enable";
  const doneKey = enabled ? "admin.users.disabled_done" : "admin.users.enabled_done";
  await change("POST", `${base()}/${action}`, undefined, doneKey);
});

onCreate(
  "create",
  "create-status",
  "/api/v1/users",
  (form) => formFields(form, ["role_id", "team_id"]),
  (user) => t("admin.users.created", { username: user.username }),
  load,
);

filters.addEventListener("submit", (event) => {
  event.preventDefault();
  offset = 0;
  load();
});
previousButton.addEventListener("click", () => {
  offset = Math.max(0, offset - PAGE);
  load();
});
nextButton.addEventListener("click", () => {
  offset += PAGE;
  load();
});

load();
