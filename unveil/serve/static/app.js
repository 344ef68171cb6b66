// unveil's web page: plain JavaScript, no build step, nothing fetched from outside this server.
// The mask is edited at the photo's full resolution (the canvas is only scaled for display by CSS,
// which is also how zoom works: the canvas grows inside a scrolling viewport), so the mask sent to
// /api/restore is exactly the photo's size.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  file: $("file"), drop: $("drop"), limits: $("limits"), canvas: $("canvas"), placeholder: $("placeholder"),
  viewport: $("viewport"), zoombar: $("zoombar"), zoomIn: $("zoom-in"), zoomOut: $("zoom-out"),
  zoomFit: $("zoom-fit"), zoom1: $("zoom-1"), zoomValue: $("zoom-value"),
  brush: $("brush"), eraser: $("eraser"), pan: $("pan"), size: $("size"), sizeValue: $("size-value"),
  undo: $("undo"), redo: $("redo"), clear: $("clear"), auto: $("auto"), overlay: $("overlay"),
  coverage: $("coverage"), threshold: $("threshold"), thresholdValue: $("threshold-value"),
  dilate: $("dilate"), dilateValue: $("dilate-value"), faces: $("faces"),
  model: $("model"), modelInfo: $("model-info"), run: $("run"), progress: $("progress"),
  status: $("status"), error: $("error"), errorText: $("error-text"), errorClose: $("error-close"),
  comparePanel: $("compare-panel"), stale: $("stale"), compare: $("compare"), before: $("before"),
  result: $("result"), slider: $("slider"), download: $("download"), again: $("again"),
  original: $("original"), report: $("report"),
};

const state = {
  file: null, fileUrl: null, photo: null, W: 0, H: 0, faces: [], models: [],
  original: null,                 // {file, url} of the uploaded photo (a second pass edits a result)
  pass: 1,                        // 1: the upload; 2, 3...: painting on a result
  resultUrl: null, resultBlob: null,
  maxUploadMB: 20, maxSide: 8000, tool: "brush", busy: false,
  mask: null, maskCtx: null,      // full-resolution mask: opaque white = fill, transparent = keep
  tint: null, tintCtx: null,      // the mask tinted red, for the overlay
  autoMask: null,                 // the detected mask, for "Auto mask"
  undo: [], redo: [], undoLimit: 20,   // canvases holding earlier (and undone) mask states
  chosen: new Set(),              // indices of the faces to restore
  drawing: false, last: null, hover: null, pending: false,
  fit: 1, zoom: 1, fitted: true,  // CSS pixels per photo pixel: the fitted scale, the current one
  panning: null, spaceDown: false, reanalyze: null,
};
const ctx = ui.canvas.getContext("2d");
const MAX_ZOOM = 32;

// -- status, errors, busy -----------------------------------------------------------------------
function setStatus(text, kind) {
  ui.status.textContent = text;
  ui.status.dataset.state = kind;
  ui.status.classList.toggle("busy", kind === "busy");
  document.body.classList.toggle("busy", kind === "busy");
}
// the message is fixed at the top of the window, so it is seen wherever the page is scrolled
function showError(message) {
  ui.errorText.textContent = message;
  ui.error.hidden = !message;
}
ui.errorClose.addEventListener("click", () => showError(""));
function setBusy(busy, text) {
  state.busy = busy;
  if (busy) { showError(""); setStatus(text, "busy"); } else { showProgress(null); }
  updateButtons();
}
function updateButtons() {
  const ready = !!state.photo && !state.busy;
  const noFace = state.faces.length > 0 && state.chosen.size === 0;
  ui.run.disabled = !ready || noFace;
  ui.run.title = noFace ? "Choose at least one face in the list" : "";
  ui.clear.disabled = !ready;
  ui.auto.disabled = !ready || !state.autoMask;
  ui.undo.disabled = !ready || state.undo.length === 0;
  ui.redo.disabled = !ready || state.redo.length === 0;
  ui.again.disabled = state.busy || !state.resultBlob;
  ui.original.disabled = state.busy;
  ui.threshold.disabled = ui.dilate.disabled = !ready;
  ui.file.disabled = state.busy;
}
function fail(message) {
  setBusy(false);
  showError(message);
  setStatus("Something went wrong: see the message at the top.", "error");
}
// progress: a fraction (uploading), true (working, no measure of how far), null (hidden)
function showProgress(value) {
  ui.progress.hidden = value === null;
  if (value === true) ui.progress.removeAttribute("value");
  else if (value !== null) ui.progress.value = value;
}

