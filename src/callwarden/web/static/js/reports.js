// The reports page: GET /api/v1/reports with the filters (kept in the URL), drawn here as an
// SVG chart (calls per period: answered, abandoned and overflowed stacked, the service level as
// a line) and tables (totals, periods, break time by reason, dispositions); the CSV link asks
// /api/v1/reports.csv with the same filters. Numbers, percentages, durations and dates are
// written per the page's language, dates in the center's time zone.
import { api, errorText, formatDuration, formatNumber, formatPercent, label, language, notify, t, timeZone } from "./common.js";
import { centerTimeToIso, formatDateTime } from "./when.js";

const SVG = "http://www.w3.org/2000/svg";
const form = document.getElementById("report-filters");
const status = document.getElementById("report-status");
const csvLink = document.getElementById("report-csv");
const chart = document.getElementById("report-chart");
const dispositionLabels = JSON.parse(document.getElementById("disposition-labels").textContent);
const FIELDS = ["dimension", "interval", "from", "to"];

const periodFormats = {
  short: new Intl.DateTimeFormat(language === "en" ? "en-GB" : "ja-JP", {
    timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }),
  day: new Intl.DateTimeFormat(language === "en" ? "en-GB" : "ja-JP", {
    timeZone, month: language === "en" ? "short" : "long", day: "numeric",
  }),
};

document.body.dataset.loads = "true"; // `loaded` says when the report on screen is in

/** The `datetime-local` text of an ISO instant in the center's zone (`2026-12-01T18:00`). */
function centerLocalValue(iso) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-CA", {
      timeZone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit",
    }).formatToParts(new Date(iso)).map((part) => [part.type, part.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

function parametersFromForm() {
  const data = new FormData(form);
  const parameters = new URLSearchParams();
  parameters.set("dimension", data.get("dimension"));
  parameters.set("interval", data.get("interval"));
  const since = centerTimeToIso(data.get("from"));
  const until = centerTimeToIso(data.get("to"));
  if (since && until) {
    parameters.set("from", since);
    parameters.set("to", until);
  }
  return parameters;
}

function fillForm(parameters) {
  for (const field of ["dimension", "interval"]) {
    const value = parameters.get(field);
    if (value && [...form.elements[field].options].some((option) => option.value === value)) {
      form.elements[field].value = value;
    }
  }
  for (const field of ["from", "to"]) {
    const value = parameters.get(field);
    const when = value ? new Date(value) : null;
    form.elements[field].value = when && !Number.isNaN(when.getTime()) ? centerLocalValue(value) : "";
  }
}

const dash = "—";
const percent = (value) => (value === null || value === undefined ? dash : formatPercent(value));
const seconds = (value) => (value === null || value === undefined ? dash : formatDuration(value));
const breakTotal = (row) => Object.values(row.break_seconds).reduce((sum, value) => sum + value, 0);

function cell(row, text, { figure = null, data = false } = {}) {
  const element = document.createElement("td");
  element.textContent = text;
  if (figure) element.dataset.figure = figure;
  if (data) element.setAttribute("translate", "no");
  row.append(element);
  return element;
}

function nameCell(row, name) {
  const header = document.createElement("th");
  header.scope = "row";
  header.setAttribute("translate", "no");
  header.textContent = name;
  row.append(header);
}

function figureCells(row, item) {
  cell(row, formatNumber(item.offered), { figure: "offered" });
  cell(row, formatNumber(item.answered), { figure: "answered" });
  cell(row, formatNumber(item.abandoned), { figure: "abandoned" });
  cell(row, percent(item.service_level), { figure: "service_level" });
  cell(row, seconds(item.average_speed_of_answer), { figure: "asa" });
  cell(row, seconds(item.average_handle_time), { figure: "aht" });
  cell(row, percent(item.occupancy), { figure: "occupancy" });
}

function emptyRow(tbody, columns) {
  const row = document.createElement("tr");
  const only = document.createElement("td");
  only.colSpan = columns;
  only.className = "muted";
  only.textContent = t("reports.nothing");
  row.append(only);
  tbody.append(row);
}

function periodText(report, item) {
  if (report.interval === "day" || report.interval === "week") {
    return `${periodFormats.day.format(new Date(item.start))}`;
  }
  return `${periodFormats.day.format(new Date(item.start))} ${periodFormats.short.format(new Date(item.start))}`;
}

/** Fills the table `selector` with one row per item (`fill(row, item)` writes its cells and
 *  data attributes), or one "nothing" row across `columns`. */
function fillTable(selector, items, columns, fill) {
  const tbody = document.querySelector(`${selector} tbody`);
  tbody.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    row.dataset.key = String(item.key);
    fill(row, item);
    tbody.append(row);
  }
  if (!items.length) emptyRow(tbody, columns);
}

function render(report) {
  fillTable("#report-totals", report.totals, 9, (row, item) => {
    nameCell(row, item.name);
    figureCells(row, item);
    cell(row, formatDuration(breakTotal(item)), { figure: "break_time" });
  });
  fillTable("#report-periods", report.rows, 9, (row, item) => {
    row.dataset.start = item.start;
    cell(row, periodText(report, item));
    cell(row, item.name, { data: true });
    figureCells(row, item);
  });
  const breaks = report.totals.flatMap((item) =>
    Object.entries(item.break_seconds).map(([reason, time]) => ({ ...item, reason, time })),
  );
  fillTable("#report-breaks", breaks, 3, (row, item) => {
    row.dataset.reason = item.reason;
    nameCell(row, item.name);
    cell(row, label("break", item.reason));
    cell(row, formatDuration(item.time), { figure: "break_time" });
  });
  fillTable("#report-dispositions", report.dispositions, 3, (row, item) => {
    row.dataset.code = item.code;
    nameCell(row, item.name);
    cell(row, dispositionLabels[item.code] ?? item.code, { data: !(item.code in dispositionLabels) });
    cell(row, formatNumber(item.count), { figure: "count" });
  });
}

function svg(name, attributes = {}, text = null) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== null) element.textContent = text;
  return element;
}

