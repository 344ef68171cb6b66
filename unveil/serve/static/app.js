// unveil's web page: plain JavaScript, no build step, nothing fetched from outside this server.
// The mask is edited at the photo's full resolution (the canvas is only scaled for display by CSS),
// so the mask sent to /api/restore is exactly the photo's size.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  file: $("file"), drop: $("drop"), limits: $("limits"), canvas: $("canvas"), placeholder: $("placeholder"),
  brush: $("brush"), eraser: $("eraser"), size: $("size"), sizeValue: $("size-value"), undo: $("undo"),
  clear: $("clear"), auto: $("auto"), overlay: $("overlay"), model: $("model"), modelInfo: $("model-info"),
  run: $("run"), status: $("status"), error: $("error"), faces: $("faces"), comparePanel: $("compare-panel"),
  compare: $("compare"), before: $("before"), result: $("result"), slider: $("slider"),
  download: $("download"), report: $("report"),
};

const state = {
  file: null, fileUrl: null, resultUrl: null, photo: null, W: 0, H: 0, faces: [], models: [],
  maxUploadMB: 20, maxSide: 8000, tool: "brush", busy: false,
  mask: null, maskCtx: null,      // full-resolution mask: opaque white = fill, transparent = keep
  tint: null, tintCtx: null,      // the mask tinted red, for the overlay
  autoMask: null,                 // the detected mask, for "Auto mask"
  undo: [], undoLimit: 20,        // canvases holding earlier mask states
  drawing: false, last: null, hover: null, pending: false,
};
const ctx = ui.canvas.getContext("2d");

// -- status, errors, busy -----------------------------------------------------------------------
function setStatus(text, kind) {
  ui.status.textContent = text;
  ui.status.dataset.state = kind;
  ui.status.classList.toggle("busy", kind === "busy");
  document.body.classList.toggle("busy", kind === "busy");
}
function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = !message;
}
function setBusy(busy, text) {
  state.busy = busy;
  if (busy) { showError(""); setStatus(text, "busy"); }
  updateButtons();
}
function updateButtons() {
  const ready = !!state.photo && !state.busy;
  ui.run.disabled = !ready;
  ui.clear.disabled = !ready;
  ui.auto.disabled = !ready || !state.autoMask;
  ui.undo.disabled = !ready || state.undo.length === 0;
  ui.file.disabled = state.busy;
}
function fail(message) {
  setBusy(false);
  showError(message);
  setStatus("Something went wrong (see below).", "error");
}

async function api(path, options) {
  let res;
  try {
    res = await fetch(path, options);
  } catch (e) {
    throw new Error("cannot reach the unveil server (is `unveil serve` still running?)");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const detail = body && body.detail;
    const text = typeof detail === "string" ? detail : (detail ? JSON.stringify(detail) : res.statusText);
    throw new Error(`${text} (HTTP ${res.status})`);
  }
  return body;
}

function b64ToBlob(b64, type) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type });
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the image could not be decoded"));
    img.src = url;
  });
}

function newCanvas(w, h) {
  const c = document.createElement("canvas");
  c.width = w; c.height = h;
  return c;
}

// -- models ---------------------------------------------------------------------------------------
async function loadModels() {
  try {
    const data = await api("/api/models");
    state.models = data.models;
    state.maxUploadMB = data.max_upload_mb;
    state.maxSide = data.max_side;
    ui.model.innerHTML = "";
    for (const m of data.models) {
      const opt = document.createElement("option");
      opt.value = m.name;
      opt.textContent = m.name + (m.name === data.default ? " (default)" : "");
      opt.selected = m.name === data.default;
      ui.model.appendChild(opt);
    }
    ui.limits.textContent = `Up to ${data.max_upload_mb} MB and ${data.max_side} pixels a side.`;
    showModelInfo();
  } catch (e) {
    fail(`Could not list the models: ${e.message}`);
  }
}
function showModelInfo() {
  const m = state.models.find((x) => x.name === ui.model.value);
  if (!m) { ui.modelInfo.textContent = ""; return; }
  const nums = [];
  if (m.psnr != null) nums.push(`PSNR ${m.psnr.toFixed(2)} dB`);
  if (m.lpips != null) nums.push(`LPIPS ${m.lpips.toFixed(3)}`);
  if (m.ms != null) nums.push(`${Math.round(m.ms)} ms a face`);
  ui.modelInfo.textContent = m.summary + (nums.length ? ` (${nums.join(", ")})` : "");
}

