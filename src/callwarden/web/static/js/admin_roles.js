// The roles page of the admin console: the roles and their grants (GET /api/v1/roles), and a
// custom role created (POST, with no grants) and its grants replaced whole
// (PUT /api/v1/roles/{id}/grants). The built-in roles are
// fixed and shown read-only. The granting rule refuses grants the admin does not hold
// (403 grant_not_held): the refusal names them.
import { api, formatNumber, t } from "./common.js";
import {
  cell, detailPanel, formFields, lines, loadList, onCreate, rowButton, rowHeader, send, showDone,
  showRefusal,
} from "./admin_common.js";

const grantsForm = document.getElementById("grants-form");
const selects = [...grantsForm.querySelectorAll("select[name=grant]")];
const saveButton = document.getElementById("save-grants");
const panel = detailPanel();

function kindText(role) {
  return role.builtin ? t("admin.roles.builtin") : t("admin.roles.custom");
}

function renderRow(role) {
  const row = document.createElement("tr");
  row.dataset.roleId = String(role.id);
  const name = rowHeader(row, `role-${role.id}`, role.name);
  cell(row, role.description || "—");
  cell(row, kindText(role), true);
  cell(row, formatNumber(role.grants.length));
  const text = role.builtin ? t("admin.roles.view") : t("admin.roles.edit");
  cell(row, "", true).append(rowButton(name, text, () => show(role)));
  return row;
}

/** Shows `role`'s grants: one select per permission, set to the scope the role holds. */
function show(role) {
  const held = new Set(role.grants);
  for (const select of selects) {
    const option = [...select.options].find((candidate) => held.has(candidate.value));
    select.value = option ? option.value : "";
    select.disabled = role.builtin;
  }
  document.getElementById("d-name").textContent = role.name;
  document.getElementById("d-builtin").hidden = !role.builtin;
  saveButton.hidden = role.builtin;
  document.getElementById("o-patterns").value = role.outbound_patterns.join("\n");
  document.getElementById("o-status").textContent = "";
  panel.open(role);
  (role.builtin ? document.getElementById("close-detail") : selects[0]).focus();
}

async function load() {
  const body = await loadList("/api/v1/roles?limit=200", "roles", renderRow, {
    messages: "admin.roles",
  });
  if (body && panel.selected) {
    const fresh = body.items.find((role) => role.id === panel.selected.id);
    if (fresh) panel.selected = fresh;
  }
}

grantsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const selected = panel.selected;
  if (!selected || selected.builtin) return;
  const grants = selects.map((select) => select.value).filter((value) => value);
  const result = await api("PUT", `/api/v1/roles/${selected.id}/grants`, { grants });
  if (!result.ok) {
    show(selected); // the role keeps its grants: show them as they are
    showRefusal(result, panel.status);
    return;
  }
  showDone(panel.status, t("admin.roles.saved", { name: result.body.name }));
  panel.selected = result.body;
  await load();
});

// The outbound allow-list: one dial pattern a line, replaced whole (built-in roles too).
document.getElementById("patterns-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!panel.selected) return;
  const status = document.getElementById("o-status");
  const path = `/api/v1/roles/${panel.selected.id}/outbound-patterns`;
  const result = await send("PUT", path, { outbound_patterns: lines("o-patterns") }, status);
  if (!result) return;
  panel.selected = result.body;
  showDone(status, t("admin.roles.outbound_saved", { name: result.body.name }));
  await load();
});

onCreate(
  "create",
  "create-status",
  "/api/v1/roles",
  (form) => ({ ...formFields(form), grants: [] }),
  (role) => t("admin.roles.created", { name: role.name }),
  async (role) => {
    await load();
    show(role); // the new role, ready for its grants
  },
);

load();
