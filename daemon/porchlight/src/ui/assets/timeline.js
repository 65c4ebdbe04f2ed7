// Timeline: one camera's day with footage and gaps. Drag on the bar (or
// type start/end) to select a range, then download a clip or an evidence
// package; click the bar to play from there.
import { api, apiBlob, apiUpload, bytes, el, $, toast, localInput, rfc3339 } from "/ui/assets/api.js";

const camera = $("timeline").dataset.camera;
const base = "/api/cameras/" + encodeURIComponent(camera);
const MINUTE = 60_000, HOUR = 60 * MINUTE, DAY = 24 * HOUR;
const bar = $("bar");
const player = $("player");

const state = {
  dayStart: null, // ms, local midnight
  view: null, // {from, to} ms
  spans: [], // [{from, to}] ms
  selection: null, // {from, to} ms
  playFrom: null, // ms at the clip's time 0
};
window.timeline = state;

function startOfDay(date) {
  const d = new Date(date);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function dayInput(ms) {
  return localInput(new Date(ms)).slice(0, 10);
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return (h ? h + " h " : "") + (h || m ? m + " min " : "") + sec + " s";
}

const pct = (t) => ((t - state.view.from) / (state.view.to - state.view.from)) * 100;

function timeAt(clientX) {
  const rect = bar.getBoundingClientRect();
  const f = Math.min(1, Math.max(0, (clientX - rect.left) / rect.width));
  return state.view.from + f * (state.view.to - state.view.from);
}

function place(node, from, to) {
  const left = Math.max(0, pct(from)), right = Math.min(100, pct(to));
  node.hidden = right <= 0 || left >= 100;
  node.style.left = left + "%";
  node.style.width = Math.max(right - left, 0.3) + "%";
}

function drawBar() {
  $("spans").replaceChildren(...state.spans.map((s) => {
    const node = el("div", { class: "span", title: new Date(s.from).toLocaleTimeString() + " – " + new Date(s.to).toLocaleTimeString() });
    place(node, s.from, s.to);
    return node;
  }));
  if (state.selection) place($("selection"), state.selection.from, state.selection.to);
  const ticks = [];
  const span = state.view.to - state.view.from;
  for (let i = 0; i <= 4; i++) {
    const t = new Date(state.view.from + (span * i) / 4);
    const label = span > 2 * HOUR ? t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : t.toLocaleTimeString();
    ticks.push(el("span", {}, label));
  }
  $("ticks").replaceChildren(...ticks);
  $("zoom-label").textContent = "Showing " + duration(span);
}

function selectionChanged(fromInputs = false) {
  const s = state.selection;
  const ready = s && s.to > s.from;
  for (const id of ["download-clip", "download-evidence"]) {
    $(id).setAttribute("aria-disabled", ready ? "false" : "true");
  }
  $("play-selection").disabled = !ready;
  if (!ready) {
    $("selection").hidden = true;
    $("range-length").textContent = "Select a range: drag on the bar or type start and end.";
    return;
  }
  if (!fromInputs) {
    $("start").value = localInput(new Date(s.from));
    $("end").value = localInput(new Date(s.to));
  }
  const from = rfc3339(new Date(s.from)), to = rfc3339(new Date(s.to));
  const range = "from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to);
  const stamp = from.replace(/[:]/g, "");
  $("download-clip").href = base + "/clip.mp4?" + range;
  $("download-clip").download = camera + "-" + stamp + ".mp4";
  const caseId = $("case").value.trim();
  $("download-evidence").href = base + "/evidence?" + range + (caseId ? "&case=" + encodeURIComponent(caseId) : "");
  $("download-evidence").download = camera + "-" + stamp + "-evidence.tar";
  $("range-length").textContent = "Selected " + duration(s.to - s.from);
  drawBar();
}

async function loadDay() {
  const from = rfc3339(new Date(state.dayStart)), to = rfc3339(new Date(state.dayStart + DAY));
  try {
    const coverage = await api("GET", base + "/recordings?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to));
    state.spans = coverage.spans.map((s) => ({ from: Date.parse(s.from), to: Date.parse(s.to) }));
    const total = state.spans.reduce((n, s) => n + (s.to - s.from), 0);
    $("coverage-summary").textContent = state.spans.length
      ? duration(total) + " of footage in " + state.spans.length + " piece(s), " + coverage.gaps.length + " gap(s) without footage."
      : "No footage on this day.";
  } catch (e) {
    state.spans = [];
    $("coverage-summary").textContent = "Could not read footage: " + e.message;
  }
  drawBar();
}

function setDay(ms) {
  state.dayStart = startOfDay(ms);
  state.view = { from: state.dayStart, to: state.dayStart + DAY };
  $("day").value = dayInput(state.dayStart);
  loadDay();
}

function zoom(factor) {
  const centre = state.selection ? (state.selection.from + state.selection.to) / 2 : (state.view.from + state.view.to) / 2;
  const span = Math.min(DAY, Math.max(MINUTE, (state.view.to - state.view.from) * factor));
  let from = Math.max(state.dayStart, centre - span / 2);
  from = Math.min(from, state.dayStart + DAY - span);
  state.view = { from, to: from + span };
  drawBar();
}

function fit() {
  if (!state.spans.length) return;
  const from = state.spans[0].from, to = state.spans[state.spans.length - 1].to;
  const pad = Math.max((to - from) * 0.05, 2000);
  state.view = { from: Math.max(state.dayStart, from - pad), to: Math.min(state.dayStart + DAY, to + pad) };
  drawBar();
}

/** Plays [from, to) as a clip from the daemon (the same MP4 a download gets). */
function play(from, to) {
  state.playFrom = from;
  const range = "from=" + encodeURIComponent(rfc3339(new Date(from))) + "&to=" + encodeURIComponent(rfc3339(new Date(to)));
  player.src = base + "/clip.mp4?" + range + "&audio=false";
  player.play().catch(() => {});
  $("play-status").textContent = "Playing from " + new Date(from).toLocaleTimeString();
}

/** A click at `t`: play up to a minute from there (or from the next footage). */
function playAt(t) {
  const span = state.spans.find((s) => s.to > t);
  if (!span) { toast("No footage after that point.", true); return; }
  const from = Math.max(t, span.from);
  play(from, Math.min(span.to, from + MINUTE));
}

// Dragging selects; a click without movement plays.
let drag = null;
bar.addEventListener("pointerdown", (event) => {
  if (event.button !== 0) return;
  bar.setPointerCapture(event.pointerId);
  drag = { x: event.clientX, t: timeAt(event.clientX), moved: false };
});
bar.addEventListener("pointermove", (event) => {
  if (!drag) return;
  if (Math.abs(event.clientX - drag.x) > 4) drag.moved = true;
  if (!drag.moved) return;
  const t = timeAt(event.clientX);
  state.selection = { from: Math.round(Math.min(drag.t, t) / 1000) * 1000, to: Math.round(Math.max(drag.t, t) / 1000) * 1000 };
  selectionChanged();
});
bar.addEventListener("pointerup", (event) => {
  if (!drag) return;
  const wasDrag = drag.moved;
  drag = null;
  if (!wasDrag) playAt(timeAt(event.clientX));
});
bar.addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    if (state.selection) play(state.selection.from, state.selection.to);
    else if (state.spans.length) playAt(state.spans[0].from);
  }
});