function errorText(status, body, fallback) {
  const detail = body && body.detail;
  const text = typeof detail === "string" ? detail : (detail ? JSON.stringify(detail) : fallback);
  return `${text} (HTTP ${status})`;
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
  if (!res.ok) throw new Error(errorText(res.status, body, res.statusText));
  return body;
}
// a POST that reports its upload's progress (fetch cannot), then waits for the answer
function post(path, form, onUpload) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", path);
    x.upload.onprogress = (e) => { if (e.lengthComputable && onUpload) onUpload(e.loaded / e.total, false); };
    x.upload.onload = () => { if (onUpload) onUpload(1, true); };
    x.onerror = () => reject(new Error("cannot reach the unveil server (is `unveil serve` still running?)"));
    x.onload = () => {
      let body = null;
      try { body = JSON.parse(x.responseText); } catch (e) { /* not JSON */ }
      if (x.status >= 200 && x.status < 300 && body) resolve(body);
      else reject(new Error(errorText(x.status, body, x.statusText || "no answer")));
    };
    x.send(form);
  });
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
function detectionFields(form) {
  form.append("threshold", ui.threshold.value);
  form.append("dilate", ui.dilate.value);
  form.append("faces", facesField());
}
function facesField() {
  if (!state.faces.length || state.chosen.size === state.faces.length) return "all";
  return [...state.chosen].sort((a, b) => a - b).join(",");
}

