// Police sharing: the privacy switch, each camera's sharing level and
// recording switch, its schedule, outside-schedule level, longest clip and
// audio, the limits for every request, and where this box stands with the
// relay.
import { api, el, $, toast, when } from "/ui/assets/api.js";

const LEVELS = ["off", "registered", "on_request", "emergency_auto", "emergency_live"];

function render(settings) {
  $("privacy").checked = settings.privacy;
  $("levels").tBodies[0].replaceChildren(...settings.cameras.map((c) => {
    const select = el("select", { id: "sharing-" + c.camera, "aria-label": "Sharing level of " + c.camera },
      LEVELS.map((l) => el("option", { value: l, selected: l === c.sharing }, l)));
    select.addEventListener("change", async () => {
      try {
        render(await api("PUT", "/api/cameras/" + encodeURIComponent(c.camera) + "/sharing", { level: select.value }));
        toast(c.camera + " is now shared: " + select.value);
        renderSettings(await api("GET", "/api/sharing"));
      } catch (e) {
        toast("Could not change sharing: " + e.message, true);
        load();
      }
    });
    const recording = el("input", { type: "checkbox", id: "recording-" + c.camera, checked: c.recording });
    recording.addEventListener("change", async () => {
      try {
        render(await api("PUT", "/api/cameras/" + encodeURIComponent(c.camera) + "/recording", { on: recording.checked }));
        toast(c.camera + (recording.checked ? " records again" : " stopped recording"));
      } catch (e) {
        toast("Could not switch recording: " + e.message, true);
        load();
      }
    });
    return el("tr", {},
      el("th", { scope: "row" }, c.camera),
      el("td", {}, select),
      el("td", {}, el("label", {}, recording, " records")));
  }));
}

const DAYS = [["mon", "Mon"], ["tue", "Tue"], ["wed", "Wed"], ["thu", "Thu"], ["fri", "Fri"], ["sat", "Sat"], ["sun", "Sun"]];
let windowSeq = 0;

// One schedule window: day checkboxes, from and to (HH:MM), remove.
function windowRow(camera, list, w) {
  const n = ++windowSeq;
  const days = new Set(w.days && w.days.length ? w.days : DAYS.map((d) => d[0]));
  const row = el("fieldset", { class: "window" },
    el("legend", {}, "Window"),
    el("fieldset", { class: "days" }, el("legend", { class: "skip" }, "Days"),
      DAYS.map(([v, label]) => el("label", { class: "check" },
        el("input", { type: "checkbox", value: v, checked: days.has(v), "aria-label": label + " (" + camera + " window " + n + ")" }), label))),
    el("label", {}, "from", el("input", { class: "time from", value: w.from || "", placeholder: "22:00", inputmode: "numeric", autocomplete: "off", "aria-label": "From (" + camera + " window " + n + ")" })),
    el("label", {}, "to", el("input", { class: "time to", value: w.to || "", placeholder: "06:00", inputmode: "numeric", autocomplete: "off", "aria-label": "To (" + camera + " window " + n + ")" })));
  row.append(el("button", { type: "button", onclick: () => { row.remove(); showAlways(list); } }, "Remove window"));
  return row;
}

function showAlways(list) {
  list.querySelector(".always").hidden = list.querySelectorAll("fieldset.window").length > 0;
}

function readSchedule(list) {
  return [...list.querySelectorAll("fieldset.window")].map((row) => ({
    days: [...row.querySelectorAll(".days input:checked")].map((i) => i.value),
    from: row.querySelector("input.from").value.trim(),
    to: row.querySelector("input.to").value.trim(),
  }));
}

function sourceNote(sources) {
  const mine = Object.entries(sources).filter(([, s]) => s === "owner").map(([k]) => k.replaceAll("_", " "));
  return mine.length ? "Set by you: " + mine.join(", ") + ". The rest comes from the config file." : "All from the config file.";
}

