// fusionserve demo page: talks to the same API as every other client (/models, /predict).
// No outside resources, no inline code (the CSP forbids both), no storage: the API key lives
// in this variable only and is gone when the tab closes.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = "";
let imageFile = null;

function headers() {
  return apiKey ? { "X-API-Key": apiKey } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error.code}: ${body.error.message}`;
  } catch (_) { /* not JSON: fall through */ }
  return `HTTP ${response.status}`;
}

function needKey(message) {
  $("key-box").hidden = false;
  $("api-key").focus();
  showError(message);
}

async function loadModels() {
  const response = await fetch("models", { headers: headers() });
  if (response.status === 401) return needKey(await errorMessage(response));
  if (!response.ok) return showError(await errorMessage(response));
  clearError();
  const select = $("model");
  select.replaceChildren(new Option("default", ""));
  const { models } = await response.json();
  const taskSets = new Set(models.flatMap((m) => m.aliases || []));
  for (const set of [...taskSets].sort()) select.add(new Option(`${set} (task set)`, set));
  for (const m of models) {
    const option = new Option(m.ready ? m.name : `${m.name} (${m.state})`, m.name);
    option.disabled = !m.ready;
    select.add(option);
  }
}

function pickImage(file) {
  if (!file) return;
  imageFile = file;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.alt = `preview of ${file.name}`;
  preview.hidden = false;
  $("drop-hint").hidden = true;
}

function percent(p) {
  return `${(100 * p).toFixed(1)}%`;
}

function renderTask(name, prediction) {
  const box = document.createElement("div");
  box.className = "task";
  box.dataset.task = name;
  const title = document.createElement("h3");
  title.textContent = name;
  if (prediction.low_confidence) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "low confidence";
    title.append(badge);
  }
  box.append(title);
  const ranked = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of ranked) {
    const row = document.createElement("div");
    row.className = label === prediction.label ? "bar top" : "bar";
    const name_ = document.createElement("span");
    name_.className = "label";
    name_.textContent = label;
    const track = document.createElement("span");
    track.className = "track";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.style.width = percent(p); // CSSOM, allowed by the CSP (no inline style attribute)
    track.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = percent(p);
    row.append(name_, track, value);
    box.append(row);
  }
  return box;
}

// What each task set's inputs are, for the out-of-domain warning.
const DOMAIN_NOUNS = {
  medpix: { image: "a CT/MR slice", text: "a radiology image caption" },
  wound: { image: "a wound photo", text: "a wound description" },
};

function renderDomain(body) {
  const box = $("domain-warning");
  const domain = body.domain;
  const sides = domain ? ["image", "text"].filter((side) => !domain[side].in_domain) : [];
  box.replaceChildren();
  box.hidden = sides.length === 0;
  const nouns = DOMAIN_NOUNS[body.model.task_set] || {};
  for (const side of sides) {
    const line = document.createElement("p");
    line.dataset.side = side;
    const noun = nouns[side] || `what ${body.model.name} was trained on`;
    line.textContent = `Out of domain: this ${side} does not look like ${noun} ` +
      `(score ${domain[side].score.toFixed(2)}; above 1 is out of domain). ` +
      "Treat the prediction below as unreliable.";
    box.append(line);
  }
}

function renderResult(body, serverTiming) {
  $("model-used").textContent =
    `${body.model.name} · ${body.model.role} · ${body.model.fusion} · v${body.model.version}`;
  renderDomain(body);
  $("tasks").replaceChildren(
    ...Object.entries(body.predictions).map(([name, p]) => renderTask(name, p)));
  const weights = body.modality_weights;
  $("weights").hidden = !weights;
  if (weights) {
    $("w-image").style.flex = String(weights.image);
    $("w-image").textContent = `image ${percent(weights.image)}`;
    $("w-text").style.flex = String(weights.text);
    $("w-text").textContent = `text ${percent(weights.text)}`;
  }
  const t = body.timing_ms;
  $("timing").textContent =
    `Server time ${t.total.toFixed(1)} ms (queue ${t.queue.toFixed(1)}, preprocess ` +
    `${t.preprocess.toFixed(1)}, inference ${t.inference.toFixed(1)})` +
    (serverTiming ? ` · Server-Timing: ${serverTiming}` : "");
  $("result").hidden = false;
}

async function predict(event) {
  event.preventDefault();
  clearError();
  if (!imageFile) return showError("Choose or drop an image first.");
  const form = new FormData();
  form.append("image", imageFile, imageFile.name);
  form.append("text", $("text").value);
  if ($("model").value) form.append("model", $("model").value);
  if ($("role").value) form.append("role", $("role").value);
  $("submit").disabled = true;
  try {
    const response = await fetch("predict", { method: "POST", body: form, headers: headers() });
    if (response.status === 401) return needKey(await errorMessage(response));
    if (!response.ok) {
      $("result").hidden = true;
      return showError(await errorMessage(response));
    }
    renderResult(await response.json(), response.headers.get("Server-Timing"));
  } catch (err) {
    showError(`The server could not be reached: ${err.message}`);
  } finally {
    $("submit").disabled = false;
  }
}

function wire() {
  const drop = $("drop");
  $("image").addEventListener("change", () => pickImage($("image").files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    pickImage(e.dataTransfer.files[0]);
  });
  $("key-apply").addEventListener("click", () => { apiKey = $("api-key").value.trim(); loadModels(); });
  $("api-key").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); $("key-apply").click(); }
  });
  $("form").addEventListener("submit", predict);
  loadModels().catch((err) => showError(`The server could not be reached: ${err.message}`));
}

wire();
