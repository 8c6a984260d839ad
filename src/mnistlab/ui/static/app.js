// mnistlab ui: sortable and filterable tables, curves (uPlot), live polling, the drawing canvas.
"use strict";

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
const FIRST_PICKED = 10; // runs shown on a study's chart before the user picks
const PREDICT_EVERY_MS = 250; // while drawing, at most one prediction per this interval
const EPOCH_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]; // whole epochs on the x axis
const POLL_MS = Number(document.body.dataset.pollMs || 2000);

// --- tables ---

function sortValue(cell) {
  const raw = cell.dataset.sort ?? cell.textContent;
  const number = Number(raw);
  return raw !== "" && raw !== "None" && Number.isFinite(number) ? number : raw.toLowerCase();
}

function compareValues(a, b) {
  const an = typeof a === "number", bn = typeof b === "number";
  if (an && bn) return a - b;
  if (an !== bn) return an ? -1 : 1; // numbers before text (None, blanks)
  return a < b ? -1 : a > b ? 1 : 0;
}

function makeSortable(table) {
  table.querySelectorAll("th[data-col]").forEach((th) => {
    th.addEventListener("click", () => {
      const col = Number(th.dataset.col);
      const descending = th.classList.contains("asc");
      table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
      th.classList.add(descending ? "desc" : "asc");
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      rows.sort((r1, r2) => {
        const order = compareValues(sortValue(r1.cells[col]), sortValue(r2.cells[col]));
        return descending ? -order : order;
      });
      rows.forEach((r) => body.appendChild(r));
    });
  });
}

function makeFilter(input) {
  const table = document.getElementById(input.dataset.table);
  input.addEventListener("input", () => {
    const wanted = input.value.toLowerCase();
    Array.from(table.tBodies[0].rows).forEach((row) => {
      row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted);
    });
  });
}

// --- curves ---

function meanStd(values) {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (present.length === 0) return [null, null];
  const mean = present.reduce((s, v) => s + v, 0) / present.length;
  const variance = present.length > 1
    ? present.reduce((s, v) => s + (v - mean) ** 2, 0) / (present.length - 1) : 0;
  return [mean, Math.sqrt(variance)];
}

class Curves {
  // A chart of one metric over epochs for a set of runs: {id, label, group, history}.
  constructor(section, chartId) {
    this.target = document.getElementById(chartId);
    const controls = document.getElementById(`${chartId}-controls`);
    this.metric = controls.querySelector(".metric");
    this.log = controls.querySelector(".log");
    this.bands = controls.querySelector(".bands");
    this.runs = [];
    this.picked = null; // null: every run
    this.signature = "";
    this.chart = null;
    [this.metric, this.log, this.bands].forEach((el) => el.addEventListener("change", () => this.draw(true)));
  }

  update(runs) {
    this.runs = runs;
    const metrics = new Set();
    runs.forEach((r) => Object.keys(r.history).forEach((k) => metrics.add(k)));
    const current = this.metric.value;
    const known = Array.from(this.metric.options).map((o) => o.value);
    const names = Array.from(metrics).sort();
    if (names.join() !== known.join()) {
      this.metric.replaceChildren(...names.map((m) => new Option(m, m)));
      const preferred = ["val_accuracy", "accuracy", "val_loss", "loss"].find((m) => metrics.has(m));
      this.metric.value = metrics.has(current) ? current : (preferred || names[0] || "");
    }
    this.draw(false);
  }

  shown() {
    return this.runs.filter((r) => this.picked === null || this.picked.has(r.id));
  }