// One camera's schedule, outside-schedule level, longest clip and audio.
function cameraForm(c, limits) {
  const id = (s) => s + "-" + c.camera;
  const list = el("div", { class: "windows", id: id("windows") },
    el("p", { class: "always muted" }, "Always: no schedule, the level applies at all times."));
  for (const w of c.schedule) list.append(windowRow(c.camera, list, w));
  showAlways(list);
  const outside = el("select", { id: id("outside") },
    LEVELS.map((l) => el("option", { value: l, selected: l === c.outside_schedule }, l)));
  const clip = el("input", { id: id("max-clip"), value: c.max_clip || "", placeholder: "none", autocomplete: "off", "aria-describedby": id("max-clip-hint") });
  const audio = el("input", { type: "checkbox", id: id("audio"), checked: c.audio_to_police, disabled: !c.audio_available, "aria-describedby": c.audio_available ? null : id("audio-why") });
  const error = el("p", { class: "error-text", id: id("error"), role: "alert" });
  const status = c.schedule.length
    ? (c.schedule_open ? "Schedule open now: shared as " : "Outside the schedule now: shared as ") + c.effective_level + "."
    : "Shared as " + c.level + " at all times.";
  const form = el("form", { class: "settings-form camera-settings", id: id("settings"), "aria-labelledby": id("settings-h"), novalidate: true },
    el("h3", { id: id("settings-h") }, c.camera),
    el("p", { class: "muted" }, status + " " + sourceNote(c.sources)),
    el("fieldset", {}, el("legend", {}, "Schedule of " + c.camera), list,
      el("button", { type: "button", onclick: () => { const row = windowRow(c.camera, list, {}); list.append(row); showAlways(list); row.querySelector("input.from").focus(); } }, "Add window")),
    el("div", { class: "fields" },
      el("label", { for: id("outside") }, "Outside-schedule level of " + c.camera, outside),
      el("label", { for: id("max-clip") }, "Longest clip of " + c.camera, clip),
      el("label", { class: "check" }, audio, "Send " + c.camera + "'s audio to police")),
    el("p", { class: "muted", id: id("max-clip-hint") }, "Such as 20m or 1h; empty: the limit for every request (" + limits.max_clip + ") applies."),
    c.audio_available ? null : el("p", { class: "muted", id: id("audio-why") }, "Audio can't be shared: this camera records none (audio = false in its config)."),
    error,
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Save " + c.camera)));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const change = {};
    const schedule = readSchedule(list);
    if (JSON.stringify(schedule) !== JSON.stringify(c.schedule)) change.schedule = schedule;
    if (outside.value !== c.outside_schedule) change.outside_schedule = outside.value;
    const clipText = clip.value.trim() || "none";
    if (clipText !== (c.max_clip || "none")) change.max_clip = clipText;
    if (c.audio_available && audio.checked !== c.audio_to_police) change.audio_to_police = audio.checked;
    try {
      renderSettings(await api("PUT", "/api/cameras/" + encodeURIComponent(c.camera) + "/sharing-settings", change));
      toast(c.camera + ": sharing settings saved");
    } catch (e) {
      error.textContent = "Not saved: " + e.message;
    }
  });
  return form;
}

function renderSettings(view) {
  $("timezone").textContent = view.timezone;
  $("camera-settings").replaceChildren(...view.cameras.map((c) => cameraForm(c, view.limits)));
  const l = view.limits;
  $("limit-max-clip").value = l.max_clip;
  $("limit-per-case").value = l.requests_per_case;
  $("limit-per-day").value = l.requests_per_agency_per_day;
  $("limit-max-window").value = l.max_window;
  $("limit-max-radius").value = l.max_radius_m;
  $("limit-per-case").max = view.ranges.requests_per_case[1];
  $("limit-per-day").max = view.ranges.requests_per_agency_per_day[1];
  $("limit-max-radius").max = view.ranges.max_radius_m[1];
  $("limit-max-clip-hint").textContent = "Durations such as 30m or 2h. Requests must ask for at least " + l.min_window + ". " + sourceNote(l.sources);
  current = view;
}

let current = null;

$("limits-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("limits-error").textContent = "";
  const l = current ? current.limits : {};
  const change = {};
  const text = (id) => $(id).value.trim();
  const number = (id) => Number($(id).value);
  if (text("limit-max-clip") !== l.max_clip) change.max_clip = text("limit-max-clip");
  if (number("limit-per-case") !== l.requests_per_case) change.requests_per_case = number("limit-per-case");
  if (number("limit-per-day") !== l.requests_per_agency_per_day) change.requests_per_agency_per_day = number("limit-per-day");
  if (text("limit-max-window") !== l.max_window) change.max_window = text("limit-max-window");
  if (number("limit-max-radius") !== l.max_radius_m) change.max_radius_m = number("limit-max-radius");
  try {
    renderSettings(await api("PUT", "/api/policy/limits", change));
    toast("Limits saved");
  } catch (e) {
    $("limits-error").textContent = "Not saved: " + e.message;
  }
});