player.addEventListener("timeupdate", () => {
  if (state.playFrom === null) return;
  const t = state.playFrom + player.currentTime * 1000;
  const head = $("playhead");
  head.hidden = t < state.view.from || t > state.view.to;
  head.style.left = pct(t) + "%";
});
player.addEventListener("error", () => {
  $("play-status").textContent = "Could not play that range (no footage there, or longer than the longest clip allowed).";
});

for (const id of ["start", "end"]) {
  $(id).addEventListener("change", () => {
    const from = new Date($("start").value).getTime(), to = new Date($("end").value).getTime();
    if (isNaN(from) || isNaN(to) || to <= from) {
      $("range-length").textContent = "End must be after start.";
      return;
    }
    state.selection = { from, to };
    selectionChanged(true);
  });
}
$("case").addEventListener("input", () => selectionChanged(true));
for (const id of ["download-clip", "download-evidence"]) {
  $(id).addEventListener("click", (event) => {
    if ($(id).getAttribute("aria-disabled") === "true") {
      event.preventDefault();
      toast("Select a range first.", true);
    }
  });
}

/** Shows what the daemon's verifier said about a package. */
function showVerify(name, result) {
  const box = $("verify-status");
  box.hidden = false;
  box.classList.toggle("ok", result.ok);
  box.classList.toggle("bad", !result.ok);
  if (result.ok) {
    const device = (result.signed_by || "").slice(0, 16) + "…" + (result.this_device ? " (this box)" : " (another device)");
    const clock = result.clock_offset_us === null || result.clock_offset_us === undefined ? "" :
      "; clock offset " + (result.clock_offset_us / 1000).toFixed(1) + " ms" + (result.clock_synchronized ? "" : ", not NTP-synchronised");
    box.textContent = "Verified " + name + ": signature by device " + device + ", " + result.files_matched + " of " +
      result.files_listed + " files match; " + bytes(result.bytes) + clock + ".";
  } else {
    box.textContent = "NOT verified " + name + ": " + (result.failed.join("; ") || "no checks could run");
  }
}