  series() {
    const metric = this.metric.value;
    const runs = this.shown();
    const length = Math.max(0, ...runs.map((r) => (r.history[metric] || []).length));
    const x = Array.from({ length }, (_, i) => i + 1);
    const positive = (v) => (this.log.checked && !(v > 0) ? null : v ?? null);
    const columns = [x];
    const series = [{ label: "epoch" }];
    const bands = [];
    if (this.bands.checked) {
      const groups = new Map();
      runs.forEach((r) => groups.set(r.group, [...(groups.get(r.group) || []), r]));
      Array.from(groups.values()).forEach((members, i) => {
        const colour = PALETTE[i % PALETTE.length];
        const stats = x.map((_, e) => meanStd(members.map((r) => (r.history[metric] || [])[e])));
        const name = members[0].label.replace(/(^|, )seed \d+$/, "") || "default";
        columns.push(stats.map(([m]) => positive(m)));
        columns.push(stats.map(([m, s]) => (m === null ? null : positive(m + s))));
        columns.push(stats.map(([m, s]) => (m === null ? null : positive(m - s))));
        const at = series.length;
        series.push({ label: `${name} (n=${members.length})`, stroke: colour, width: 2 });
        series.push({ label: "+std", stroke: colour, width: 0, points: { show: false }, band: true });
        series.push({ label: "−std", stroke: colour, width: 0, points: { show: false }, band: true });
        bands.push({ series: [at + 1, at + 2], fill: `${colour}33` });
      });
    } else {
      runs.forEach((r, i) => {
        columns.push(x.map((_, e) => positive((r.history[metric] || [])[e])));
        series.push({ label: r.label || r.id.slice(0, 8), stroke: PALETTE[i % PALETTE.length], width: 2 });
      });
    }
    return { columns, series, bands };
  }

  draw(force) {
    const { columns, series, bands } = this.series();
    const signature = JSON.stringify([this.metric.value, this.log.checked, this.bands.checked,
      series.map((s) => s.label), columns]);
    if (!force && signature === this.signature) return;
    this.signature = signature;
    if (this.chart) this.chart.destroy();
    const width = Math.max(360, Math.min(900, this.target.clientWidth || 720));
    this.chart = new uPlot({
      width, height: 340, series, bands,
      scales: { x: { time: false }, y: this.log.checked ? { distr: 3 } : {} },
      axes: [{ label: "epoch", incrs: EPOCH_STEPS }, { label: this.metric.value }],
      legend: { live: true },
    }, columns, this.target);
    const rows = this.chart.root.querySelectorAll(".u-legend .u-series");
    series.forEach((s, i) => { if (s.band && rows[i]) rows[i].style.display = "none"; }); // the band's edges
    this.target.dataset.series = String(series.length - 1);
  }
}

function makePicker(fieldset, curves) {
  const boxes = new Map();
  fieldset.querySelector(".pick-all").addEventListener("click", () => setAll(true));
  fieldset.querySelector(".pick-none").addEventListener("click", () => setAll(false));
  const compare = fieldset.querySelector(".compare-picked");
  function remember() {
    curves.picked = new Set(Array.from(boxes).filter(([, b]) => b.checked).map(([id]) => id));
    const query = new URLSearchParams(Array.from(curves.picked).map((id) => ["run", id]));
    compare.href = `/compare?${query}`;
  }
  function picked() {
    remember();
    curves.draw(true);
  }
  function setAll(on) {
    boxes.forEach((b) => { b.checked = on; });
    picked();
  }
  return (runs) => {
    runs.forEach((r) => {
      if (boxes.has(r.id)) return;
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.value = r.id;
      box.className = "pick";
      box.checked = boxes.size < FIRST_PICKED;
      box.addEventListener("change", picked);
      label.append(box, ` ${r.label || r.id.slice(0, 8)} `);
      const status = document.createElement("small");
      status.className = `status-${r.status}`;
      label.append(status);
      fieldset.append(label);
      boxes.set(r.id, box);
    });
    runs.forEach((r) => {
      const status = boxes.get(r.id).parentElement.querySelector("small");
      status.textContent = r.status;
      status.className = `status-${r.status}`;
    });
    remember();
  };
}

function poll(url, onData, keepGoing) {
  const tick = async () => {
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) return;
      const data = await response.json();
      onData(data);
      if (keepGoing(data)) setTimeout(tick, POLL_MS);
    } catch (err) {
      setTimeout(tick, POLL_MS * 2); // the server may be restarting
    }
  };
  tick();
}

async function refreshTables() {
  // Finished runs change the tables: fetch this page again and swap them in.
  const response = await fetch(window.location.href, { cache: "no-store" });
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const tables = document.getElementById("study-tables");
  tables.replaceWith(fresh.getElementById("study-tables"));
  initTables(document.getElementById("study-tables"));
}

