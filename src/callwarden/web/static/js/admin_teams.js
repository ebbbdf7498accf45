// The teams page of the admin console: the teams (GET /api/v1/teams), create (POST), rename
// and move under another team or to the top level (PATCH /api/v1/teams/{id}; the server
// refuses a cycle). The parent lists follow the list as it is loaded.
import { api, formatNumber, label, t } from "./common.js";
import { cell, formFields, showDone, showRefusal } from "./admin_common.js";

const tbody = document.querySelector("#teams tbody");
const listStatus = document.getElementById("list-status");
const detail = document.getElementById("detail");
const detailStatus = document.getElementById("d-status");
const parentSelects = [document.getElementById("e-parent"), document.getElementById("c-parent")];

let teams = [];
let selected = null;
document.body.dataset.loads = "true";

function teamName(team) {
  return team.display_name || team.name;
}

function renderRow(team) {
  const byId = new Map(teams.map((other) => [other.id, other]));
  const row = document.createElement("tr");
  row.dataset.teamId = String(team.id);
  const name = document.createElement("th");
  name.scope = "row";
  name.id = `team-${team.id}`;
  name.setAttribute("translate", "no");
  name.textContent = team.name;
  row.append(name);
  cell(row, team.display_name || "—");
  const parent = team.parent_id === null ? null : byId.get(team.parent_id);
  if (parent) cell(row, teamName(parent));
  else cell(row, team.parent_id === null ? t("admin.teams.top_level") : String(team.parent_id), true);
  const policy = team.monitoring_transparency ?? "default";
  cell(row, label("admin.teams.transparency", policy), true);
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "secondary";
  edit.textContent = t("admin.teams.edit");
  edit.setAttribute("aria-describedby", name.id);
  edit.addEventListener("click", () => show(team));
  cell(row, "", true).append(edit);
  return row;
}

/** The parent lists name every team loaded (a team just created included). */
function fillParents() {
  for (const select of parentSelects) {
    const kept = select.value;
    const topLevel = select.options[0];
    const options = teams.map((team) => {
      const option = document.createElement("option");
      option.value = String(team.id);
      option.textContent = teamName(team);
      option.setAttribute("translate", "no");
      return option;
    });
    select.replaceChildren(topLevel, ...options);
    select.value = kept;
  }
}

function show(team) {
  selected = team;
  document.getElementById("d-name").textContent = team.name;
  document.getElementById("e-display").value = team.display_name || team.name;
  document.getElementById("e-parent").value = team.parent_id === null ? "" : String(team.parent_id);
  document.getElementById("e-transparency").value = team.monitoring_transparency ?? "";
  detailStatus.textContent = "";
  detail.hidden = false;
  document.getElementById("e-display").focus();
}

async function load() {
  const result = await api("GET", "/api/v1/teams?limit=200");
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, listStatus);
    return;
  }
  teams = result.body.items;
  tbody.replaceChildren(...teams.map(renderRow));
  listStatus.textContent = t("admin.teams.count", { count: formatNumber(result.body.total) });
  fillParents();
}

document.getElementById("edit").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!selected) return;
  const parent = document.getElementById("e-parent").value;
  const body = {
    display_name: document.getElementById("e-display").value.trim(),
    parent_id: parent ? Number(parent) : null,
    monitoring_transparency: document.getElementById("e-transparency").value || null,
  };
  const result = await api("PATCH", `/api/v1/teams/${selected.id}`, body);
  if (!result.ok) {
    showRefusal(result, detailStatus);
    return;
  }
  showDone(detailStatus, t("admin.teams.saved", { name: result.body.name }));
  selected = result.body;
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
  const result = await api("POST", "/api/v1/teams", formFields(form, ["parent_id"]));
  if (!result.ok) {
    showRefusal(result, status);
    return;
  }
  showDone(status, t("admin.teams.created", { name: result.body.name }));
  form.reset();
  await load();
});

load();
