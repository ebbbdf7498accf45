// Shared by the admin console's pages: the names the page was rendered with, the cells, row
// headers and buttons of their tables, a list loaded into its table, the detail panel, the
// create-or-change form of the queues and trunks pages, and the text of a refusal. A refusal of
// the granting rule (403 grant_not_held) names the grants the caller does not hold, so the
// admin sees why the change was refused.
import { api, errorText, formatNumber, notify, t } from "./common.js";

const namesElement = document.getElementById("names");
export const names = namesElement ? JSON.parse(namesElement.textContent) : { roles: {}, teams: {} };
const byId = (id) => document.getElementById(id);
document.body.dataset.loads = "true";

/** A data cell (names and codes are data: not translated). */
export function cell(row, text, translate = false) {
  const element = document.createElement("td");
  element.textContent = text;
  if (!translate) element.setAttribute("translate", "no");
  row.append(element);
  return element;
}

/** The header cell of a row (`id`, for the buttons that act on it): the object's name. */
export function rowHeader(row, id, text, translate = false) {
  const header = document.createElement("th");
  header.scope = "row";
  header.id = id;
  if (!translate) header.setAttribute("translate", "no");
  header.textContent = text;
  row.append(header);
  return header;
}

/** A secondary button about the row `header` heads. */
export function rowButton(header, text, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary";
  button.textContent = text;
  button.setAttribute("aria-describedby", header.id);
  button.addEventListener("click", onClick);
  return button;
}

/** The message of a failed change, with the grants a `grant_not_held` refusal lists. */
export function refusalText(result) {
  const body = result.body && typeof result.body === "object" ? result.body : {};
  const grants = body.details && Array.isArray(body.details.grants) ? body.details.grants : [];
  const text = errorText(result);
  return grants.length ? `${text} ${t("admin.grants_not_held", { grants: grants.join(", ") })}` : text;
}

/** Shows a failed change in the notice area (announced) and in `status`, if given. */
export function showRefusal(result, status) {
  const text = refusalText(result);
  notify(text);
  if (status) {
    status.textContent = text;
    status.dataset.kind = "error";
  }
}

/** Shows that a change was made, in `status` (a polite live region). */
export function showDone(status, text) {
  status.textContent = text;
  status.dataset.kind = "done";
}

/** Sends one request; a refusal is shown (in `status` too) and gives null. */
export async function send(method, path, body, status) {
  const result = await api(method, path, body);
  if (!result.ok) {
    showRefusal(result, status);
    return null;
  }
  return result;
}

/** The form's non-empty fields; `numbers` names the fields sent as numbers. */
export function formFields(form, numbers = []) {
  const body = {};
  for (const [field, value] of new FormData(form)) {
    const text = String(value).trim();
    if (!text) continue;
    body[field] = numbers.includes(field) ? Number(text) : text;
  }
  return body;
}

/** The lines of a text area, trimmed, without the empty ones. */
export function lines(id) {
  return byId(id)
    .value.split("\n")
    .map((line) => line.trim())
    .filter((line) => line);
}

/** Loads the list at `path` into the table #`table`, a row per item (`render`, once
 *  `received(items)` has seen them all), and says how many in #list-status (where a refusal
 *  shows) with `{messages}.count`; with `columns`, a list with no item shows `{messages}.none`
 *  across them. Marks the page loaded; gives the response body, or null after a refusal. */
export async function loadList(path, table, render, { messages, columns, received } = {}) {
  const status = byId("list-status");
  const result = await api("GET", path);
  document.body.dataset.loaded = "true";
  if (!result.ok) {
    showRefusal(result, status);
    return null;
  }
  const tbody = document.querySelector(`#${table} tbody`);
  const items = result.body.items;
  if (received) received(items);
  if (items.length || !columns) tbody.replaceChildren(...items.map(render));
  else {
    const row = document.createElement("tr");
    cell(row, t(`${messages}.none`), true).colSpan = columns;
    tbody.replaceChildren(row);
  }
  if (messages) {
    const count = result.body.total ?? items.length;
    status.textContent = t(`${messages}.count`, { count: formatNumber(count) });
  }
  return result.body;
}

/** A form that creates (POST `path` with `body(form)`): on success `done(created)` is said in
 *  `statusId`, the form is reset and `after(created)` runs. */
export function onCreate(formId, statusId, path, body, done, after) {
  const form = byId(formId);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await send("POST", path, body(form), byId(statusId));
    if (!result) return;
    showDone(byId(statusId), done(result.body));
    form.reset();
    await after(result.body);
  });
}

/** The detail panel (#detail, its status #d-status) and the object it shows (`selected`);
 *  #close-detail closes it. */
export function detailPanel() {
  const panel = {
    element: byId("detail"),
    status: byId("d-status"),
    selected: null,
    open(selected) {
      panel.selected = selected;
      panel.status.textContent = "";
      panel.element.hidden = false;
    },
    close() {
      panel.element.hidden = true;
      panel.selected = null;
    },
  };
  byId("close-detail").addEventListener("click", () => panel.close());
  return panel;
}

/** The create-or-change form (#form) of the queues and trunks pages (`kind`: their messages,
 *  `admin.{kind}.*`; `path`: their API). `show(item)` opens it on `item`, or on a new one
 *  (null) with `defaults`; `fill(values, item)` sets the fields and `body()` reads them
 *  (`patch(body)` adjusts a change). After a change the list is loaded again (`load`). */
export function objectForm({ kind, path, form, defaults, fill, body, patch, focus, load }) {
  const panel = detailPanel();
  const key = (name) => `admin.${kind}.${name}`;
  function show(item) {
    byId("d-title").textContent = t(key(item ? "edit" : "create"));
    byId("d-name").textContent = item ? item.name : "";
    byId("f-name-field").hidden = item !== null;
    byId("f-name").value = "";
    byId("f-delete").hidden = item === null;
    byId("f-submit").textContent = t(key(item ? "save" : "create_button"));
    fill(item || defaults, item);
    panel.open(item);
    byId(item ? focus : "f-name").focus();
  }
  byId(form).addEventListener("submit", async (event) => {
    event.preventDefault();
    const selected = panel.selected;
    const request = selected
      ? ["PATCH", `${path}/${selected.id}`, patch(body())]
      : ["POST", path, { name: byId("f-name").value.trim(), ...body() }];
    const result = await send(...request, panel.status);
    if (!result) return;
    await load();
    show(result.body);
    showDone(panel.status, t(key(selected ? "saved" : "created"), { name: result.body.name }));
  });
  byId("f-delete").addEventListener("click", async () => {
    const selected = panel.selected;
    if (!selected) return;
    if (!(await send("DELETE", `${path}/${selected.id}`, undefined, panel.status))) return;
    panel.close();
    showDone(byId("create-status"), t(key("deleted"), { name: selected.name }));
    await load();
  });
  byId("open-create").addEventListener("click", () => show(null));
  return { show, panel };
}
