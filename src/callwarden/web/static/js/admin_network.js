// The network page of the admin console: the address ranges each role or team may sign in
// from (GET /api/v1/sign-in-networks), added (POST) and removed (DELETE). The server refuses a
// change that would shut the admin out (409 would_lock_you_out) and audits each change.
import { api, formatNumber, label, t } from "./common.js";
import { cell, names, showDone, showRefusal } from "./admin_common.js";

const tbody = document.querySelector("#networks tbody");
const listStatus = document.getElementById("list-status");
const kind = document.getElementById("n-kind");
document.body.dataset.loads = "true";

function appliesTo(rule) {
  if (rule.role_id !== null) {
    return [label("admin.network.kind", "role"), names.roles[String(rule.role_id)] ?? ""];
  }
  return [label("admin.network.kind", "team"), names.teams[String(rule.team_id)] ?? ""];
}

function renderRow(rule) {
  const row = document.createElement("tr");
  row.dataset.networkId = String(rule.id);
  const network = document.createElement("th");
  network.scope = "row";
  network.id = `network-${rule.id}`;
  network.setAttribute("translate", "no");
  network.textContent = rule.network;
  row.append(network);
  const [kindText, name] = appliesTo(rule);
  const target = cell(row, `${kindText}: `, true);
  const span = document.createElement("span");
  span.setAttribute("translate", "no");
  span.textContent = name;
  target.append(span);
  cell(row, rule.description);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.className = "secondary";
  remove.textContent = t("admin.network.remove");
  remove.setAttribute("aria-describedby", network.id);
  remove.addEventListener("click", async () => {
    const result = await api("DELETE", `/api/v1/sign-in-networks/${rule.id}`);
    if (!result.ok) {
      showRefusal(result, listStatus);
      return;
    }
    await load();
    showDone(listStatus, t("admin.network.removed", { network: rule.network }));
  });
  cell(row, "", true).append(remove);
  return row;
}

async function load() {
  const result = await api("GET", "/api/v1/sign-in-networks");
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, listStatus);
    return;
  }
  const rules = result.body.items;
  if (rules.length) tbody.replaceChildren(...rules.map(renderRow));
  else {
    const row = document.createElement("tr");
    cell(row, t("admin.network.none"), true).colSpan = 4;
    tbody.replaceChildren(row);
  }
  listStatus.textContent = t("admin.network.count", { count: formatNumber(rules.length) });
}

function followKind() {
  document.getElementById("n-role-field").hidden = kind.value !== "role";
  document.getElementById("n-team-field").hidden = kind.value !== "team";
}

document.getElementById("add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = document.getElementById("add-status");
  const body = {
    network: document.getElementById("n-network").value.trim(),
    description: document.getElementById("n-description").value.trim(),
  };
  if (kind.value === "role") body.role_id = Number(document.getElementById("n-role").value);
  else body.team_id = Number(document.getElementById("n-team").value);
  const result = await api("POST", "/api/v1/sign-in-networks", body);
  if (!result.ok) {
    showRefusal(result, status);
    return;
  }
  showDone(status, t("admin.network.added", { network: result.body.network }));
  event.target.reset();
  followKind();
  await load();
});

kind.addEventListener("change", followKind);
followKind();
load();