// ``pass``: 1 for a photo chosen by the user, 2+ when a result becomes the photo to paint on
async function loadFile(file, pass = 1) {
  if (!file || state.busy) return;
  showError("");
  if (file.size > state.maxUploadMB * 1024 * 1024) {
    fail(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${state.maxUploadMB} MB.`);
    return;
  }
  setBusy(true, pass > 1 ? "Taking the result as the photo…" : `Analyzing ${file.name}…`);
  showProgress(true);
  const fileUrl = URL.createObjectURL(file);
  try {
    let photo;
    try {
      photo = await loadImage(fileUrl);
    } catch (e) {
      throw new Error(`${file.name}: this browser cannot display the file; use a JPEG, PNG or WebP photo`);
    }
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("threshold", ui.threshold.value);
    form.append("dilate", ui.dilate.value);
    const data = await api("/api/analyze", { method: "POST", body: form });
    if (data.width !== photo.naturalWidth || data.height !== photo.naturalHeight) {
      throw new Error(`the browser shows this photo as ${photo.naturalWidth}x${photo.naturalHeight} but it is ` +
                      `${data.width}x${data.height}; save it again without rotation metadata`);
    }
    if (state.fileUrl && state.fileUrl !== (state.original && state.original.url)) URL.revokeObjectURL(state.fileUrl);
    if (pass === 1) {
      if (state.original) URL.revokeObjectURL(state.original.url);
      state.original = { file, url: fileUrl };
    }
    Object.assign(state, { file, fileUrl, photo, W: data.width, H: data.height, faces: data.faces, pass });
    state.chosen = new Set(data.faces.map((f) => f.index));
    setupCanvases();
    state.autoMask = maskFromImage(await loadImage("data:image/png;base64," + data.mask_png));
    state.undo = []; state.redo = [];
    state.maskCtx.drawImage(state.autoMask, 0, 0);
    showFaces();
    ui.comparePanel.hidden = true;
    ui.original.hidden = pass === 1;
    setBusy(false);
    const n = data.faces.length;
    const share = (data.mask_share * 100).toFixed(1);
    const what = pass > 1 ? `Pass ${pass}: the restored photo is now the one you edit; ` : "";
    setStatus(n ? `${what}${n} face${n > 1 ? "s" : ""} found; the automatic mask covers ${share} % of the photo. ` +
                  `Edit it, then Run.`
                : `${what}No face found: paint the mask yourself, then Run.`, "ready");
    showCoverage();
    render();
    ui.canvas.scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) {
    if (fileUrl !== state.fileUrl && !(state.original && fileUrl === state.original.url)) URL.revokeObjectURL(fileUrl);
    fail(e.message);
  }
}

// the automatic mask again, at the detection controls' settings and for the chosen faces
async function findAgain() {
  if (!state.photo) return;
  if (state.busy) { scheduleFindAgain(); return; }
  setBusy(true, "Finding the mask again…");
  showProgress(true);
  try {
    const form = new FormData();
    form.append("image", state.file, state.file.name);
    detectionFields(form);
    const data = await api("/api/analyze", { method: "POST", body: form });
    state.autoMask = maskFromImage(await loadImage("data:image/png;base64," + data.mask_png));
    setBusy(false);
    setMask(state.autoMask);
    setStatus(`Mask found again (threshold ${(+ui.threshold.value).toFixed(2)}, grow ${ui.dilate.value} px, ` +
              `${facesField() === "all" ? "every face" : "faces " + facesField()}): it covers ` +
              `${(data.mask_share * 100).toFixed(1)} % of the photo. Undo brings the previous mask back.`, "ready");
  } catch (e) {
    fail(e.message);
  }
}
function scheduleFindAgain() {
  clearTimeout(state.reanalyze);
  state.reanalyze = setTimeout(findAgain, 350);
}

function setupCanvases() {
  const { W, H } = state;
  ui.canvas.width = W; ui.canvas.height = H;
  ui.canvas.hidden = false;
  ui.placeholder.hidden = true;
  ui.zoombar.hidden = false;
  state.fitted = true;
  fitCanvas();
  state.mask = newCanvas(W, H);
  state.maskCtx = state.mask.getContext("2d", { willReadFrequently: false });
  state.tint = newCanvas(W, H);
  state.tintCtx = state.tint.getContext("2d");
  // undo keeps whole mask copies: at most ~600 MB of them (undo and redo together), at least 2
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

function showFaces() {
  ui.faces.innerHTML = "";
  for (const f of state.faces) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.checked = state.chosen.has(f.index);
    box.dataset.face = String(f.index);
    box.addEventListener("change", () => {
      if (box.checked) state.chosen.add(f.index); else state.chosen.delete(f.index);
      updateButtons();
      scheduleRender();
      if (state.chosen.size) scheduleFindAgain();
    });
    const [x0, y0, x1, y1] = f.box;
    label.append(box, ` face ${f.index}: ${Math.round(x1 - x0)}×${Math.round(y1 - y0)} px, score ${f.score.toFixed(2)}`);
    li.appendChild(label);
    ui.faces.appendChild(li);
  }
}

// the share of the photo the mask covers, measured on a copy of at most a megapixel
function maskShare() {
  const s = Math.min(1, Math.sqrt(1e6 / (state.W * state.H)));
  const w = Math.max(1, Math.round(state.W * s)), h = Math.max(1, Math.round(state.H * s));
  const c = newCanvas(w, h);
  const g = c.getContext("2d", { willReadFrequently: true });
  g.drawImage(state.mask, 0, 0, w, h);
  const p = g.getImageData(0, 0, w, h).data;
  let sum = 0;
  for (let i = 3; i < p.length; i += 4) sum += p[i];
  return sum / 255 / (w * h);
}
function showCoverage() {
  if (!state.photo) { ui.coverage.textContent = ""; return; }
  const share = maskShare();
  ui.coverage.textContent = share > 0 ? `The mask covers ${(share * 100).toFixed(1)} % of the photo.`
                                      : "The mask is empty: paint what to fill.";
  ui.coverage.dataset.share = share.toFixed(5);
}

// -- zoom and pan ----------------------------------------------------------------------------------
// the fitted scale: the photo fitted to the panel and the window (small photos enlarged up to 4x)
function fitScale() {
  const vp = ui.viewport.getBoundingClientRect();
  const availW = Math.max(100, vp.width - 4);
  const availH = Math.max(240, window.innerHeight - 160);
  return Math.min(availW / state.W, availH / state.H, 4);
}
function applyZoom() {
  const w = Math.max(1, Math.round(state.W * state.zoom)), h = Math.max(1, Math.round(state.H * state.zoom));
  ui.canvas.style.width = `${w}px`;
  ui.canvas.style.height = `${h}px`;
  ui.zoomValue.textContent = `${Math.round(state.zoom * 100)} %`;
  ui.zoomValue.dataset.zoom = state.zoom.toFixed(4);
}
function fitCanvas() {
  if (!state.photo && !state.W) return;
  state.fit = fitScale();
  if (state.fitted) state.zoom = state.fit;
  applyZoom();
  const cw = Math.max(1, Math.floor(state.W * state.fit)), ch = Math.max(1, Math.floor(state.H * state.fit));
  ui.compare.style.width = `${cw}px`;
  ui.compare.style.height = `${ch}px`;
}
window.addEventListener("resize", () => { fitCanvas(); scheduleRender(); });

// zoom to ``z`` CSS pixels per photo pixel, keeping the photo point under (cx, cy) where it is
function zoomTo(z, cx, cy) {
  if (!state.photo) return;
  const vp = ui.viewport.getBoundingClientRect();
  if (cx === undefined) { cx = vp.left + vp.width / 2; cy = vp.top + vp.height / 2; }
  const before = ui.canvas.getBoundingClientRect();
  const px = (cx - before.left) / state.zoom, py = (cy - before.top) / state.zoom;
  state.zoom = Math.min(MAX_ZOOM, Math.max(Math.min(state.fit, 1) / 2, z));
  state.fitted = Math.abs(state.zoom - state.fit) < 1e-6;
  applyZoom();
  const after = ui.canvas.getBoundingClientRect();
  ui.viewport.scrollLeft += after.left + px * state.zoom - cx;
  ui.viewport.scrollTop += after.top + py * state.zoom - cy;
  scheduleRender();
}
const zoomBy = (f, cx, cy) => zoomTo(state.zoom * f, cx, cy);
ui.zoomIn.addEventListener("click", () => zoomBy(1.5));
ui.zoomOut.addEventListener("click", () => zoomBy(1 / 1.5));
ui.zoomFit.addEventListener("click", () => { state.fitted = true; fitCanvas(); scheduleRender(); });
ui.zoom1.addEventListener("click", () => zoomTo(1 / (window.devicePixelRatio || 1)));
ui.viewport.addEventListener("wheel", (ev) => {
  if (!state.photo) return;
  ev.preventDefault();
  zoomBy(Math.exp(-Math.max(-300, Math.min(300, ev.deltaY)) * 0.002), ev.clientX, ev.clientY);
}, { passive: false });

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
    const on = state.chosen.has(f.index);
    ctx.strokeStyle = ctx.fillStyle = on ? "rgb(60, 220, 120)" : "rgb(150, 150, 150)";
    ctx.setLineDash(on ? [] : [6 * px, 4 * px]);
    ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
    ctx.fillText(`face ${f.index}${on ? "" : " (left as it is)"}`, x0 + 3 * px, Math.max(y0 - 4 * px, 12 * px));
  }
  ctx.setLineDash([]);
  if (state.hover && state.tool !== "pan" && !state.spaceDown) {
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

function copyMask() {
  const c = newCanvas(state.W, state.H);
  c.getContext("2d").drawImage(state.mask, 0, 0);
  return c;
}
function putMask(c) {
  const m = state.maskCtx;
  m.globalCompositeOperation = "source-over";
  m.clearRect(0, 0, state.W, state.H);
  if (c) m.drawImage(c, 0, 0);
}
function pushUndo() {  // before a change: a new change forgets what was undone
  state.undo.push(copyMask());
  while (state.undo.length > state.undoLimit) state.undo.shift();
  state.redo = [];
  updateButtons();
}
function undo() {
  if (!state.undo.length || state.busy) return;
  state.redo.push(copyMask());
  putMask(state.undo.pop());
  maskChanged();
}
function redo() {
  if (!state.redo.length || state.busy) return;
  state.undo.push(copyMask());
  putMask(state.redo.pop());
  maskChanged();
}
function maskChanged() {
  updateButtons();
  showCoverage();
  scheduleRender();
}
function setMask(source) {  // null: clear
  if (!state.photo || state.busy) return;
  pushUndo();
  putMask(source);
  maskChanged();
}

function strokeTo(p) {
  const m = state.maskCtx;
  const size = +ui.size.value;
  m.globalCompositeOperation = state.tool === "eraser" ? "destination-out" : "source-over";
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
  if (!state.photo || state.busy) return;
  ev.preventDefault();
  ui.canvas.setPointerCapture(ev.pointerId);
  if (ev.button === 1 || state.tool === "pan" || state.spaceDown) {  // pan: drag the photo
    state.panning = { x: ev.clientX, y: ev.clientY, left: ui.viewport.scrollLeft, top: ui.viewport.scrollTop };
    ui.canvas.classList.add("panning");
    return;
  }
  if (ev.button !== 0) return;
  pushUndo();
  state.drawing = true;
  state.last = null;
  strokeTo(toPhoto(ev));
});
ui.canvas.addEventListener("pointermove", (ev) => {
  if (!state.photo) return;
  if (state.panning) {
    ui.viewport.scrollLeft = state.panning.left - (ev.clientX - state.panning.x);
    ui.viewport.scrollTop = state.panning.top - (ev.clientY - state.panning.y);
    return;
  }
  const p = toPhoto(ev);
  state.hover = p;
  if (state.drawing) strokeTo(p); else scheduleRender();
});
const endStroke = () => {
  if (state.drawing) showCoverage();
  state.drawing = false; state.last = null;
  state.panning = null;
  ui.canvas.classList.remove("panning");
};
ui.canvas.addEventListener("pointerup", endStroke);
ui.canvas.addEventListener("pointercancel", endStroke);
ui.canvas.addEventListener("pointerleave", () => { state.hover = null; scheduleRender(); });

function setTool(tool) {
  state.tool = tool;
  for (const [b, t] of [[ui.brush, "brush"], [ui.eraser, "eraser"], [ui.pan, "pan"]]) {
    b.classList.toggle("active", t === tool);
    b.setAttribute("aria-pressed", String(t === tool));
  }
  ui.canvas.classList.toggle("pan-tool", tool === "pan");
  scheduleRender();
}
function showSize() { ui.sizeValue.textContent = `${ui.size.value} px`; scheduleRender(); }
function showDetection() {
  ui.thresholdValue.textContent = (+ui.threshold.value).toFixed(2);
  ui.dilateValue.textContent = `${ui.dilate.value} px`;
}

ui.brush.addEventListener("click", () => setTool("brush"));
ui.eraser.addEventListener("click", () => setTool("eraser"));
ui.pan.addEventListener("click", () => setTool("pan"));
ui.size.addEventListener("input", showSize);
ui.undo.addEventListener("click", undo);
ui.redo.addEventListener("click", redo);
ui.clear.addEventListener("click", () => setMask(null));
ui.auto.addEventListener("click", () => setMask(state.autoMask));
ui.overlay.addEventListener("change", scheduleRender);
ui.model.addEventListener("change", showModelInfo);
for (const el of [ui.threshold, ui.dilate]) {
  el.addEventListener("input", showDetection);
  el.addEventListener("change", scheduleFindAgain);
}
document.addEventListener("keydown", (ev) => {
  if (ev.target instanceof HTMLInputElement && ev.target.type !== "range") return;
  if (ev.target instanceof HTMLSelectElement) return;
  const key = ev.key.toLowerCase();
  if ((ev.ctrlKey || ev.metaKey) && (key === "y" || (key === "z" && ev.shiftKey))) { ev.preventDefault(); redo(); }
  else if ((ev.ctrlKey || ev.metaKey) && key === "z") { ev.preventDefault(); undo(); }
  else if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  else if (key === "b") setTool("brush");
  else if (key === "e") setTool("eraser");
  else if (key === "h") setTool("pan");
  else if (key === "+" || key === "=") zoomBy(1.5);
  else if (key === "-") zoomBy(1 / 1.5);
  else if (key === "0") ui.zoomFit.click();
  else if (key === "1") ui.zoom1.click();
  else if (key === " " && state.photo) { ev.preventDefault(); state.spaceDown = true; ui.canvas.classList.add("pan-tool"); }
  else if (ev.key === "[" || ev.key === "]") {
    ui.size.value = String(+ui.size.value + (ev.key === "]" ? 2 : -2));
    showSize();
  }
});
document.addEventListener("keyup", (ev) => {
  if (ev.key === " ") { state.spaceDown = false; ui.canvas.classList.toggle("pan-tool", state.tool === "pan"); }
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
  const t0 = performance.now();
  let working = null;
  try {
    const form = new FormData();
    form.append("image", state.file, state.file.name);
    form.append("mask", await maskBlob(), "mask.png");
    form.append("model", model);
    detectionFields(form);
    const data = await post("/api/restore", form, (share, done) => {
      if (!done) { showProgress(share); setStatus(`Sending the photo… ${Math.round(share * 100)} %`, "busy"); return; }
      showProgress(true);
      const t1 = performance.now();
      const tick = () => setStatus(`Restoring with ${model}… ${((performance.now() - t1) / 1000).toFixed(1)} s`, "busy");
      tick();
      working = setInterval(tick, 200);
    });
    clearInterval(working);
    const blob = b64ToBlob(data.image_png, "image/png");
    const url = URL.createObjectURL(blob);
    await loadImage(url);
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    Object.assign(state, { resultUrl: url, resultBlob: blob });
    ui.before.src = state.original ? state.original.url : state.fileUrl;
    ui.result.src = url;
    const stem = (state.original ? state.original.file.name : state.file.name).replace(/\.[^.]+$/, "") || "photo";
    ui.download.href = url;
    ui.download.download = `${stem}-unveiled.png`;
    ui.comparePanel.hidden = false;
    ui.stale.hidden = true;
    ui.comparePanel.classList.remove("stale");
    const restored = data.faces.filter((f) => f.restored).length;
    ui.report.textContent = data.faces.map((f) =>
      `face ${f.index}: ${f.restored ? `${f.occluder}, ${(f.area * 100).toFixed(0)} % filled` : (f.note || "unchanged")}`
    ).join("; ");
    setBusy(false);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    setStatus(`Done in ${secs} s with ${data.model}${state.pass > 1 ? ` (pass ${state.pass})` : ""}: ` +
              `${(data.filled_share * 100).toFixed(2)} % of the photo filled, ${restored} face` +
              `${restored === 1 ? "" : "s"} restored.`, "done");
    ui.comparePanel.scrollIntoView({ behavior: "smooth", block: "nearest" });
  } catch (e) {
    clearInterval(working);
    if (!ui.comparePanel.hidden) { ui.stale.hidden = false; ui.comparePanel.classList.add("stale"); }
    fail(e.message);
  }
}
ui.run.addEventListener("click", run);

// a second pass: the result becomes the photo to paint on (the original stays the "before")
ui.again.addEventListener("click", () => {
  if (!state.resultBlob || state.busy) return;
  const stem = (state.original ? state.original.file.name : "photo").replace(/\.[^.]+$/, "");
  loadFile(new File([state.resultBlob], `${stem}-unveiled.png`, { type: "image/png" }), state.pass + 1);
});
ui.original.addEventListener("click", () => { if (state.original) loadFile(state.original.file, 1); });

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
ui.file.addEventListener("change", () => { loadFile(ui.file.files[0], 1); });
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
  if (f) loadFile(f, 1);
});

showSlider();
showDetection();
updateButtons();
loadModels();
