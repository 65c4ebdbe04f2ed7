// Police sharing: the privacy switch, each camera's sharing level and
// recording switch, and where this box stands with the relay.
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

async function load() {
  try {
    render(await api("GET", "/api/settings"));
  } catch (e) {
    toast("Settings: " + e.message, true);
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
    $("leave").hidden = !relay.listener && !reg;
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

load();
