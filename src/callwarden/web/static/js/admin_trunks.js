// The trunks page of the admin console: the SIP carriers (GET /api/v1/trunks), one opened in a
// form to change its address, credentials, numbers and outbound routes (PATCH), a new one
// (POST) and removal (DELETE). The password is write-only: left empty, it is kept.
import { api, formatNumber, t } from "./common.js";
import { cell, showDone, showRefusal } from "./admin_common.js";

const tbody = document.querySelector("#trunks tbody");
const listStatus = document.getElementById("list-status");
const detail = document.getElementById("detail");
const detailStatus = document.getElementById("d-status");
const field = (id) => document.getElementById(id);
const DEFAULTS = {
  name: "",
  host: "",
  port: 5060,
  transport: "udp",
  auth_username: null,
  has_password: false,
  register: false,
  enabled: true,
  inbound_numbers: [],
  outbound_patterns: [],
};
let selected = null;
document.body.dataset.loads = "true";

function lines(id) {
  return field(id)
    .value.split("\n")
    .map((line) => line.trim())
    .filter((line) => line);
}

function inboundText(inbound) {
  return inbound.destination === null ? inbound.number : `${inbound.number} ${inbound.destination}`;
}

function renderRow(trunk) {
  const row = document.createElement("tr");
  const name = document.createElement("th");
  name.scope = "row";
  name.id = `trunk-${trunk.id}`;
  name.setAttribute("translate", "no");
  name.textContent = trunk.name;
  row.append(name);
  cell(row, `${trunk.host}:${trunk.port} (${trunk.transport.toUpperCase()})`);
  cell(row, trunk.inbound_numbers.map(inboundText).join(", "));
  cell(row, trunk.outbound_patterns.join(", "));
  const states = [t(trunk.enabled ? "admin.trunks.is_enabled" : "admin.trunks.is_disabled")];
  if (trunk.register) states.push(t("admin.trunks.registers"));
  cell(row, states.join(t("admin.trunks.separator")), true);
  const edit = document.createElement("button");
  edit.type = "button";
  edit.className = "secondary";
  edit.textContent = t("admin.trunks.edit");
  edit.setAttribute("aria-describedby", name.id);
  edit.addEventListener("click", () => show(trunk));
  cell(row, "", true).append(edit);
  return row;
}

function show(trunk) {
  selected = trunk;
  const values = trunk || DEFAULTS;
  field("d-title").textContent = t(trunk ? "admin.trunks.edit" : "admin.trunks.create");
  field("d-name").textContent = trunk ? trunk.name : "";
  field("f-name-field").hidden = trunk !== null;
  field("f-name").value = "";
  field("f-delete").hidden = trunk === null;
  field("f-submit").textContent = t(trunk ? "admin.trunks.save" : "admin.trunks.create_button");
  field("f-host").value = values.host;
  field("f-port").value = String(values.port);
  field("f-transport").value = values.transport;
  field("f-user").value = values.auth_username ?? "";
  field("f-password").value = "";
  field("f-password").placeholder = values.has_password ? t("admin.trunks.password_kept") : "";
  field("f-register").checked = values.register;
  field("f-enabled").checked = values.enabled;
  field("f-inbound").value = values.inbound_numbers.map(inboundText).join("\n");
  field("f-outbound").value = values.outbound_patterns.join("\n");
  detailStatus.textContent = "";
  detail.hidden = false;
  (trunk ? field("f-host") : field("f-name")).focus();
}

function formBody() {
  const port = Number(field("f-port").value);
  const body = {
    host: field("f-host").value.trim(),
    port: Number.isInteger(port) && field("f-port").value ? port : field("f-port").value,
    transport: field("f-transport").value,
    auth_username: field("f-user").value.trim() || null,
    register: field("f-register").checked,
    enabled: field("f-enabled").checked,
    inbound_numbers: lines("f-inbound").map((line) => {
      const [number, destination] = line.split(/\s+/);
      return { number, destination: destination ?? null };
    }),
    outbound_patterns: lines("f-outbound"),
  };
  const password = field("f-password").value;
  if (password) body.password = password;
  return body;
}

async function load() {
  const result = await api("GET", "/api/v1/trunks");
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, listStatus);
    return;
  }
  const trunks = result.body.items;
  if (trunks.length) tbody.replaceChildren(...trunks.map(renderRow));
  else {
    const row = document.createElement("tr");
    cell(row, t("admin.trunks.none"), true).colSpan = 6;
    tbody.replaceChildren(row);
  }
  listStatus.textContent = t("admin.trunks.count", { count: formatNumber(trunks.length) });
}

field("trunk-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = formBody();
  let result;
  if (selected) result = await api("PATCH", `/api/v1/trunks/${selected.id}`, body);
  else result = await api("POST", "/api/v1/trunks", { name: field("f-name").value.trim(), ...body });
  if (!result.ok) {
    showRefusal(result, detailStatus);
    return;
  }
  const key = selected ? "admin.trunks.saved" : "admin.trunks.created";
  await load();
  show(result.body);
  showDone(detailStatus, t(key, { name: result.body.name }));
});

field("f-delete").addEventListener("click", async () => {
  if (!selected) return;
  const name = selected.name;
  const result = await api("DELETE", `/api/v1/trunks/${selected.id}`);
  if (!result.ok) {
    showRefusal(result, detailStatus);
    return;
  }
  detail.hidden = true;
  selected = null;
  showDone(field("create-status"), t("admin.trunks.deleted", { name }));
  await load();
});

field("close-detail").addEventListener("click", () => {
  detail.hidden = true;
  selected = null;
});

field("open-create").addEventListener("click", () => show(null));

load();
