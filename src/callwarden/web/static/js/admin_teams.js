// The teams page of the admin console: the teams (GET /api/v1/teams), create (POST), rename
// and move under another team or to the top level (PATCH /api/v1/teams/{id}; the server
// refuses a cycle). The parent lists follow the list as it is loaded.
import { label, t } from "./common.js";
import {
  cell, detailPanel, formFields, loadList, onCreate, rowButton, rowHeader, send, showDone,
} from "./admin_common.js";

const parentSelects = [document.getElementById("e-parent"), document.getElementById("c-parent")];
const panel = detailPanel();

let teams = [];

function teamName(team) {
  return team.display_name || team.name;
}

function renderRow(team) {
  const byId = new Map(teams.map((other) => [other.id, other]));
  const row = document.createElement("tr");
  row.dataset.teamId = String(team.id);
  const name = rowHeader(row, `team-${team.id}`, team.name);
  cell(row, team.display_name || "—");
  const parent = team.parent_id === null ? null : byId.get(team.parent_id);
  if (parent) cell(row, teamName(parent));
  else cell(row, team.parent_id === null ? t("admin.teams.top_level") : String(team.parent_id), true);
  const policy = team.monitoring_transparency ?? "default";
  cell(row, label("admin.teams.transparency", policy), true);
  cell(row, "", true).append(rowButton(name, t("admin.teams.edit"), () => show(team)));
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
  document.getElementById("d-name").textContent = team.name;
  document.getElementById("e-display").value = team.display_name || team.name;
  document.getElementById("e-parent").value = team.parent_id === null ? "" : String(team.parent_id);
  document.getElementById("e-transparency").value = team.monitoring_transparency ?? "";
  panel.open(team);
  document.getElementById("e-display").focus();
}

async function load() {
  const received = (items) => {
    teams = items;
  };
  const body = await loadList("/api/v1/teams?limit=200", "teams", renderRow, {
    messages: "admin.teams",
    received,
  });
  if (body) fillParents();
}

document.getElementById("edit").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!panel.selected) return;
  const parent = document.getElementById("e-parent").value;
  const body = {
    display_name: document.getElementById("e-display").value.trim(),
    parent_id: parent ? Number(parent) : null,
    monitoring_transparency: document.getElementById("e-transparency").value || null,
  };
  const result = await send("PATCH", `/api/v1/teams/${panel.selected.id}`, body, panel.status);
  if (!result) return;
  showDone(panel.status, t("admin.teams.saved", { name: result.body.name }));
  panel.selected = result.body;
  await load();
});

onCreate(
  "create",
  "create-status",
  "/api/v1/teams",
  (form) => formFields(form, ["parent_id"]),
  (team) => t("admin.teams.created", { name: team.name }),
  load,
);

load();
