// The models page: base versions with their deadlines, the caller's custom models with their lifecycle
// buttons (the API's message shown when it refuses), and an SVG timeline of every deadline.

import { api, setupKeyBar, show, sortedVersions } from "/ui/common.js";

const $ = (id) => document.getElementById(id);
const KINDS = { language: "/v1/customizations", acoustic: "/v1/acoustic_customizations" };
const BUSY = new Set(["training", "upgrading"]);
const POLL_MS = 1500;

let baseModels = [];
let customModels = [];
let pollTimer = null;
const confirmingDelete = new Set(); // ids whose Delete was clicked once (kept across the re-rendering polls)
const CONFIRM_MS = 6000;
const short = (version) => version.split(".").at(-1); // en-US_BroadbandModel.v2026-12-01 -> v2026-12-01

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  if (className) td.className = className;
  return td;
}

function message(text, kind) {
  show($("message"), text, kind);
}

/** The newest base version of each base model name. */
function newestBase() {
  return Object.fromEntries(baseModels.map((m) => [m.name, sortedVersions(m).at(-1)?.version]));
}

function renderBase() {
  const rows = [];
  for (const model of baseModels) {
    for (const v of sortedVersions(model)) {
      const tr = document.createElement("tr");
      tr.dataset.version = v.version;
      tr.append(cell(model.name), cell(v.version), cell(v.created), cell(v.adaptation_deadline),
        cell(v.transcription_deadline), cell(v.state, `state ${v.state.split(/[ :]/)[0]}`));
      rows.push(tr);
    }
  }
  $("base-versions").tBodies[0].replaceChildren(...rows);
}

function actionButton(label, action, model) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = action === "delete" && confirmingDelete.has(model.customization_id) ? "Really delete?" : label;
  button.dataset.action = action;
  button.addEventListener("click", () => act(action, model, button));
  return button;
}

function renderCustom() {
  const newest = newestBase();
  const rows = customModels.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.id = m.customization_id;
    tr.dataset.status = m.status;
    const name = cell(m.name);
    const id = document.createElement("small");
    id.textContent = m.customization_id;
    name.append(document.createElement("br"), id);
    const upgrade = newest[m.base_model_name] && !m.versions.includes(newest[m.base_model_name]);
    const deadlines = (m.version_deadlines || []).map((d) => `${short(d.base_model_version)}: ${d.transcription_deadline} (${d.state})`);
    const status = cell(m.status, `status ${m.status}`);
    if (m.error) status.title = m.error;
    const actions = document.createElement("td");
    actions.className = "actions";
    if (!BUSY.has(m.status)) actions.append(actionButton("Train", "train", m));
    if (upgrade && ["ready", "available"].includes(m.status)) actions.append(actionButton("Upgrade", "upgrade", m));
    actions.append(actionButton("Delete", "delete", m));
    tr.append(name, cell(m.kind), cell(m.base_model_name), status, cell(`${m.progress} %`),
      cell(m.versions.map(short).join(", ")), cell(upgrade ? `available: to ${short(newest[m.base_model_name])}` : "no"),
      cell(deadlines.join("; ") || "not trained yet"), actions);
    return tr;
  });
  $("custom-models").tBodies[0].replaceChildren(...rows);
  $("no-custom").hidden = rows.length > 0;
  const language = customModels.filter((m) => m.kind === "language");
  const corpusModel = $("corpus-model");
  const previous = corpusModel.value;
  corpusModel.replaceChildren(...language.map((m) => new Option(`${m.name} (${m.status})`, m.customization_id)));
  if (language.some((m) => m.customization_id === previous)) corpusModel.value = previous;
}

async function act(action, model, button) {
  const base = `${KINDS[model.kind]}/${model.customization_id}`;
  if (action === "delete" && !confirmingDelete.has(model.customization_id)) {
    confirmingDelete.add(model.customization_id);
    button.textContent = "Really delete?";
    setTimeout(() => {
      confirmingDelete.delete(model.customization_id);
      renderCustom();
    }, CONFIRM_MS);
    return;
  }
  confirmingDelete.delete(model.customization_id);
  const call = { train: [`${base}/train`, "POST"], upgrade: [`${base}/upgrade_model`, "POST"], delete: [base, "DELETE"] }[action];
  button.disabled = true;
  try {
    const answer = await api(call[0], { method: call[1] });
    const warnings = (answer.warnings || []).map((w) => w.message || w).join(" ");
    const done = { train: "training started", upgrade: "upgrade started", delete: "deleted" }[action];
    message(`${model.name}: ${done}${warnings ? `; ${warnings}` : ""}`, "ok");
  } catch (error) {
    message(`${model.name}: ${action} refused: ${error.message}`, "error");
  }
  await refresh();
}

async function refresh() {
  clearTimeout(pollTimer);
  try {
    const [language, acoustic] = await Promise.all(Object.values(KINDS).map((path) => api(path)));
    customModels = [
      ...language.customizations.map((m) => ({ ...m, kind: "language" })),
      ...acoustic.customizations.map((m) => ({ ...m, kind: "acoustic" })),
    ].sort((a, b) => a.created.localeCompare(b.created));
  } catch (error) {
    customModels = [];
    message(`your custom models could not be listed: ${error.message}`, "error");
  }
  renderCustom();
  drawTimeline();
  // Training, upgrades and corpus analysis run in the background: follow them until they settle.
  if (customModels.some((m) => BUSY.has(m.status) || m.status === "pending")) pollTimer = setTimeout(refresh, POLL_MS);
}