/** Per period (all keys together): answered, abandoned, overflowed and the service level. */
function periodSums(report) {
  const sums = new Map();
  for (const item of report.rows) {
    const sum = sums.get(item.start) ?? { start: item.start, answered: 0, abandoned: 0, overflowed: 0, within: 0, offered: 0 };
    sum.answered += item.answered;
    sum.abandoned += item.abandoned;
    sum.overflowed += item.overflowed;
    sum.within += item.answered_within_service_level;
    sum.offered += item.offered;
    sums.set(item.start, sum);
  }
  return [...sums.values()].sort((a, b) => (a.start < b.start ? -1 : 1));
}

function renderChart(report) {
  const periods = periodSums(report).filter((period) => period.offered > 0);
  chart.replaceChildren();
  const width = 760;
  const height = 260;
  const left = 40;
  const right = 40;
  const top = 12;
  const bottom = 40;
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const picture = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, role: "img", "aria-labelledby": "report-chart-caption",
    class: "chart",
  });
  const most = Math.max(1, ...periods.map((period) => period.offered));
  picture.append(svg("line", { x1: left, y1: top + plotHeight, x2: left + plotWidth, y2: top + plotHeight, class: "axis" }));
  picture.append(svg("text", { x: left - 6, y: top + 4, class: "tick end" }, formatNumber(most)));
  picture.append(svg("text", { x: left - 6, y: top + plotHeight, class: "tick end" }, formatNumber(0)));
  picture.append(svg("text", { x: left + plotWidth + 6, y: top + 4, class: "tick" }, formatPercent(1)));
  if (!periods.length) {
    picture.append(svg("text", { x: width / 2, y: height / 2, class: "tick middle" }, t("reports.nothing")));
  }
  const step = plotWidth / Math.max(periods.length, 1);
  const barWidth = Math.min(60, Math.max(2, step * 0.7));
  const line = [];
  periods.forEach((period, index) => {
    const x = left + index * step + (step - barWidth) / 2;
    let y = top + plotHeight;
    for (const part of ["answered", "abandoned", "overflowed"]) {
      const size = (period[part] / most) * plotHeight;
      if (size > 0) {
        y -= size;
        const bar = svg("rect", { x, y, width: barWidth, height: size, class: `bar ${part}` });
        bar.append(svg("title", {}, `${periodText(report, period)}: ${t(`reports.${part}`)} ${formatNumber(period[part])}`));
        picture.append(bar);
      }
    }
    const level = period.within / period.offered;
    line.push(`${x + barWidth / 2},${top + plotHeight - level * plotHeight}`);
    if (periods.length <= 12 || index % Math.ceil(periods.length / 12) === 0) {
      picture.append(svg("text", { x: x + barWidth / 2, y: height - bottom + 16, class: "tick middle" }, periodText(report, period)));
    }
  });
  if (line.length) {
    picture.append(svg("polyline", { points: line.join(" "), class: "service-level" }));
    for (const point of line) {
      const [cx, cy] = point.split(",");
      picture.append(svg("circle", { cx, cy, r: 3, class: "service-level-point" }));
    }
  }
  chart.append(picture);
  chart.dataset.periods = String(periods.length);
}

async function load(parameters) {
  document.body.dataset.loaded = "false";
  status.textContent = t("reports.loading");
  csvLink.href = `/api/v1/reports.csv?${parameters}`;
  const result = await api("GET", `/api/v1/reports?${parameters}`);
  if (!result.ok) {
    const text = errorText(result);
    status.textContent = text;
    notify(text);
    document.body.dataset.loaded = "true";
    return;
  }
  const report = result.body;
  renderChart(report);
  render(report);
  for (const field of ["from", "to"]) {
    if (!form.elements[field].value) form.elements[field].value = centerLocalValue(report[field]);
  }
  status.textContent = t("reports.period_shown", {
    from: formatDateTime(report.from),
    to: formatDateTime(report.to),
  });
  document.body.dataset.loaded = "true";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const parameters = parametersFromForm();
  const url = new URL(window.location.href);
  url.search = parameters.toString();
  window.history.replaceState(null, "", url);
  load(parameters);
});

const initial = new URLSearchParams(window.location.search);
fillForm(initial);
const start = new URLSearchParams();
for (const field of FIELDS) {
  if (initial.get(field)) start.set(field, initial.get(field));
}
load(start);
