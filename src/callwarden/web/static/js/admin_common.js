// Shared by the admin console's pages: the names the page was rendered with, a cell helper, and
// the text of a refusal. A refusal of the granting rule (403 grant_not_held) names the grants
// the caller does not hold, so the admin sees why the change was refused.
import { errorText, notify, t } from "./common.js";

const namesElement = document.getElementById("names");
export const names = namesElement ? JSON.parse(namesElement.textContent) : { roles: {}, teams: {} };

/** A data cell (names and codes are data: not translated). */
export function cell(row, text, translate = false) {
  const element = document.createElement("td");
  element.textContent = text;
  if (!translate) element.setAttribute("translate", "no");
  row.append(element);
  return element;
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
