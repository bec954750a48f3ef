"""``GET /``: one self-contained page (no external files) to try the model: upload an image, see
the class and its top-k bars, the mask over the image or the boxes on it, and the model card."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mlcycle model server</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 980px; padding: 1rem;
         color: #1d2433; }
  h1 { font-size: 1.35rem; margin: 0 0 .8rem; }
  h2 { font-size: 1.05rem; margin: 1.2rem 0 .5rem; }
  .cols { display: flex; gap: 2rem; flex-wrap: wrap; }
  .cols > section { flex: 1 1 420px; }
  form { display: flex; gap: .6rem; flex-wrap: wrap; align-items: center; }
  input[type=text] { padding: .3rem; width: 12rem; }
  canvas { border: 1px solid #ccd; image-rendering: pixelated; max-width: 100%; }
  #answer { font-size: 1.6rem; font-weight: 600; margin: .4rem 0; }
  .bar { display: flex; align-items: center; gap: .5rem; margin: .2rem 0; }
  .bar span:first-child { width: 7rem; overflow: hidden; text-overflow: ellipsis; }
  .bar div { background: #3d6fd9; height: 1rem; border-radius: 2px; }
  #error { color: #b3261e; }
  table { border-collapse: collapse; }
  td { padding: .15rem .6rem .15rem 0; vertical-align: top; }
  td:first-child { color: #5b6478; }
  .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .3rem; }
  code { font-size: .85em; }
</style>
</head>
<body>
<h1>mlcycle model server</h1>
<div class="cols">
<section>
  <form id="form">
    <input id="file" type="file" accept="image/*" aria-label="image">
    <input id="token" type="text" placeholder="token (if required)" aria-label="token">
    <button type="submit">Predict</button>
  </form>
  <p id="error" role="alert"></p>
  <div id="answer" data-testid="answer"></div>
  <div id="bars"></div>
  <canvas id="view" width="320" height="320" hidden></canvas>
  <div id="legend"></div>
</section>
<section>
  <h2>Model</h2>
  <table id="card"><tr><td>loading...</td></tr></table>
  <p><a href="docs">API docs</a> &middot; <a href="metrics">metrics</a></p>
</section>
</div>
<script>
const $ = (id) => document.getElementById(id);
const COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
                "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000"];
let task = "classification", names = [];

function row(table, key, value) {
  const tr = table.insertRow();
  tr.insertCell().textContent = key;
  tr.insertCell().textContent = value;
}

async function loadCard() {
  const card = await (await fetch("v1/model")).json();
  task = card.task; names = card.class_names;
  const table = $("card"); table.innerHTML = "";
  row(table, "task", card.task + (card.arch ? " (" + card.arch + ")" : ""));
  row(table, "classes", names.join(", "));
  row(table, "version", card.model_version.slice(0, 16));
  for (const [k, v] of Object.entries(card.validation_metrics || {})) {
    const shown = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(4) : v;
    if (!k.slice(4).includes("/")) row(table, k, shown);
  }
  if (card.gate) row(table, "gate", card.gate.line || (card.gate.passed ? "PASS" : "FAIL"));
  if (card.verification) row(table, "export check", card.verification.passed ? "pass" : "FAIL");
  if (card.data_fingerprint) row(table, "data", card.data_fingerprint.slice(0, 16));
  row(table, "exported", card.exported_at || "-");
}

function loadImage(src) {
  return new Promise((ok, fail) => {
    const img = new Image(); img.onload = () => ok(img); img.onerror = fail; img.src = src;
  });
}

async function draw(file, result) {
  const img = await loadImage(URL.createObjectURL(file));
  const canvas = $("view"), ctx = canvas.getContext("2d");
  const scale = Math.min(320 / img.width, 320 / img.height);
  canvas.width = Math.round(img.width * scale); canvas.height = Math.round(img.height * scale);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  canvas.hidden = false;
  if (result.mask_png) await overlay(ctx, result, canvas.width, canvas.height);
  for (const b of result.boxes || []) {
    const color = COLORS[b.index % COLORS.length];
    const [x1, y1, x2, y2] = b.box.map((v) => v * scale);
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
    ctx.fillStyle = color; ctx.font = "12px sans-serif";
    ctx.fillText(b.class + " " + b.score.toFixed(2), x1 + 2, Math.max(12, y1 - 3));
  }
}

async function overlay(ctx, result, width, height) {
  const mask = await loadImage("data:image/png;base64," + result.mask_png);
  const off = document.createElement("canvas");
  off.width = width; off.height = height;
  const octx = off.getContext("2d"); octx.imageSmoothingEnabled = false;
  octx.drawImage(mask, 0, 0, width, height);
  const pixels = octx.getImageData(0, 0, width, height);
  for (let i = 0; i < pixels.data.length; i += 4) {
    const c = pixels.data[i], hex = COLORS[c % COLORS.length];
    const clear = names[c] === "background";
    pixels.data[i] = parseInt(hex.slice(1, 3), 16);
    pixels.data[i + 1] = parseInt(hex.slice(3, 5), 16);
    pixels.data[i + 2] = parseInt(hex.slice(5, 7), 16);
    pixels.data[i + 3] = clear ? 0 : 120;
  }
  octx.putImageData(pixels, 0, 0);
  ctx.drawImage(off, 0, 0);
  $("legend").innerHTML = Object.entries(result.class_shares).map(([name, share]) =>
    `<div><span class="swatch" style="background:${COLORS[names.indexOf(name) % COLORS.length]}">` +
    `</span>${name}: ${(share * 100).toFixed(1)}%</div>`).join("");
}

function bars(topK) {
  $("bars").innerHTML = "";
  for (const t of topK) {
    const bar = document.createElement("div"); bar.className = "bar";
    const label = document.createElement("span"); label.textContent = t.class;
    const fill = document.createElement("div"); fill.style.width = (t.probability * 240) + "px";
    const value = document.createElement("span"); value.textContent = t.probability.toFixed(3);
    bar.append(label, fill, value); $("bars").append(bar);
  }
}

async function predict(event) {
  event.preventDefault();
  const file = $("file").files[0];
  for (const id of ["error", "answer", "bars", "legend"]) $(id).textContent = "";
  if (!file) { $("error").textContent = "choose an image first"; return; }
  const form = new FormData(); form.append("files", file, file.name);
  const headers = {}, token = $("token").value.trim();
  if (token) headers["Authorization"] = "Bearer " + token;
  const response = await fetch("v1/predict", { method: "POST", body: form, headers });
  const body = await response.json();
  const result = (body.results || [])[0];
  if (!result || result.error) { $("error").textContent = (result || body).error; return; }
  if (result.class !== undefined) {
    $("answer").textContent = result.class + "  (" + (result.confidence * 100).toFixed(1) + "%)";
    bars(result.top_k);
  } else if (result.boxes) {
    const n = result.boxes.length;
    $("answer").textContent = n + (n === 1 ? " box" : " boxes");
  } else {
    $("answer").textContent = "mask";
  }
  await draw(file, result);
}

$("form").addEventListener("submit", predict);
$("file").addEventListener("change", (e) => predict(e));
loadCard().catch((e) => { $("card").innerHTML = "<tr><td>cannot load the model card</td></tr>"; });
</script>
</body>
</html>
"""