async function load() {
  try {
    render(await api("GET", "/api/settings"));
  } catch (e) {
    toast("Settings: " + e.message, true);
  }
  try {
    renderSettings(await api("GET", "/api/sharing"));
  } catch (e) {
    toast("Sharing settings: " + e.message, true);
  }
  try {
    const relay = await api("GET", "/api/relay");
    const reg = relay.registration;
    $("relay").replaceChildren(el("dl", { class: "facts-list" },
      el("dt", {}, "State"), el("dd", {}, relay.state || "–"),
      el("dt", {}, "Relay listener"), el("dd", {}, relay.listener || "off"),
      el("dt", {}, "Agency CA pinned"), el("dd", {}, relay.agency_ca_pinned ? "yes" : "no"),
      el("dt", {}, "Registry"), el("dd", {}, relay.registry || "none"),
      el("dt", {}, "Registration"), el("dd", {}, reg ? reg.state + (reg.confirmed_at ? " (confirmed " + when(reg.confirmed_at) + ")" : "") : "not registered")));
    $("leave").hidden = (!relay.listener && !reg) || relay.state === "left" || relay.state === "not_enrolled";
    $("join-form").hidden = !(relay.state === "left" || relay.state === "not_enrolled");
    return relay;
  } catch (e) {
    $("relay").textContent = "Relay status: " + e.message;
  }
}

$("privacy").addEventListener("change", async () => {
  try {
    render(await api("PUT", "/api/privacy", { on: $("privacy").checked }));
    toast($("privacy").checked ? "Privacy on: nothing is shared." : "Privacy off: cameras are shared at their levels.");
  } catch (e) {
    toast("Could not switch privacy: " + e.message, true);
    load();
  }
});

$("leave").addEventListener("click", async () => {
  if (!confirm("Leave the relay program? The registry deletes this box and no agency can ask it for footage.")) return;
  try {
    const report = await api("POST", "/api/relay/leave", { wait_s: 30 });
    toast("Left the relay program (deletion " + report.deletion + ").");
    load();
  } catch (e) {
    toast("Could not leave: " + e.message, true);
  }
});

// Joining (again): paste or pick the CA, check its fingerprint, confirm, join.
let checked = null;

function joinBody() {
  const registry = $("join-registry").value.trim();
  return { agency_ca_pem: $("join-agency").value, registry_ca_pem: registry || undefined };
}

function uncheck() {
  checked = null;
  $("join-preview").replaceChildren();
  $("join-confirm").checked = false;
  $("join-confirm").disabled = true;
  $("join-submit").disabled = true;
}

for (const [input, area] of [["join-agency-file", "join-agency"], ["join-registry-file", "join-registry"]]) {
  $(input).addEventListener("change", async () => {
    const file = $(input).files[0];
    if (file) { $(area).value = await file.text(); uncheck(); }
  });
}
$("join-agency").addEventListener("input", uncheck);
$("join-registry").addEventListener("input", uncheck);

function describe(title, cas) {
  return cas.map((c) => el("dl", { class: "facts-list" },
    el("dt", {}, title), el("dd", {}, c.subject),
    el("dt", {}, "Valid"), el("dd", {}, when(c.not_before) + " – " + when(c.not_after)),
    el("dt", {}, "SHA-256 fingerprint"), el("dd", { class: "fingerprint" }, c.sha256)));
}

$("join-check").addEventListener("click", async () => {
  uncheck();
  $("join-error").textContent = "";
  try {
    const preview = await api("POST", "/api/relay/join/preview", joinBody());
    checked = preview.agency_cas[0].sha256;
    $("join-preview").replaceChildren(...describe("Agency CA", preview.agency_cas),
      ...describe("Registry CA", preview.registry_cas));
    $("join-confirm").disabled = false;
    $("join-confirm").focus();
  } catch (e) {
    $("join-error").textContent = "Not a usable certificate: " + e.message;
  }
});
$("join-confirm").addEventListener("change", () => {
  $("join-submit").disabled = !(checked && $("join-confirm").checked);
});

/** After the join: waits for the restarted daemon, then shows its status. */
async function waitForRestart() {
  $("join-wait").textContent = "Joined. Porchlight is restarting to start the relay…";
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    let response;
    try {
      response = await fetch("/api/relay", { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch {
      continue; // down while it restarts
    }
    if (response.status === 401) {
      // The session ended meanwhile (expired, password changed): log in again.
      location.href = "/login?next=" + encodeURIComponent("/sharing");
      return;
    }
    if (!response.ok) continue;
    const relay = await response.json();
    if (relay.state !== "left" && relay.state !== "not_enrolled") {
      $("join-wait").textContent = "";
      await load();
      toast("Porchlight is back: relay " + relay.state + ".");
      $("relay").focus();
      return;
    }
  }
  $("join-wait").textContent = "Porchlight has not come back yet; reload this page in a moment.";
}

$("join-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!checked || !$("join-confirm").checked) return;
  $("join-error").textContent = "";
  $("join-submit").disabled = true;
  try {
    await api("POST", "/api/relay/join", { ...joinBody(), confirm_fingerprint: checked });
    await waitForRestart();
  } catch (e) {
    $("join-error").textContent = "Could not join: " + e.message;
    $("join-submit").disabled = false;
  }
});

load();