async function verify(name, blob) {
  $("verify-status").hidden = false;
  $("verify-status").classList.remove("ok", "bad");
  $("verify-status").textContent = "Verifying " + name + "…";
  try {
    showVerify(name, await apiUpload("/api/evidence/verify", blob, "application/x-tar"));
  } catch (e) {
    $("verify-status").classList.add("bad");
    $("verify-status").textContent = "Could not verify " + name + ": " + e.message;
  }
}

// The evidence package is fetched here (not by a plain link) so the same
// bytes that are saved are checked by the daemon's verifier.
$("download-evidence").addEventListener("click", async (event) => {
  event.preventDefault();
  const link = $("download-evidence");
  if (link.getAttribute("aria-disabled") === "true") return;
  const name = link.download;
  $("verify-status").hidden = false;
  $("verify-status").classList.remove("ok", "bad");
  $("verify-status").textContent = "Making the evidence package…";
  let blob;
  try {
    blob = await apiBlob(link.href);
  } catch (e) {
    $("verify-status").classList.add("bad");
    $("verify-status").textContent = "Could not download the evidence package: " + e.message;
    return;
  }
  const url = URL.createObjectURL(blob);
  const save = el("a", { href: url, download: name, hidden: true });
  document.body.append(save);
  save.click();
  save.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  await verify(name, blob);
});
$("verify-file").addEventListener("change", () => {
  const file = $("verify-file").files[0];
  if (file) verify(file.name, file);
});
$("play-selection").addEventListener("click", () => state.selection && play(state.selection.from, state.selection.to));
$("day").addEventListener("change", () => { if ($("day").value) setDay(new Date($("day").value + "T00:00:00").getTime()); });
$("prev-day").addEventListener("click", () => setDay(state.dayStart - DAY / 2));
$("next-day").addEventListener("click", () => setDay(state.dayStart + DAY + DAY / 2));
$("zoom-in").addEventListener("click", () => zoom(1 / 4));
$("zoom-out").addEventListener("click", () => zoom(4));
$("zoom-fit").addEventListener("click", fit);
$("day-form").addEventListener("submit", (e) => e.preventDefault());
$("range").addEventListener("submit", (e) => e.preventDefault());

setDay(Date.now());
selectionChanged();