// -- photo upload and analysis ------------------------------------------------------------------
async function loadFile(file) {
  if (!file || state.busy) return;
  showError("");
  if (file.size > state.maxUploadMB * 1024 * 1024) {
    fail(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${state.maxUploadMB} MB.`);
    return;
  }
  setBusy(true, `Analyzing ${file.name}…`);
  try {
    const fileUrl = URL.createObjectURL(file);
    let photo;
    try {
      photo = await loadImage(fileUrl);
    } catch (e) {
      URL.revokeObjectURL(fileUrl);
      throw new Error(`${file.name}: this browser cannot display the file; use a JPEG, PNG or WebP photo`);
    }
    const form = new FormData();
    form.append("image", file, file.name);
    let data;
    try {
      data = await api("/api/analyze", { method: "POST", body: form });
    } catch (e) {
      URL.revokeObjectURL(fileUrl);
      throw e;
    }
    if (data.width !== photo.naturalWidth || data.height !== photo.naturalHeight) {
      URL.revokeObjectURL(fileUrl);
      throw new Error(`the browser shows this photo as ${photo.naturalWidth}x${photo.naturalHeight} but it is ` +
                      `${data.width}x${data.height}; save it again without rotation metadata`);
    }
    if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
    Object.assign(state, { file, fileUrl, photo, W: data.width, H: data.height, faces: data.faces });
    setupCanvases();
    const maskImg = await loadImage("data:image/png;base64," + data.mask_png);
    state.autoMask = maskFromImage(maskImg);
    state.undo = [];
    state.maskCtx.drawImage(state.autoMask, 0, 0);
    showFaces(data);
    ui.comparePanel.hidden = true;
    setBusy(false);
    const n = data.faces.length;
    const share = (data.mask_share * 100).toFixed(1);
    setStatus(n ? `${n} face${n > 1 ? "s" : ""} found; the automatic mask covers ${share} % of the photo. ` +
                  `Edit it, then Run.`
                : "No face found: paint the mask yourself, then Run.", "ready");
    render();
  } catch (e) {
    fail(e.message);
  }
}

// display size: the photo fitted to the panel and the window (small photos enlarged up to 4x);
// the canvas keeps the photo's full resolution
function fitCanvas() {
  if (!state.photo) return;
  const panel = ui.canvas.parentElement.getBoundingClientRect();
  const availW = Math.max(100, panel.width - 26);
  const availH = Math.max(240, window.innerHeight - 120);
  const scale = Math.min(availW / state.W, availH / state.H, 4);
  const w = `${Math.max(1, Math.floor(state.W * scale))}px`, h = `${Math.max(1, Math.floor(state.H * scale))}px`;
  ui.canvas.style.width = ui.compare.style.width = w;
  ui.canvas.style.height = ui.compare.style.height = h;
}
window.addEventListener("resize", () => { fitCanvas(); scheduleRender(); });

function setupCanvases() {
  const { W, H } = state;
  ui.canvas.width = W; ui.canvas.height = H;
  ui.canvas.hidden = false;
  ui.placeholder.hidden = true;
  fitCanvas();
  state.mask = newCanvas(W, H);
  state.maskCtx = state.mask.getContext("2d", { willReadFrequently: false });
  state.tint = newCanvas(W, H);
  state.tintCtx = state.tint.getContext("2d");
  // undo keeps whole mask copies: at most ~600 MB of them, at least 2
  state.undoLimit = Math.max(2, Math.min(30, Math.floor(600e6 / (W * H * 4))));
  const side = Math.min(W, H);
  ui.size.max = String(Math.max(20, Math.round(side / 4)));
  ui.size.value = String(Math.max(4, Math.min(+ui.size.max, Math.round(side / 25))));
  showSize();
}

// white on black (the server's PNG) -> opaque white on transparent, in a photo-sized canvas
function maskFromImage(img) {
  const c = newCanvas(state.W, state.H);
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, state.W, state.H);
  const p = d.data;
  for (let i = 0; i < p.length; i += 4) {
    const on = p[i] > 127;
    p[i] = p[i + 1] = p[i + 2] = 255;
    p[i + 3] = on ? 255 : 0;
  }
  g.putImageData(d, 0, 0);
  return c;
}

function showFaces(data) {
  ui.faces.innerHTML = "";
  for (const f of data.faces) {
    const li = document.createElement("li");
    const [x0, y0, x1, y1] = f.box;
    li.textContent = `face ${f.index}: ${Math.round(x1 - x0)}×${Math.round(y1 - y0)} px, score ${f.score.toFixed(2)}`;
    ui.faces.appendChild(li);
  }
}

// -- drawing --------------------------------------------------------------------------------------
function render() {
  state.pending = false;
  if (!state.photo) return;
  const { W, H } = state;
  ctx.globalCompositeOperation = "source-over";
  ctx.globalAlpha = 1;
  ctx.drawImage(state.photo, 0, 0, W, H);
  if (ui.overlay.checked) {
    const t = state.tintCtx;
    t.globalCompositeOperation = "source-over";
    t.clearRect(0, 0, W, H);
    t.drawImage(state.mask, 0, 0);
    t.globalCompositeOperation = "source-in";
    t.fillStyle = "rgb(255, 40, 60)";
    t.fillRect(0, 0, W, H);
    ctx.globalAlpha = 0.5;
    ctx.drawImage(state.tint, 0, 0);
    ctx.globalAlpha = 1;
  }
  const px = screenPixel();
  ctx.lineWidth = 2 * px;
  ctx.font = `${Math.round(13 * px)}px sans-serif`;
  for (const f of state.faces) {
    const [x0, y0, x1, y1] = f.box;
    ctx.strokeStyle = "rgb(60, 220, 120)";
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.fillStyle = "rgb(60, 220, 120)";
    ctx.fillText(`face ${f.index}`, x0 + 3 * px, Math.max(y0 - 4 * px, 12 * px));
  }
  if (state.hover) {
    ctx.beginPath();
    ctx.arc(state.hover.x, state.hover.y, +ui.size.value / 2, 0, 2 * Math.PI);
    ctx.strokeStyle = state.tool === "brush" ? "rgba(255,255,255,0.9)" : "rgba(120,200,255,0.9)";
    ctx.lineWidth = 1.5 * px;
    ctx.stroke();
  }
}
function scheduleRender() {
  if (!state.pending) { state.pending = true; requestAnimationFrame(render); }
}
// photo pixels per CSS pixel
function screenPixel() {
  const r = ui.canvas.getBoundingClientRect();
  return r.width ? state.W / r.width : 1;
}
function toPhoto(ev) {
  const r = ui.canvas.getBoundingClientRect();
  return { x: (ev.clientX - r.left) * state.W / r.width, y: (ev.clientY - r.top) * state.H / r.height };
}

function pushUndo() {
  const c = newCanvas(state.W, state.H);
  c.getContext("2d").drawImage(state.mask, 0, 0);
  state.undo.push(c);
  while (state.undo.length > state.undoLimit) state.undo.shift();
  updateButtons();
}
function undo() {
  if (!state.undo.length || state.busy) return;
  const c = state.undo.pop();
  const m = state.maskCtx;
  m.globalCompositeOperation = "source-over";
  m.clearRect(0, 0, state.W, state.H);
  m.drawImage(c, 0, 0);
  updateButtons();
  scheduleRender();
}
function setMask(source) {  // null: clear
  if (!state.photo || state.busy) return;
  pushUndo();
  const m = state.maskCtx;
  m.globalCompositeOperation = "source-over";
  m.clearRect(0, 0, state.W, state.H);
  if (source) m.drawImage(source, 0, 0);
  scheduleRender();
}

function strokeTo(p) {
  const m = state.maskCtx;
  const size = +ui.size.value;
  m.globalCompositeOperation = state.tool === "brush" ? "source-over" : "destination-out";
  m.strokeStyle = m.fillStyle = "#fff";
  m.lineWidth = size;
  m.lineCap = m.lineJoin = "round";
  if (!state.last) {
    m.beginPath();
    m.arc(p.x, p.y, size / 2, 0, 2 * Math.PI);
    m.fill();
  } else {
    m.beginPath();
    m.moveTo(state.last.x, state.last.y);
    m.lineTo(p.x, p.y);
    m.stroke();
  }
  state.last = p;
  scheduleRender();
}

ui.canvas.addEventListener("pointerdown", (ev) => {
  if (!state.photo || state.busy || ev.button !== 0) return;
  ev.preventDefault();
  ui.canvas.setPointerCapture(ev.pointerId);
  pushUndo();
  state.drawing = true;
  state.last = null;
  strokeTo(toPhoto(ev));
});
ui.canvas.addEventListener("pointermove", (ev) => {
  if (!state.photo) return;
  const p = toPhoto(ev);
  state.hover = p;
  if (state.drawing) strokeTo(p); else scheduleRender();
});
const endStroke = () => { state.drawing = false; state.last = null; };
ui.canvas.addEventListener("pointerup", endStroke);
ui.canvas.addEventListener("pointercancel", endStroke);
ui.canvas.addEventListener("pointerleave", () => { state.hover = null; scheduleRender(); });

function setTool(tool) {
  state.tool = tool;
  for (const [b, t] of [[ui.brush, "brush"], [ui.eraser, "eraser"]]) {
    b.classList.toggle("active", t === tool);
    b.setAttribute("aria-pressed", String(t === tool));
  }
  scheduleRender();
}
function showSize() { ui.sizeValue.textContent = `${ui.size.value} px`; scheduleRender(); }

ui.brush.addEventListener("click", () => setTool("brush"));
ui.eraser.addEventListener("click", () => setTool("eraser"));
ui.size.addEventListener("input", showSize);
ui.undo.addEventListener("click", undo);
ui.clear.addEventListener("click", () => setMask(null));
ui.auto.addEventListener("click", () => setMask(state.autoMask));
ui.overlay.addEventListener("change", scheduleRender);
ui.model.addEventListener("change", showModelInfo);
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== "range") return;
  if (ev.target instanceof HTMLSelectElement) return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === "z") { ev.preventDefault(); undo(); }
  else if (ev.key === "b") setTool("brush");
  else if (ev.key === "e") setTool("eraser");
  else if (ev.key === "[" || ev.key === "]") {
    ui.size.value = String(+ui.size.value + (ev.key === "]" ? 2 : -2));
    showSize();
  }
});

// -- restore ------------------------------------------------------------------------------------
function maskBlob() {
  return new Promise((resolve, reject) => state.mask.toBlob(
    (b) => (b ? resolve(b) : reject(new Error("could not encode the mask"))), "image/png"));
}

async function run() {
  if (!state.photo || state.busy) return;
  const model = ui.model.value;
  setBusy(true, `Restoring with ${model}…`);
  try {
    const form = new FormData();
    form.append("image", state.file, state.file.name);
    form.append("mask", await maskBlob(), "mask.png");
    form.append("model", model);
    form.append("faces", "all");
    const data = await api("/api/restore", { method: "POST", body: form });
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(b64ToBlob(data.image_png, "image/png"));
    await loadImage(state.resultUrl);
    ui.before.src = state.fileUrl;
    ui.result.src = state.resultUrl;
    const stem = state.file.name.replace(/\.[^.]+$/, "") || "photo";
    ui.download.href = state.resultUrl;
    ui.download.download = `${stem}-unveiled.png`;
    ui.comparePanel.hidden = false;
    const restored = data.faces.filter((f) => f.restored).length;
    ui.report.textContent = data.faces.map((f) =>
      `face ${f.index}: ${f.restored ? `${f.occluder}, ${(f.area * 100).toFixed(0)} % filled` : (f.note || "unchanged")}`
    ).join("; ");
    setBusy(false);
    setStatus(`Done in ${data.seconds.toFixed(2)} s with ${data.model}: ${(data.filled_share * 100).toFixed(2)} % ` +
              `of the photo filled, ${restored} face${restored === 1 ? "" : "s"} restored.`, "done");
    ui.comparePanel.scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) {
    fail(e.message);
  }
}
ui.run.addEventListener("click", run);

// -- before/after slider --------------------------------------------------------------------------
function showSlider() { ui.compare.style.setProperty("--pos", `${ui.slider.value}%`); }
ui.slider.addEventListener("input", showSlider);
function slideTo(ev) {
  const r = ui.compare.getBoundingClientRect();
  ui.slider.value = String(Math.round(Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width)) * 100));
  showSlider();
}
ui.compare.addEventListener("pointerdown", (ev) => {
  ev.preventDefault();
  ui.compare.setPointerCapture(ev.pointerId);
  slideTo(ev);
});
ui.compare.addEventListener("pointermove", (ev) => { if (ev.buttons & 1) slideTo(ev); });

// -- file input and drag and drop ------------------------------------------------------------------
ui.file.addEventListener("change", () => { loadFile(ui.file.files[0]); });
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (ev) => { ev.preventDefault(); ui.drop.classList.add("dragging"); });
}
document.addEventListener("dragleave", (ev) => {
  if (ev.target === document.documentElement || ev.relatedTarget === null) ui.drop.classList.remove("dragging");
});
document.addEventListener("drop", (ev) => {
  ev.preventDefault();
  ui.drop.classList.remove("dragging");
  const f = ev.dataTransfer && ev.dataTransfer.files[0];
  if (f) loadFile(f);
});

showSlider();
updateButtons();
loadModels();