function studyPage(section) {
  const curves = new Curves(section, "study-chart");
  const pick = makePicker(document.getElementById("run-picker"), curves);
  let finished = null;
  poll(section.dataset.live, (data) => {
    const now = data.counts.done + data.counts.diverged + data.counts.failed + data.runs.length;
    if (finished !== null && now !== finished) refreshTables();
    finished = now;
    Object.entries(data.counts).forEach(([status, n]) => {
      const el = document.querySelector(`#live-counts [data-status="${status}"]`);
      if (el) el.textContent = n;
    });
    document.getElementById("live-epochs").textContent = data.epochs;
    pick(data.runs);
    curves.update(data.runs);
  }, () => true);
}

function runPage(section) {
  const curves = new Curves(section, "run-chart");
  const id = section.dataset.live.split("/").pop();
  curves.update([{ id, label: "this run", group: id, history: JSON.parse(section.dataset.history) }]);
  if (section.dataset.poll !== "yes") return;
  poll(section.dataset.live, (data) => {
    curves.update([{ id, label: "this run", group: id, history: data.history }]);
    document.getElementById("run-status").textContent = data.status;
  }, (data) => ["pending", "running"].includes(data.status));
}

function comparePage(section) {
  const curves = new Curves(section, "compare-chart");
  const histories = JSON.parse(section.dataset.histories);
  curves.update(Object.entries(histories).map(([id, history]) => ({ id, label: id.slice(0, 10), group: id, history })));
}

// --- drawing ---

function drawPage(canvas) {
  const ctx = canvas.getContext("2d");
  const model = document.getElementById("model");
  let drawing = false, inked = false, last = 0, pending = null;
  function clear() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    inked = false;
    document.getElementById("digit").textContent = "–";
    document.getElementById("probs").replaceChildren();
  }
  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
  }
  async function predict() {
    if (!inked) return; // nothing to classify yet
    last = Date.now();
    const response = await fetch("/api/predict", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: model.value, image: canvas.toDataURL("image/png") }),
    });
    const data = await response.json();
    document.getElementById("draw-error").textContent = response.ok ? "" : data.error;
    if (response.ok) show(data);
  }
  function show(data) {
    document.getElementById("digit").textContent = data.digit;
    const bars = data.probabilities.map((p, digit) => {
      const row = document.createElement("div");
      row.className = digit === data.digit ? "bar best" : "bar";
      const name = document.createElement("span");
      name.textContent = digit;
      const bar = document.createElement("div");
      bar.style.width = `${Math.round(p * 240)}px`;
      const value = document.createElement("small");
      value.textContent = `${(100 * p).toFixed(1)} %`;
      row.append(name, bar, value);
      return row;
    });
    document.getElementById("probs").replaceChildren(...bars);
    const seen = document.getElementById("seen").getContext("2d");
    const image = seen.createImageData(28, 28);
    data.image.flat().forEach((v, i) => { image.data.set([v, v, v, 255], 4 * i); });
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    small.getContext("2d").putImageData(image, 0, 0);
    seen.imageSmoothingEnabled = false;
    seen.drawImage(small, 0, 0, 112, 112);
  }
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    canvas.setPointerCapture(event.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    ctx.lineWidth = 18;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.strokeStyle = "#000";
    ctx.lineTo(...at(event));
    ctx.stroke();
    inked = true;
    if (Date.now() - last > PREDICT_EVERY_MS) predict();
  });
  canvas.addEventListener("pointerup", () => {
    drawing = false;
    clearTimeout(pending);
    pending = setTimeout(predict, 0);
  });
  document.getElementById("clear").addEventListener("click", clear);
  model.addEventListener("change", predict);
  clear();
}

function initTables(root) {
  root.querySelectorAll("table.sortable").forEach(makeSortable);
  root.querySelectorAll("input.filter").forEach(makeFilter);
}

document.addEventListener("DOMContentLoaded", () => {
  initTables(document);
  const study = document.getElementById("study-curves");
  if (study) studyPage(study);
  const run = document.getElementById("run-curves");
  if (run) runPage(run);
  const compare = document.getElementById("compare-curves");
  if (compare) comparePage(compare);
  const canvas = document.getElementById("canvas");
  if (canvas) drawPage(canvas);
});
