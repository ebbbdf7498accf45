// Dates of the recordings and audit pages: written per language in the center's time zone
// (`2026年12月1日 18:00`, `1 Dec 2026, 18:00`, as the server writes them), and the filters'
// `datetime-local` values read as the center's local time, whatever the browser's zone is.
import { language, timeZone } from "./common.js";

const written = new Intl.DateTimeFormat(language === "en" ? "en-GB" : "ja-JP", {
  timeZone,
  year: "numeric",
  month: language === "en" ? "short" : "long",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

const parts = new Intl.DateTimeFormat("en-US", {
  timeZone,
  hourCycle: "h23",
  year: "numeric",
  month: "numeric",
  day: "numeric",
  hour: "numeric",
  minute: "numeric",
  second: "numeric",
});

/** An ISO timestamp of the API, in the page's language and the center's time zone. */
export function formatDateTime(iso) {
  return written.format(new Date(iso));
}

/** Milliseconds the center's zone is ahead of UTC at `utcMillis`. */
function offsetAt(utcMillis) {
  const values = Object.fromEntries(
    parts.formatToParts(new Date(utcMillis)).map((part) => [part.type, part.value]),
  );
  const local = Date.UTC(
    Number(values.year),
    Number(values.month) - 1,
    Number(values.day),
    Number(values.hour),
    Number(values.minute),
    Number(values.second),
  );
  return local - Math.floor(utcMillis / 1000) * 1000;
}

/** A `datetime-local` value (`2026-12-01T18:00`) read in the center's zone, as ISO UTC; null
 *  when empty. */
export function centerTimeToIso(value) {
  if (!value) return null;
  const [date, time] = value.split("T");
  const [year, month, day] = date.split("-").map(Number);
  const [hour, minute] = time.split(":").map(Number);
  const guess = Date.UTC(year, month - 1, day, hour, minute);
  let utc = guess - offsetAt(guess);
  utc = guess - offsetAt(utc); // once more, across a change of offset
  return new Date(utc).toISOString();
}
