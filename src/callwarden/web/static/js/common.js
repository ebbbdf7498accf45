// Shared by every page: the catalog, the CSRF token, calls to the API, the language switch,
// sign-out, locale formatting and the live WebSocket. No inline script exists anywhere: the
// Content-Security-Policy forbids it.

const messagesElement = document.getElementById("messages");
const messages = messagesElement ? JSON.parse(messagesElement.textContent) : {};

export const language = document.documentElement.lang || "ja";
export const timeZone =
  document.querySelector('meta[name="time-zone"]')?.getAttribute("content") || "Asia/Tokyo";

/** The catalog's text for `key`, with `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const template = messages[key];
  if (template === undefined) {
    console.warn(`missing message ${key}`);
    return key;
  }
  return template.replace(/\{([a-z_]+)\}/g, (_, name) => String(values[name] ?? ""));
}

/** The catalog's text for `prefix.code` if it has one, else the code itself (a configured
 *  code the catalog does not know, shown as is). */
export function label(prefix, code) {
  const key = `${prefix}.${code}`;
  return key in messages ? messages[key] : code;
}

let csrfToken = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") || "";

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Calls the API; resolves to {ok, status, body}. State-changing calls carry X-CSRF-Token. */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    return { ok: false, status: 0, body: { error_id: "network" } };
  }
  const type = response.headers.get("content-type") || "";
  if (response.ok && method !== "GET") clearNotice();
  let data = null;
  if (response.status !== 204) {
    data = type.startsWith("application/json") ? await response.json() : await response.text();
  }
  return { ok: response.ok, status: response.status, body: data };
}

/** A user-facing message for a failed API call, in the page's language. */
export function errorText(result) {
  const id = result.body && typeof result.body === "object" ? result.body.error_id : null;
  if (id && `errors.${id}` in messages) return messages[`errors.${id}`];
  if (result.status === 401) return t("errors.unauthenticated");
  if (result.status === 403) return t("errors.forbidden");
  if (result.status === 404) return t("errors.not_found");
  if (result.status === 422) return t("errors.validation_failed");
  return t("errors.generic");
}

/** Shows `text` in the page's notice area (announced to screen readers). */
export function notify(text, kind = "error") {
  const notice = document.getElementById("notice");
  if (!notice) return;
  notice.textContent = text;
  notice.dataset.kind = kind;
  notice.hidden = false;
}

export function clearNotice() {
  const notice = document.getElementById("notice");
  if (notice) notice.hidden = true;
}

/** `m:ss`, or `h:mm:ss` from an hour on (as the server writes it). */
export function formatDuration(totalSeconds) {
  const whole = Math.max(0, Math.floor(totalSeconds));
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const seconds = String(whole % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${minutes}:${seconds}`;
}

const numberFormat = new Intl.NumberFormat(language);
const percentFormat = new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 0 });

export function formatNumber(value) {
  return numberFormat.format(value);
}

export function formatPercent(fraction) {
  return percentFormat.format(fraction);
}

/** Ticks every second: a local clock for the durations on screen (no request is made). */
export function everySecond(callback) {
  callback();
  return window.setInterval(callback, 1000);
}

const SESSION_ENDED = 4401;
let leaving = false;
const PRINCIPAL_CHANGED = 4409;

/** Opens the live WebSocket at `path` and hands each message to `onMessage`; reconnects
 *  after the node restarts or the user's grants change; reloads the page (which then asks
 *  for sign-in) when the session has ended. `onStatus(connected)` follows the connection. */
export function openLive(path, onMessage, onStatus = () => {}) {
  const scheme = window.location.protocol === "https:" ? "wss" : "ws";
  let delay = 500;
  const connect = () => {
    const socket = new WebSocket(`${scheme}://${window.location.host}${path}`);
    socket.addEventListener("open", () => {
      delay = 500;
      document.body.dataset.live = "connected";
      onStatus(true);
    });
    socket.addEventListener("message", (event) => onMessage(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      document.body.dataset.live = "closed";
      onStatus(false);
      if (leaving) return;
      if (event.code === SESSION_ENDED) {
        window.location.reload();
        return;
      }
      if (event.code === PRINCIPAL_CHANGED) delay = 0;
      window.setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    });
  };
  connect();
}

function chooseLanguage(choice) {
  const oneYear = 60 * 60 * 24 * 365;
  document.cookie = `callwarden_lang=${choice}; Path=/; Max-Age=${oneYear}; SameSite=Strict`;
  window.location.reload();
}

for (const button of document.querySelectorAll("button[data-language]")) {
  button.addEventListener("click", () => chooseLanguage(button.dataset.language));
}

/** The page is about to leave on its own (sign-out): a live connection closing is expected. */
export function leave() {
  leaving = true;
}

document.getElementById("sign-out")?.addEventListener("click", async () => {
  leave();
  await api("POST", "/api/v1/sessions/logout");
  window.location.assign("/sign-in");
});
