// The trunks page of the admin console: the SIP carriers (GET /api/v1/trunks), one opened in a
// form to change its address, credentials, numbers and outbound routes (PATCH), a new one
// (POST) and removal (DELETE). The password is write-only: left empty, it is kept.
import { t } from "./common.js";
import { cell, lines, loadList, objectForm, rowButton, rowHeader } from "./admin_common.js";

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

function inboundText(inbound) {
  return inbound.destination === null ? inbound.number : `${inbound.number} ${inbound.destination}`;
}

function renderRow(trunk) {
  const row = document.createElement("tr");
  const name = rowHeader(row, `trunk-${trunk.id}`, trunk.name);
  cell(row, `${trunk.host}:${trunk.port} (${trunk.transport.toUpperCase()})`);
  cell(row, trunk.inbound_numbers.map(inboundText).join(", "));
  cell(row, trunk.outbound_patterns.join(", "));
  const states = [t(trunk.enabled ? "admin.trunks.is_enabled" : "admin.trunks.is_disabled")];
  if (trunk.register) states.push(t("admin.trunks.registers"));
  cell(row, states.join(t("admin.trunks.separator")), true);
  cell(row, "", true).append(rowButton(name, t("admin.trunks.edit"), () => editor.show(trunk)));
  return row;
}

function fill(values) {
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
  await loadList("/api/v1/trunks", "trunks", renderRow, { messages: "admin.trunks", columns: 6 });
}

const editor = objectForm({
  kind: "trunks",
  path: "/api/v1/trunks",
  form: "trunk-form",
  defaults: DEFAULTS,
  fill,
  body: formBody,
  patch: (body) => body,
  focus: "f-host",
  load,
});

load();