// ---- the timeline -------------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
const LABEL_W = 330;
const ROW_H = 24;
const TOP = 20; // room for the "today" label above the rows
const PLOT_W = 640;
const DAY_MS = 86400000;

function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function timelineRows() {
  const rows = [];
  for (const model of baseModels) {
    for (const v of sortedVersions(model)) {
      rows.push({ label: v.version, start: v.created, train: v.adaptation_deadline, end: v.transcription_deadline, kind: "base" });
    }
  }
  for (const m of customModels) {
    for (const d of m.version_deadlines || []) {
      rows.push({ label: `${m.name} on ${d.base_model_version.split(".").at(-1)}`, start: d.created.slice(0, 10),
        end: d.transcription_deadline, kind: "custom" });
    }
  }
  return rows;
}

function drawTimeline() {
  const rows = timelineRows();
  const today = new Date().toISOString().slice(0, 10);
  const days = (iso) => Date.parse(`${iso}T00:00:00Z`) / DAY_MS;
  const first = Math.min(...rows.map((r) => days(r.start)), days(today)) - 30;
  const last = Math.max(...rows.map((r) => days(r.end)), days(today)) + 30;
  const x = (iso) => LABEL_W + ((days(iso) - first) / (last - first)) * PLOT_W;
  const height = TOP + rows.length * ROW_H + 24;
  const picture = svg("svg", { id: "timeline-svg", width: LABEL_W + PLOT_W + 10, height, role: "img",
    "aria-label": "deadlines of every model version" });
  for (let year = new Date(first * DAY_MS).getUTCFullYear() + 1; year <= new Date(last * DAY_MS).getUTCFullYear(); year += 1) {
    const at = x(`${year}-01-01`);
    picture.append(svg("line", { x1: at, x2: at, y1: TOP - 4, y2: height - 20, class: "tick" }),
      svg("text", { x: at + 2, y: height - 6, class: "axis" }, String(year)));
  }
  rows.forEach((row, i) => {
    const y = TOP + i * ROW_H;
    const group = svg("g", { class: `row ${row.kind}` });
    group.append(svg("text", { x: LABEL_W - 8, y: y + 13, "text-anchor": "end" }, row.label));
    if (row.train) {
      group.append(svg("rect", { x: x(row.start), y, width: x(row.train) - x(row.start), height: ROW_H - 8, class: "train" }));
      group.append(svg("rect", { x: x(row.train), y, width: x(row.end) - x(row.train), height: ROW_H - 8, class: "recognise" }));
    } else {
      group.append(svg("rect", { x: x(row.start), y, width: x(row.end) - x(row.start), height: ROW_H - 8, class: "custom" }));
    }
    const title = svg("title", {}, `${row.label}: created ${row.start}${row.train ? `, training until ${row.train}` : ""}, recognition until ${row.end}`);
    group.append(title);
    picture.append(group);
  });
  const now = x(today);
  picture.append(svg("line", { x1: now, x2: now, y1: 0, y2: height - 20, class: "today" }),
    svg("text", { x: now + 3, y: 12, class: "today-label" }, `today ${today}`));
  const legend = document.createElement("p");
  legend.className = "legend";
  legend.innerHTML = '<span class="swatch train"></span> base: training and recognition '
    + '<span class="swatch recognise"></span> base: recognition only <span class="swatch custom"></span> custom model version';
  $("timeline").replaceChildren(picture, legend);
}

// ---- forms --------------------------------------------------------------------------------------------

async function createModel(event) {
  event.preventDefault();
  const name = $("create-name").value.trim();
  try {
    const { customization_id: id } = await api("/v1/customizations", {
      method: "POST", body: { name, base_model_name: $("create-base").value, description: $("create-description").value },
    });
    message(`created custom language model ${name} (${id})`, "ok");
    $("create-name").value = "";
    await refresh();
    $("corpus-model").value = id;
  } catch (error) {
    message(`${name}: create refused: ${error.message}`, "error");
  }
}

async function addCorpus(event) {
  event.preventDefault();
  const id = $("corpus-model").value;
  const name = $("corpus-name").value.trim();
  if (!id) {
    message("create a custom language model first", "error");
    return;
  }
  try {
    await api(`/v1/customizations/${id}/corpora/${encodeURIComponent(name)}`, {
      method: "POST", body: $("corpus-text").value, contentType: "text/plain",
    });
    message(`corpus ${name} added; it is being analysed`, "ok");
  } catch (error) {
    message(`corpus ${name} refused: ${error.message}`, "error");
  }
  await refresh();
}

async function loadBase() {
  const { models } = await api("/v1/models");
  baseModels = models.sort((a, b) => a.name.localeCompare(b.name));
  renderBase();
  const customizable = baseModels.filter((m) => m.supported_features?.custom_language_model);
  $("create-base").replaceChildren(...customizable.map((m) => new Option(m.name, m.name)));
}

async function main() {
  $("create-form").addEventListener("submit", createModel);
  $("corpus-form").addEventListener("submit", addCorpus);
  await setupKeyBar(() => refresh());
  try {
    await loadBase();
  } catch (error) {
    message(`the base models could not be listed: ${error.message}`, "error");
  }
  await refresh();
  document.body.dataset.ready = "true";
}

main();
