// The network page of the admin console: the address ranges each role or team may sign in
// from (GET /api/v1/sign-in-networks), added (POST) and removed (DELETE). The server refuses a
// change that would shut the admin out (409 would_lock_you_out) and audits each change.
import { label, t } from "./common.js";
import {
  cell, loadList, names, onCreate, rowButton, rowHeader, send, showDone,
} from "./admin_common.js";

const ROUTE = "/api/v1/sign-in-networks";
const listStatus = document.getElementById("list-status");
const kind = document.getElementById("n-kind");

function appliesTo(rule) {
  if (rule.role_id !== null) {
    return [label("admin.network.kind", "role"), names.roles[String(rule.role_id)] ?? ""];
  }
  return [label("admin.network.kind", "team"), names.teams[String(rule.team_id)] ?? ""];
}

function renderRow(rule) {
  const row = document.createElement("tr");
  row.dataset.networkId = String(rule.id);
  const network = rowHeader(row, `network-${rule.id}`, rule.network);
  const [kindText, name] = appliesTo(rule);
  const target = cell(row, `${kindText}: `, true);
  const span = document.createElement("span");
  span.setAttribute("translate", "no");
  span.textContent = name;
  target.append(span);
  cell(row, rule.description);
  const remove = rowButton(network, t("admin.network.remove"), async () => {
    if (!(await send("DELETE", `${ROUTE}/${rule.id}`, undefined, listStatus))) return;
    await load();
    showDone(listStatus, t("admin.network.removed", { network: rule.network }));
  });
  cell(row, "", true).append(remove);
  return row;
}

async function load() {
  await loadList(ROUTE, "networks", renderRow, { messages: "admin.network", columns: 4 });
}

function followKind() {
  document.getElementById("n-role-field").hidden = kind.value !== "role";
  document.getElementById("n-team-field").hidden = kind.value !== "team";
}

function addBody() {
  const body = {
    network: document.getElementById("n-network").value.trim(),
    description: document.getElementById("n-description").value.trim(),
  };
  if (kind.value === "role") body.role_id = Number(document.getElementById("n-role").value);
  else body.team_id = Number(document.getElementById("n-team").value);
  return body;
}

onCreate(
  "add",
  "add-status",
  ROUTE,
  addBody,
  (rule) => t("admin.network.added", { network: rule.network }),
  async () => {
    followKind();
    await load();
  },
);

kind.addEventListener("change", followKind);
followKind();
load();
