// Health: disk use, how many days of footage the disk keeps at the
// current bitrate, and each camera's state.
import { api, el, $, toast, when, bytes, bitrate } from "/ui/assets/api.js";

const days = (d) => (d === null || d === undefined ? "–" : d + " days");

async function load() {
  let storage = null, cameras = [], health = null;
  try { storage = await api("GET", "/api/storage"); } catch (e) { toast("Storage: " + e.message, true); }
  try { cameras = await api("GET", "/api/cameras"); } catch (e) { toast("Cameras: " + e.message, true); }
  try { health = await (await fetch("/healthz")).json(); } catch { health = null; }
  if (storage) {
    const s = storage.storage;
    const used = s.disk_total_bytes ? s.disk_total_bytes - (s.disk_free_bytes || 0) : null;
    const meter = s.disk_total_bytes
      ? el("meter", { min: 0, max: s.disk_total_bytes, value: used, "aria-label": "Disk used" })
      : null;
    $("disk").replaceChildren(
      el("p", { class: "big", id: "forecast" }, s.disk_forecast_days !== null
        ? "Footage kept: about " + s.disk_forecast_days + " days at the current bitrate"
        : "Footage kept: no forecast yet (no recent footage to measure the bitrate)"),
      meter,
      el("dl", { class: "facts-list" },
        el("dt", {}, "Footage stored"), el("dd", {}, bytes(s.used_bytes)),
        el("dt", {}, "Disk free"), el("dd", {}, bytes(s.disk_free_bytes) + " of " + bytes(s.disk_total_bytes)),
        el("dt", {}, "Kept free"), el("dd", {}, bytes(s.min_free_bytes)),
        el("dt", {}, "Oldest footage"), el("dd", {}, when(s.oldest)),
        el("dt", {}, "Data folder"), el("dd", {}, el("code", {}, s.data_dir))));
  }
  const forecast = new Map((storage ? storage.cameras : []).map((c) => [c.name, c]));
  $("camera-health").tBodies[0].replaceChildren(...cameras.map((c) => {
    const f = forecast.get(c.name) || {};
    return el("tr", {},
      el("th", { scope: "row" }, el("a", { href: "/cameras/" + encodeURIComponent(c.name) }, c.name)),
      el("td", {}, el("span", { class: "badge " + (c.up ? "ok" : "bad") }, c.up ? "recording" : c.status)),
      el("td", {}, c.fps ? c.fps.toFixed(1) : "–"),
      el("td", {}, bitrate(c.bitrate_bps)),
      el("td", {}, bytes(f.stored_bytes)),
      el("td", {}, when(f.oldest)),
      el("td", {}, days(f.forecast_days) + (f.forecast_limit ? " (" + f.forecast_limit.replace("_", " ") + ")" : "")),
      el("td", {}, c.last_error || "–"));
  }));
  if (health) {
    $("daemon").replaceChildren(el("dl", { class: "facts-list" },
      el("dt", {}, "Store"), el("dd", {}, health.store_ok ? "writing" : "FAILING"),
      el("dt", {}, "Recording"), el("dd", {}, health.ingest_ok ? "footage arriving" : "STALLED"),
      el("dt", {}, "Cameras up"), el("dd", {}, health.cameras_up + " of " + health.cameras_total),
      el("dt", {}, "Metrics"), el("dd", {}, el("a", { href: "/metrics" }, "/metrics"))));
  }
}

load();
setInterval(load, 15000);
