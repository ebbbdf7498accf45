// The queues page of the admin console: the queues (GET /api/v1/queues), one opened in a form
// to change any setting, its members (skill level, penalty) and overflow (PATCH
// /api/v1/queues/{id}), a new one (POST) and deletion (DELETE). The server checks everything
// again (422 names the field, nothing changed) and audits the change; the running ACD follows.
import { label, t } from "./common.js";
import { cell, loadList, names, objectForm, rowButton, rowHeader } from "./admin_common.js";

const overflowQueue = document.getElementById("f-overflow-queue");

const NUMBERS = [
  ["f-required-skill", "required_skill_level"],
  ["f-sl-seconds", "service_level_seconds"],
  ["f-sl-percent", "service_level_percent"],
  ["f-wrap-up", "wrap_up_seconds"],
  ["f-ring-timeout", "ring_timeout_seconds"],
  ["f-max-no-answer", "max_no_answer"],
];
const OPTIONAL_NUMBERS = [
  ["f-max-wait", "max_wait_seconds"],
  ["f-announce", "announce_seconds"],
];
const CHOICES = [
  ["f-strategy", "strategy"],
  ["f-recording", "recording"],
  ["f-music", "music_on_hold"],
];
const DEFAULTS = {
  name: "",
  display_name: "",
  number: "",
  team_id: null,
  strategy: "longest_idle",
  members: [],
  wrap_up_seconds: 10,
  ring_timeout_seconds: 15,
  max_no_answer: 3,
  max_wait_seconds: null,
  service_level_seconds: 20,
  service_level_percent: 80,
  required_skill_level: 0,
  recording: "all",
  overflow: { action: "hangup", queue_id: null, user_id: null },
  announce_seconds: 30,
  music_on_hold: "tones",
};

let queues = [];

const field = (id) => document.getElementById(id);

function personName(userId) {
  return names.users[String(userId)] || String(userId);
}

function membersCell(row, queue) {
  const element = cell(row, "", true);
  if (!queue.members.length) {
    element.textContent = t("admin.queues.no_members");
    return;
  }
  const list = document.createElement("ul");
  list.className = "members";
  for (const member of queue.members) {
    const item = document.createElement("li");
    const person = document.createElement("span");
    person.setAttribute("translate", "no");
    person.textContent = personName(member.user_id);
    item.append(person, ` ${t("admin.queues.skill", { skill: member.skill_level })}`);
    list.append(item);
  }
  element.append(list);
}

function overflowText(queue) {
  const text = label("admin.queues.overflow", queue.overflow.action);
  if (queue.overflow.queue_id !== null) {
    const target = queues.find((other) => other.id === queue.overflow.queue_id);
    return [text, target ? target.display_name || target.name : String(queue.overflow.queue_id)];
  }
  if (queue.overflow.user_id !== null) return [text, personName(queue.overflow.user_id)];
  return [text, null];
}

function seconds(value) {
  return value === null ? t("admin.queues.no_limit") : t("admin.queues.seconds", { seconds: value });
}

function renderRow(queue) {
  const row = document.createElement("tr");
  row.dataset.queueId = String(queue.id);
  const name = rowHeader(row, `queue-${queue.id}`, queue.name);
  cell(row, queue.number);
  cell(row, names.teams[String(queue.team_id)] || String(queue.team_id));
  cell(row, label("admin.queues.strategy", queue.strategy), true);
  membersCell(row, queue);
  cell(row, seconds(queue.wrap_up_seconds), true);
  cell(row, seconds(queue.ring_timeout_seconds), true);
  cell(row, seconds(queue.max_wait_seconds), true);
  cell(
    row,
    t("admin.queues.service_level_value", {
      percent: queue.service_level_percent,
      seconds: queue.service_level_seconds,
    }),
    true,
  );
  cell(row, label("admin.queues.recording", queue.recording), true);
  const [overflow, target] = overflowText(queue);
  const overflowCell = cell(row, overflow, true);
  if (target !== null) {
    const span = document.createElement("span");
    span.setAttribute("translate", "no");
    span.textContent = target;
    overflowCell.append(": ", span);
  }
  cell(row, "", true).append(rowButton(name, t("admin.queues.edit"), () => editor.show(queue)));
  return row;
}

