// Cameras page: a live tile per camera (status, fps, bitrate, errors) and
// ONVIF devices found on the network, with a form to add each.
import { api, el, $, toast, bitrate } from "/ui/assets/api.js";
import { playLive } from "/ui/assets/live-player.js";

const tiles = new Map();
window.players = {};

function tile(camera) {
  const name = camera.name;
  const status = el("p", { class: "tile-status", "aria-live": "polite" });
  const video = el("video", { muted: true, autoplay: true, playsinline: true, "aria-label": "Live video of " + name });
  video.muted = true;
  const snapshot = el("img", { hidden: true, alt: "" });
  const facts = el("p", { class: "facts" });
  const error = el("p", { class: "error-text", hidden: true });
  const node = el("article", { class: "tile", "aria-labelledby": "cam-" + name },
    el("div", { class: "tile-head" },
      el("h2", { id: "cam-" + name }, name),
      el("span", { class: "badge" })),
    el("div", { class: "media" }, video, snapshot),
    status, facts, error,
    el("p", { class: "row" }, el("a", { class: "button", href: "/cameras/" + encodeURIComponent(name) }, "Timeline")));
  window.players[name] = playLive(video, name, { snapshot, // The stream's size and codec are in the facts line already; the
    // status line is for what goes wrong (ended, H.265 fallback).
    onStatus: (t) => { status.textContent = /^\d+×\d+ /.test(t) ? "" : t; } });
  return { node, facts, error, badge: node.querySelector(".badge") };
}

function update(camera) {
  let t = tiles.get(camera.name);
  if (!t) {
    t = tile(camera);
    tiles.set(camera.name, t);
    $("grid").append(t.node);
  }
  t.badge.textContent = camera.up ? "recording" : (camera.enabled ? camera.status : "disabled");
  t.badge.className = "badge " + (camera.up ? "ok" : "bad");
  t.facts.textContent = [camera.resolution, camera.codec, camera.fps ? camera.fps.toFixed(1) + " fps" : null, bitrate(camera.bitrate_bps)]
    .filter(Boolean).join(" · ");
  t.error.hidden = !camera.last_error;
  t.error.textContent = camera.last_error ? "Last error: " + camera.last_error : "";
}

async function refreshCameras() {
  try {
    const cameras = await api("GET", "/api/cameras");
    $("cameras-empty").hidden = cameras.length > 0;
    cameras.forEach(update);
  } catch (e) {
    toast("Cameras: " + e.message, true);
  }
}

function addForm(device) {
  const id = (device.endpoint || "").replace(/[^a-z0-9]/gi, "").slice(-12);
  const field = (label, name, attrs = {}) => el("label", {}, label + " ", el("input", { name, id: name + "-" + id, ...attrs }));
  const form = el("form", { class: "row wrap add-form", "aria-label": "Add " + (device.model || device.name || device.endpoint) },
    field("Name", "name", { required: true, placeholder: "porch", maxlength: 64 }),
    field("Username", "username", { autocomplete: "off" }),
    field("Password", "password", { type: "password", autocomplete: "new-password" }),
    field("Main stream profile", "main_profile", { placeholder: "first profile" }),
    field("Sub stream profile", "sub_profile", { placeholder: "none" }),
    el("button", { type: "submit" }, "Add camera"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const body = { name: data.name };
    for (const k of ["username", "password", "main_profile", "sub_profile"]) if (data[k]) body[k] = data[k];
    try {
      await api("POST", "/api/discovery/" + encodeURIComponent(device.endpoint) + "/add", body);
      toast("Added " + body.name + "; the daemon restarts its cameras and starts recording it.");
      setTimeout(refreshDiscovery, 2000);
    } catch (e) {
      toast("Could not add: " + e.message, true);
    }
  });
  return form;
}

async function refreshDiscovery() {
  try {
    const view = await api("GET", "/api/discovery");
    const pending = view.devices.filter((d) => d.state === "pending");
    $("disc-status").textContent = !view.enabled
      ? "Discovery is off (enable [discovery] in the config)."
      : pending.length ? pending.length + " device(s) not added yet." : "No new devices found.";
    const list = $("discoveries");
    list.replaceChildren(...pending.map((d) => el("li", { class: "panel" },
      el("p", {}, el("strong", {}, [d.manufacturer, d.model].filter(Boolean).join(" ") || d.name || d.hardware || "ONVIF device"),
        " ", el("span", { class: "muted" }, (d.xaddrs && d.xaddrs[0]) || d.endpoint)),
      addForm(d))));
  } catch (e) {
    $("disc-status").textContent = "Discovery: " + e.message;
  }
}

refreshCameras();
refreshDiscovery();
setInterval(refreshCameras, 5000);
