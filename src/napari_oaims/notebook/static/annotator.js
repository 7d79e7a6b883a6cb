// The browser part of napari_oaims.notebook.Annotator (anywidget): draws the plane and the
// overlays on a canvas and sends prompts and actions to the kernel. The kernel answers a prompt
// with the changed overlay region as a PNG in a binary buffer.

const PING_MS = 2500;
const DEAD_MS = 8000;
const DRAG_PX = 4;

function button(text, title, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.title = title;
  b.className = "oaims-button";
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(); });
  return b;
}

function keyName(spec) {
  const parts = spec.split("-");
  return { shift: parts.includes("Shift"), key: parts[parts.length - 1].toLowerCase() };
}

async function decode(buffer, type = "image/png") {
  return await createImageBitmap(new Blob([buffer], { type }));
}

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "oaims-root";
  root.tabIndex = 0;
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("data-p-suppress-shortcuts", "true");
  el.appendChild(root);

  // -- state ---------------------------------------------------------------------------------
  const layers = { image: document.createElement("canvas"), preview: document.createElement("canvas"),
                   objects: document.createElement("canvas") };
  let grey = null;            // Uint8ClampedArray of the plane's grey values (display size)
  let shape = [0, 0];         // display size of the plane
  let marks = [];             // prompts of the shown plane (display px)
  const view = { scale: 1, ox: 0, oy: 0, fitted: false };
  const pending = new Map();  // prompt id -> time sent (ms)
  let nextId = 1;
  let lastPong = performance.now();
  let queue = Promise.resolve();
  let drag = null;
  let space = false;
  const stats = { overlays: 0, latencies: [], imageShownMs: null };
  stats.view = view;
  root.oaims = stats;  // read by tests and the benchmark

  // -- layout --------------------------------------------------------------------------------
  const bar = document.createElement("div");
  bar.className = "oaims-bar";
  const polarity = button("", "click polarity: left click adds, right click removes", () => {
    model.set("positive", !model.get("positive")); model.save_changes();
  });
  const classSelect = document.createElement("select");
  classSelect.title = "class of the next accepted object";
  classSelect.addEventListener("change", () => { model.set("class_name", classSelect.value); model.save_changes(); });
  const classInput = document.createElement("input");
  classInput.placeholder = "new class";
  classInput.size = 9;
  classInput.addEventListener("keydown", (e) => {
    e.stopPropagation();
    if (e.key === "Enter" && classInput.value.trim()) {
      const name = classInput.value.trim();
      if (!model.get("classes").includes(name)) model.set("classes", [...model.get("classes"), name]);
      model.set("class_name", name); model.save_changes(); classInput.value = "";
    }
  });
  const keys = model.get("bindings");
  const act = (name) => model.send({ type: "action", name });
  const actionButtons = {};
  for (const [name, text] of [["accept", "Accept"], ["next", "Next"], ["undo", "Undo"], ["redo", "Redo"],
                              ["clear", "Clear"]]) {
    actionButtons[name] = button(`${text} [${keys[name]}]`, `${text} (key ${keys[name]})`, () => act(name));
    actionButtons[name].dataset.action = name;
  }
  bar.append(polarity, classSelect, classInput, ...Object.values(actionButtons),
             button("Fit", "show the whole plane", () => { fit(); draw(); }));
  root.appendChild(bar);

  const stackBar = document.createElement("div");
  stackBar.className = "oaims-bar";
  const sliders = [];
  const progress = document.createElement("progress");
  progress.className = "oaims-progress";
  const busyLabel = document.createElement("span");
  const cancel = button("Cancel", "stop the running propagation or suggestion (nothing changes)", () => act("cancel"));
  cancel.dataset.action = "cancel";
  const stackShape = model.get("stack_shape");
  if (stackShape.length) {
    stackShape.forEach((n, i) => {
      const label = document.createElement("label");
      const slider = document.createElement("input");
      slider.type = "range"; slider.min = 0; slider.max = n - 1; slider.step = 1; slider.value = 0;
      slider.className = "oaims-slice";
      const value = document.createElement("span");
      slider.addEventListener("input", () => { value.textContent = `${slider.value}/${n - 1}`; });
      slider.addEventListener("change", () => {
        const key = [...model.get("key")]; key[i] = Number(slider.value);
        model.set("key", key); model.save_changes();
      });
      label.append(`slice `, slider, value);
      sliders.push([slider, value, n]);
      stackBar.appendChild(label);
    });
    const names = { propagate: "Propagate", propagate_all: "Propagate all", suggest: "Suggest next slice" };
    const tips = { propagate: "carry the object through the stack", propagate_all: "carry every accepted object through the stack",
                   suggest: "go to the propagated slice most worth checking" };
    for (const name of model.get("stack_actions")) {
      const b = button(names[name], tips[name], () => act(name));
      b.dataset.action = name;
      stackBar.appendChild(b);
    }
  }
  stackBar.append(cancel, progress, busyLabel);
  if (stackShape.length) root.appendChild(stackBar);

  const canvas = document.createElement("canvas");
  canvas.className = "oaims-canvas";
  // Where display pixel (y, x) is on the page, and how many pixels a layer shows (tests, benchmark).
  stats.toClient = (y, x) => {
    const rect = canvas.getBoundingClientRect();
    return [rect.left + (view.ox + x * view.scale) * rect.width / canvas.width,
            rect.top + (view.oy + y * view.scale) * rect.height / canvas.height];
  };
  stats.pixel = (y, x) => Array.from(ctx.getImageData(Math.round(view.ox + x * view.scale),
                                                          Math.round(view.oy + y * view.scale), 1, 1).data);
  stats.count = (name) => {
    const c = layers[name];
    if (!c.width) return 0;
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
    return n;
  };
  canvas.width = 640; canvas.height = 512;
  root.appendChild(canvas);
  const ctx = canvas.getContext("2d");

  const tools = document.createElement("div");
  tools.className = "oaims-bar";
  const range = (title, min, max, step, value, onInput) => {
    const label = document.createElement("label");
    const input = document.createElement("input");
    input.type = "range"; input.min = min; input.max = max; input.step = step; input.value = value;
    input.addEventListener("input", () => onInput(Number(input.value)));
    label.append(title, input);
    tools.appendChild(label);
    return input;
  };
  const opacity = range("opacity ", 0, 1, 0.05, model.get("opacity"), (v) => { model.set("opacity", v); model.save_changes(); draw(); });
  const [glo, ghi] = model.get("grey_range");
  const contrastInputs = [0, 1].map((i) => range(i ? " max " : " contrast min ", glo, ghi, 0.01, model.get("contrast")[i], (v) => {
    const c = [...model.get("contrast")]; c[i] = v; model.set("contrast", c); model.save_changes(); applyContrast(); draw();
  }));
  const overLabel = document.createElement("label");
  const over = document.createElement("input");
  over.type = "checkbox"; over.checked = model.get("overwrite");
  overLabel.title = "ticked: an accepted object takes the pixels of objects accepted before it where they meet, " +
    "and Propagate may carry it into them; unticked: those pixels stay with the earlier objects";
  over.addEventListener("change", () => { model.set("overwrite", over.checked); model.save_changes(); });
  overLabel.append(over, " accept over other objects ");
  tools.appendChild(overLabel);
  model.on("change:overwrite", () => { over.checked = model.get("overwrite"); });
  const help = document.createElement("span");
  help.className = "oaims-help";
  help.textContent = "left click: add · right click: remove · drag: box · shift+drag: scribble · wheel: zoom · " +
                     "middle drag or space+drag: pan";
  tools.appendChild(help);
  root.appendChild(tools);

  const statusLine = document.createElement("div");
  statusLine.className = "oaims-status";
  statusLine.title = "click→overlay: from your click to its overlay on screen · model: the session's time for it · " +
    "adaptation: how the model learns online · updates: times it has learnt · rolled back: updates the guard undid " +
    "because the model answered worse after them · object: id of the object in progress";
  const messageLine = document.createElement("div");
  messageLine.className = "oaims-message";
  const connection = document.createElement("div");
  connection.className = "oaims-disconnected";
  root.append(statusLine, messageLine, connection);

  // -- drawing -------------------------------------------------------------------------------
  function fit() {
    const w = root.clientWidth || 640;
    canvas.width = Math.max(320, w - 4);
    canvas.height = Math.min(560, Math.max(320, Math.round(canvas.width * shape[0] / Math.max(1, shape[1]))));
    const s = Math.min(canvas.width / Math.max(1, shape[1]), canvas.height / Math.max(1, shape[0]));
    view.scale = s; view.ox = (canvas.width - s * shape[1]) / 2; view.oy = (canvas.height - s * shape[0]) / 2;
    view.fitted = true;
  }

  function applyContrast() {
    if (!grey) return;
    const [lo, hi] = model.get("contrast");
    const [a, b] = model.get("grey_range");
    const l = (lo - a) / (b - a) * 255, h = Math.max(l + 1e-3, (hi - a) / (b - a) * 255);
    const lut = new Uint8ClampedArray(256);
    for (let v = 0; v < 256; v++) lut[v] = (v - l) / (h - l) * 255;
    const img = new ImageData(shape[1], shape[0]);
    const d = img.data;
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) { const g = lut[grey[i]]; d[j] = g; d[j + 1] = g; d[j + 2] = g; d[j + 3] = 255; }
    layers.image.getContext("2d").putImageData(img, 0, 0);
  }

  // Draw the view; with ``region`` (display px [y0, x0, y1, x1]) only that part of it, so that a
  // click on a large image costs the browser no more than on a small one.
  function draw(region = null) {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    let [y0, x0, y1, x1] = [0, 0, shape[0], shape[1]];
    if (region) {  // clip to the region (one display pixel wider); draw one more pixel around it
      const c = [Math.floor(region[0]) - 1, Math.floor(region[1]) - 1, Math.ceil(region[2]) + 1, Math.ceil(region[3]) + 1];
      const sx = Math.floor(view.ox + c[1] * view.scale), sy = Math.floor(view.oy + c[0] * view.scale);
      const ex = Math.ceil(view.ox + c[3] * view.scale), ey = Math.ceil(view.oy + c[2] * view.scale);
      ctx.beginPath(); ctx.rect(sx, sy, ex - sx, ey - sy); ctx.clip();
      ctx.fillStyle = "#111"; ctx.fillRect(sx, sy, ex - sx, ey - sy);
      [y0, x0, y1, x1] = [Math.max(0, c[0] - 1), Math.max(0, c[1] - 1), Math.min(shape[0], c[2] + 1), Math.min(shape[1], c[3] + 1)];
      if (y1 <= y0 || x1 <= x0) { ctx.restore(); return; }
    } else {
      ctx.fillStyle = "#111"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    }
    if (!grey) { ctx.restore(); return; }
    ctx.setTransform(view.scale, 0, 0, view.scale, view.ox, view.oy);
    ctx.imageSmoothingEnabled = view.scale < 1;
    const w = x1 - x0, h = y1 - y0;
    ctx.drawImage(layers.image, x0, y0, w, h, x0, y0, w, h);
    ctx.globalAlpha = model.get("opacity");
    ctx.drawImage(layers.objects, x0, y0, w, h, x0, y0, w, h);
    ctx.drawImage(layers.preview, x0, y0, w, h, x0, y0, w, h);
    ctx.globalAlpha = 1;
    const r = 4 / view.scale;
    ctx.lineWidth = 2 / view.scale;
    for (const m of marks) {
      ctx.strokeStyle = ctx.fillStyle = m.positive ? "#2ecc40" : "#ff4136";
      if (m.kind === "click") {
        const [y, x] = m.points[0];
        ctx.beginPath(); ctx.arc(x + 0.5 / 1, y + 0.5 / 1, r, 0, 2 * Math.PI); ctx.fill();
      } else if (m.kind === "box") {
        ctx.strokeStyle = "#39cccc";
        const [[y0, x0], [y1, x1]] = m.points; ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      } else {
        ctx.beginPath();
        m.points.forEach(([y, x], i) => (i ? ctx.lineTo(x + 0.5, y + 0.5) : ctx.moveTo(x + 0.5, y + 0.5)));
        ctx.stroke();
      }
    }
    if (drag && drag.mode === "box" && drag.moved) {
      ctx.strokeStyle = "#39cccc";
      ctx.strokeRect(drag.x0, drag.y0, drag.x - drag.x0, drag.y - drag.y0);
    }
    if (drag && drag.mode === "scribble") {
      ctx.strokeStyle = drag.positive ? "#2ecc40" : "#ff4136";
      ctx.beginPath(); drag.points.forEach(([y, x], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y))); ctx.stroke();
    }
    ctx.restore();
  }

  // The display box around the marks that differ between ``a`` and ``b`` (null: none differ).
  function marksChanged(a, b) {
    const keysA = new Set(a.map((m) => JSON.stringify(m))), keysB = new Set(b.map((m) => JSON.stringify(m)));
    const changed = [...a.filter((m) => !keysB.has(JSON.stringify(m))), ...b.filter((m) => !keysA.has(JSON.stringify(m)))];
    if (!changed.length) return null;
    const pad = 8 / view.scale + 1;
    const ys = changed.flatMap((m) => m.points.map((p) => p[0])), xs = changed.flatMap((m) => m.points.map((p) => p[1]));
    return [Math.min(...ys) - pad, Math.min(...xs) - pad, Math.max(...ys) + pad, Math.max(...xs) + pad];
  }
  function union(a, b) {
    if (!a) return b;
    if (!b) return a;
    return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
  }

  // -- messages from the kernel --------------------------------------------------------------
  async function onImage(msg, buffers) {
    const bitmap = await decode(buffers[0], msg.format);
    const newShape = msg.shape;
    const resized = newShape[0] !== shape[0] || newShape[1] !== shape[1];
    shape = newShape;
    for (const c of Object.values(layers)) {  // a new plane: the overlays that follow fill the layers again
      if (c.width !== shape[1] || c.height !== shape[0]) { c.width = shape[1]; c.height = shape[0]; }
      else c.getContext("2d").clearRect(0, 0, c.width, c.height);
    }
    const tmp = document.createElement("canvas"); tmp.width = shape[1]; tmp.height = shape[0];
    const tctx = tmp.getContext("2d"); tctx.drawImage(bitmap, 0, 0);
    const rgba = tctx.getImageData(0, 0, shape[1], shape[0]).data;
    grey = new Uint8ClampedArray(shape[0] * shape[1]);
    for (let i = 0, j = 0; i < grey.length; i++, j += 4) grey[i] = rgba[j];
    applyContrast();
    if (resized || !view.fitted) fit();
    draw();
    if (stats.imageShownMs === null) {
      stats.imageShownMs = Date.now() - model.get("opened_at");
      root.dataset.imageShownMs = String(stats.imageShownMs);
    }
    root.dataset.imageKey = JSON.stringify(msg.key);
  }

  async function onOverlay(msg, buffers) {
    const layer = layers[msg.layer];
    if (msg.box && buffers.length) {
      const bitmap = await decode(buffers[0]);
      const [y0, x0, y1, x1] = msg.box;
      const c = layer.getContext("2d");
      c.clearRect(x0, y0, x1 - x0, y1 - y0);
      c.drawImage(bitmap, x0, y0);
    }
    let region = msg.box && buffers.length ? msg.box : null;
    if (msg.prompts) { region = union(region, marksChanged(marks, msg.prompts)); marks = msg.prompts; }
    if (region) draw(region);
    stats.overlays += 1;
    root.dataset.overlays = String(stats.overlays);
    if (msg.reply_to !== undefined && pending.has(msg.reply_to)) {
      const ms = performance.now() - pending.get(msg.reply_to);
      pending.delete(msg.reply_to);
      if (!msg.failed) { stats.latencies.push(ms); latencyText = `click→overlay ${ms.toFixed(0)} ms · `; showStatus(); }
    }
  }

  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "pong") { lastPong = performance.now(); connection.textContent = ""; root.dataset.connected = "true"; return; }
    queue = queue.then(() => (msg.type === "image" ? onImage(msg, buffers) : onOverlay(msg, buffers)))
                 .catch((err) => { messageLine.textContent = `display error: ${err}`; messageLine.classList.add("oaims-error"); });
  });

  // -- state from the kernel -----------------------------------------------------------------
  let latencyText = "";
  function showStatus() { statusLine.textContent = latencyText + model.get("status"); }
  function showMessage() {
    messageLine.textContent = model.get("message");
    messageLine.classList.toggle("oaims-error", model.get("error"));
  }
  function showPolarity() {
    const p = model.get("positive");
    polarity.textContent = p ? `+ positive [${keys.toggle}]` : `− negative [${keys.toggle}]`;
    polarity.classList.toggle("oaims-negative", !p);
  }
  function showClasses() {
    classSelect.replaceChildren(...model.get("classes").map((n) => { const o = document.createElement("option"); o.value = o.textContent = n; return o; }));
    classSelect.value = model.get("class_name");
  }
  function showBusy() {
    const busy = model.get("busy");
    const [done, total] = model.get("progress");
    busyLabel.textContent = busy ? `${busy}${total ? ` ${done}/${total}` : ""}` : "";
    progress.style.visibility = busy ? "visible" : "hidden";
    if (total) { progress.max = total; progress.value = done; } else { progress.removeAttribute("value"); }
    cancel.disabled = !busy;
    root.dataset.busy = busy;
  }
  function showKey() {
    const key = model.get("key");
    sliders.forEach(([slider, value, n], i) => { slider.value = key[i]; value.textContent = `${key[i]}/${n - 1}`; });
  }
  for (const [name, fn] of [["status", showStatus], ["message", showMessage], ["error", showMessage], ["positive", showPolarity],
                            ["classes", showClasses], ["class_name", showClasses], ["busy", showBusy], ["progress", showBusy],
                            ["key", showKey]]) {
    model.on(`change:${name}`, fn);
  }
  model.on("change:opacity", () => { opacity.value = model.get("opacity"); draw(); });
  model.on("change:contrast", () => { contrastInputs.forEach((inp, i) => { inp.value = model.get("contrast")[i]; }); applyContrast(); draw(); });
  showStatus(); showMessage(); showPolarity(); showClasses(); showBusy(); showKey();

  // -- the mouse -----------------------------------------------------------------------------
  function toImage(e) {
    const rect = canvas.getBoundingClientRect();
    const sx = (e.clientX - rect.left) * canvas.width / rect.width, sy = (e.clientY - rect.top) * canvas.height / rect.height;
    return [(sy - view.oy) / view.scale, (sx - view.ox) / view.scale, sx, sy];
  }
  function sendPrompt(content) {
    const id = nextId++;
    pending.set(id, performance.now());
    model.send({ ...content, id });
  }
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());
  canvas.addEventListener("pointerdown", (e) => {
    root.focus({ preventScroll: true });
    const [y, x, sx, sy] = toImage(e);
    canvas.setPointerCapture(e.pointerId);
    if (e.button === 1 || space) drag = { mode: "pan", sx, sy, ox: view.ox, oy: view.oy };
    else if (e.shiftKey) drag = { mode: "scribble", points: [[y, x]], positive: e.button === 0 && model.get("positive") };
    else drag = { mode: "box", x0: x, y0: y, x, y, sx, sy, moved: false, button: e.button };
    e.preventDefault();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const [y, x, sx, sy] = toImage(e);
    if (drag.mode === "pan") { view.ox = drag.ox + sx - drag.sx; view.oy = drag.oy + sy - drag.sy; }
    else if (drag.mode === "scribble") drag.points.push([y, x]);
    else { drag.x = x; drag.y = y; drag.moved = drag.moved || Math.hypot(sx - drag.sx, sy - drag.sy) > DRAG_PX; }
    draw();
  });
  canvas.addEventListener("pointerup", (e) => {
    if (!drag) return;
    const d = drag; drag = null;
    if (d.mode === "scribble" && d.points.length > 1) sendPrompt({ type: "scribble", points: d.points, positive: d.positive });
    else if (d.mode === "box" && d.moved && d.button === 0) sendPrompt({ type: "box", y0: d.y0, x0: d.x0, y1: d.y, x1: d.x });
    else if (d.mode === "box" && !d.moved) sendPrompt({ type: "click", y: d.y0, x: d.x0, positive: d.button === 0 && model.get("positive") });
    draw();
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [, , sx, sy] = toImage(e);
    const k = Math.exp(-e.deltaY * 0.0015);
    view.ox = sx - (sx - view.ox) * k; view.oy = sy - (sy - view.oy) * k; view.scale *= k;
    draw();
  }, { passive: false });

  // -- keys ----------------------------------------------------------------------------------
  const bindings = Object.entries(keys).map(([name, spec]) => [name, keyName(spec)]);
  root.addEventListener("keydown", (e) => {
    if (e.target === classInput) return;
    if (e.key === " ") { space = true; e.preventDefault(); e.stopPropagation(); return; }
    const hit = bindings.find(([, k]) => k.key === e.key.toLowerCase() && k.shift === e.shiftKey);
    if (!hit || e.ctrlKey || e.metaKey || e.altKey) return;
    e.preventDefault(); e.stopPropagation();
    if (hit[0] === "toggle") { model.set("positive", !model.get("positive")); model.save_changes(); }
    else act(hit[0]);
  });
  root.addEventListener("keyup", (e) => { if (e.key === " ") space = false; });

  // -- the connection ------------------------------------------------------------------------
  const timer = setInterval(() => {
    model.send({ type: "ping", t: Date.now() });
    const quiet = performance.now() - lastPong;
    if (quiet > DEAD_MS) {
      connection.textContent = `disconnected: the kernel has not answered for ${(quiet / 1000).toFixed(0)} s ` +
        "(restarted, stopped or busy with a long cell); run the cell again to go on annotating";
      root.dataset.connected = "false";
    }
  }, PING_MS);
  model.send({ type: "ready" });
  model.send({ type: "ping", t: Date.now() });
  return () => clearInterval(timer);
}

export default { render };