/** The overflow-queue list names every queue loaded but the one shown. */
function fillOverflowQueues(current) {
  const options = queues
    .filter((queue) => current === null || queue.id !== current.id)
    .map((queue) => {
      const option = document.createElement("option");
      option.value = String(queue.id);
      option.textContent = queue.display_name || queue.name;
      option.setAttribute("translate", "no");
      return option;
    });
  overflowQueue.replaceChildren(...options);
}

function showOverflowTarget() {
  const action = field("f-overflow").value;
  field("f-overflow-queue-field").hidden = action !== "queue";
  field("f-overflow-user-field").hidden = action !== "user";
}

function fill(values, queue) {
  field("f-display").value = queue ? queue.display_name : "";
  field("f-number").value = values.number;
  if (values.team_id !== null) field("f-team").value = String(values.team_id);
  for (const [id, key] of [...NUMBERS, ...OPTIONAL_NUMBERS]) {
    field(id).value = values[key] === null ? "" : String(values[key]);
  }
  for (const [id, key] of CHOICES) field(id).value = values[key];
  fillOverflowQueues(queue);
  field("f-overflow").value = values.overflow.action;
  if (values.overflow.queue_id !== null) overflowQueue.value = String(values.overflow.queue_id);
  if (values.overflow.user_id !== null) {
    field("f-overflow-user").value = String(values.overflow.user_id);
  }
  showOverflowTarget();
  const members = new Map(values.members.map((member) => [String(member.user_id), member]));
  for (const row of document.querySelectorAll("#members tbody tr")) {
    const member = members.get(row.dataset.userId);
    row.querySelector(".m-member").checked = Boolean(member);
    row.querySelector(".m-skill").value = String(member ? member.skill_level : 1);
    row.querySelector(".m-penalty").value = String(member ? member.penalty : 0);
  }
}

/** A number field as sent: a number, or null when empty (for the optional ones), or the text
 *  itself when it is not a number, so the server names the field in its refusal. */
function numberOf(id, optional) {
  const text = field(id).value.trim();
  if (!text) return optional ? null : text;
  const value = Number(text);
  return Number.isInteger(value) ? value : text;
}

function formBody() {
  const body = {
    display_name: field("f-display").value.trim() || null,
    number: field("f-number").value.trim(),
    team_id: Number(field("f-team").value),
  };
  for (const [id, key] of NUMBERS) body[key] = numberOf(id, false);
  for (const [id, key] of OPTIONAL_NUMBERS) body[key] = numberOf(id, true);
  for (const [id, key] of CHOICES) body[key] = field(id).value;
  const action = field("f-overflow").value;
  body.overflow = { action };
  if (action === "queue") body.overflow.queue_id = Number(overflowQueue.value);
  if (action === "user") body.overflow.user_id = Number(field("f-overflow-user").value);
  body.members = [...document.querySelectorAll("#members tbody tr")]
    .filter((row) => row.querySelector(".m-member").checked)
    .map((row) => ({
      user_id: Number(row.dataset.userId),
      skill_level: Number(row.querySelector(".m-skill").value),
      penalty: Number(row.querySelector(".m-penalty").value),
    }));
  return body;
}

async function load() {
  const received = (items) => {
    queues = items;
  };
  await loadList("/api/v1/queues?limit=200", "queues", renderRow, {
    messages: "admin.queues",
    columns: 12,
    received,
  });
}

field("f-overflow").addEventListener("change", showOverflowTarget);

const editor = objectForm({
  kind: "queues",
  path: "/api/v1/queues",
  form: "queue-form",
  defaults: DEFAULTS,
  fill,
  body: formBody,
  patch: (body) => {
    if (body.display_name === null) delete body.display_name;
    return body;
  },
  focus: "f-strategy",
  load,
});

load();
