// The roles page of the admin console: the roles and their grants (GET /api/v1/roles), and a
// custom role created (POST, with no grants) and its grants replaced whole
// (PUT /api/v1/roles/{id}/grants). The built-in roles are
// fixed and shown read-only. The granting rule refuses grants the admin does not hold
// (403 grant_not_held): the refusal names them.
import { api, formatNumber, t } from "./common.js";
import { cell, formFields, showDone, showRefusal } from "./admin_common.js";

const tbody = document.querySelector("#roles tbody");
const listStatus = document.getElementById("list-status");
const detail = document.getElementById("detail");
const detailStatus = document.getElementById("d-status");
const grantsForm = document.getElementById("grants-form");
const selects = [...grantsForm.querySelectorAll("select[name=grant]")];
const saveButton = document.getElementById("save-grants");

let selected = null;
document.body.dataset.loads = "true";

function kindText(role) {
  return role.builtin ? t("admin.roles.builtin") : t("admin.roles.custom");
}

function renderRow(role) {
  const row = document.createElement("tr");
  row.dataset.roleId = String(role.id);
  const name = document.createElement("th");
  name.scope = "row";
  name.id = `role-${role.id}`;
  name.setAttribute("translate", "no");
  name.textContent = role.name;
  row.append(name);
  cell(row, role.description || "—");
  cell(row, kindText(role), true);
  cell(row, formatNumber(role.grants.length));
  const open = document.createElement("button");
  open.type = "button";
  open.className = "secondary";
  open.textContent = role.builtin ? t("admin.roles.view") : t("admin.roles.edit");
  open.setAttribute("aria-describedby", name.id);
  open.addEventListener("click", () => show(role));
  cell(row, "", true).append(open);
  return row;
}

/** Shows `role`'s grants: one select per permission, set to the scope the role holds. */
function show(role) {
  selected = role;
  const held = new Set(role.grants);
  for (const select of selects) {
    const option = [...select.options].find((candidate) => held.has(candidate.value));
    select.value = option ? option.value : "";
    select.disabled = role.builtin;
  }
  document.getElementById("d-name").textContent = role.name;
  document.getElementById("d-builtin").hidden = !role.builtin;
  saveButton.hidden = role.builtin;
  detailStatus.textContent = "";
  document.getElementById("o-patterns").value = role.outbound_patterns.join("\n");
  document.getElementById("o-status").textContent = "";
  detail.hidden = false;
  (role.builtin ? document.getElementById("close-detail") : selects[0]).focus();
}

async function load() {
  const result = await api("GET", "/api/v1/roles?limit=200");
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, listStatus);
    return;
  }
  tbody.replaceChildren(...result.body.items.map(renderRow));
  listStatus.textContent = t("admin.roles.count", { count: formatNumber(result.body.total) });
  if (selected) {
    const fresh = result.body.items.find((role) => role.id === selected.id);
    if (fresh) selected = fresh;
  }
}

grantsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!selected || selected.builtin) return;
  const grants = selects.map((select) => select.value).filter((value) => value);
  const result = await api("PUT", `/api/v1/roles/${selected.id}/grants`, { grants });
  if (!result.ok) {
    show(selected); // the role keeps its grants: show them as they are
    showRefusal(result, detailStatus);
    return;
  }
  showDone(detailStatus, t("admin.roles.saved", { name: result.body.name }));
  selected = result.body;
  await load();
});

// The outbound allow-list: one dial pattern a line, replaced whole (built-in roles too).
document.getElementById("patterns-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!selected) return;
  const status = document.getElementById("o-status");
  const outbound_patterns = document
    .getElementById("o-patterns")
    .value.split("\n")
    .map((line) => line.trim())
    .filter((line) => line);
  const path = `/api/v1/roles/${selected.id}/outbound-patterns`;
  const result = await api("PUT", path, { outbound_patterns });
  if (!result.ok) {
    showRefusal(result, status);
    return;
  }
  selected = result.body;
  showDone(status, t("admin.roles.outbound_saved", { name: result.body.name }));
  await load();
});

document.getElementById("close-detail").addEventListener("click", () => {
  detail.hidden = true;
  selected = null;
});

document.getElementById("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const status = document.getElementById("create-status");
  const result = await api("POST", "/api/v1/roles", { ...formFields(form), grants: [] });
  if (!result.ok) {
    showRefusal(result, status);
    return;
  }
  showDone(status, t("admin.roles.created", { name: result.body.name }));
  form.reset();
  await load();
  show(result.body); // the new role, ready for its grants
});

load();
