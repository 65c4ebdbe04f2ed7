// Police requests: the ones waiting for the owner (approve all, some
// cameras or a shorter window; deny with a reason) and the history.
import { api, bytes, el, $, toast, when, localInput, rfc3339 } from "/ui/assets/api.js";

function basis(legal) {
  if (!legal) return "–";
  return [legal.kind, legal.reference].filter(Boolean).join(": ");
}

function detail(label, value) {
  return [el("dt", {}, label), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value)];
}

/** Metres from the incident, as the owner reads them ("—" when unknown). */
function distance(m) {
  if (m === null || m === undefined) return "—";
  return m < 1000 ? m + " m" : (m / 1000).toFixed(2) + " km";
}

/** Outcomes still waiting for the owner (as `requests::outcome::is_awaiting`). */
const awaiting = (c) => c.outcome === "await_owner" || c.outcome === "show_to_owner_only";

function pendingCard(request) {
  const id = request.id;
  const waiting = request.cameras.filter(awaiting);
  const boxes = waiting.map((c) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: "camera", value: c.camera, checked: true }), " " + c.camera,
    el("span", { class: "distance", "data-camera": c.camera }, " · " + distance(c.distance_m) + " from the incident"),
    c.approvable_window ? el("span", { class: "muted" }, " (up to " + when(c.approvable_window.from) + " – " + when(c.approvable_window.to) + ")") : null));
  const from = el("input", { type: "datetime-local", step: 1, name: "from", value: localInput(new Date(request.window.from)) });
  const to = el("input", { type: "datetime-local", step: 1, name: "to", value: localInput(new Date(request.window.to)) });
  const reason = el("input", { type: "text", name: "reason", maxlength: 500, placeholder: "e.g. not related to my property" });
  const approve = el("button", { type: "button", class: "primary" }, "Approve selected");
  const approveAll = el("button", { type: "button" }, "Approve all as asked");
  const deny = el("button", { type: "button", class: "danger" }, "Deny");
  const card = el("article", { class: "panel request", "aria-labelledby": "h-" + id, "data-id": id },
    el("h3", { id: "h-" + id }, request.agency + " · case " + request.case_id),
    el("dl", { class: "facts-list" },
      detail("Incident", request.incident_type),
      detail("Legal basis", basis(request.legal_basis)),
      detail("Officer", request.officer && [request.officer.name, request.officer.badge && "badge " + request.officer.badge].filter(Boolean).join(", ")),
      detail("Window asked", when(request.window.from) + " – " + when(request.window.to)),
      detail("Area asked", request.radius_m ? "within " + distance(Math.round(request.radius_m)) + " of the incident" : null),
      detail("Reason", request.reason),
      detail("Received", when(request.received)),
      detail("Answer by", when(request.expires))),
    el("fieldset", {}, el("legend", {}, "Cameras to share"), boxes),
    el("fieldset", { class: "row wrap" }, el("legend", {}, "Window to share (trim if you like)"),
      el("label", {}, "From ", from), el("label", {}, "To ", to)),
    el("div", { class: "row wrap" }, approve, approveAll),
    el("div", { class: "row wrap" }, el("label", {}, "Reason for denying ", reason), deny));
  approveAll.addEventListener("click", () => answer(id, "approve", {}));
  approve.addEventListener("click", () => {
    const cameras = [...card.querySelectorAll("input[name=camera]:checked")].map((b) => b.value);
    if (!cameras.length) { toast("Choose at least one camera, or deny.", true); return; }
    const body = { cameras };
    const f = new Date(from.value), t = new Date(to.value);
    const asked = { from: Date.parse(request.window.from), to: Date.parse(request.window.to) };
    if (Math.abs(f - asked.from) >= 1000 || Math.abs(t - asked.to) >= 1000) {
      body.from = rfc3339(f);
      body.to = rfc3339(t);
    }
    answer(id, "approve", body);
  });
  deny.addEventListener("click", () => {
    if (!reason.value.trim()) { toast("Give a reason for denying.", true); reason.focus(); return; }
    answer(id, "deny", { reason: reason.value.trim() });
  });
  return card;
}

async function answer(id, action, body) {
  try {
    const request = await api("POST", "/api/requests/" + id + "/" + action, body);
    toast((action === "approve" ? "Approved" : "Denied") + " request " + id + " (" + request.state + ").");
    load();
  } catch (e) {
    toast("Could not " + action + ": " + e.message, true);
  }
}

const short = (hex, n = 16) => (hex ? hex.slice(0, n) + "…" : "–");

function span(w) {
  return w ? when(w.from) + " – " + when(w.to) : null;
}

/** Clock time of an RFC 3339 instant, as the owner reads it ("14:02"). */
function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** Why a live view stopped (`live::EndReason` codes, or "left"). */
function endedBy(reason) {
  const known = {
    expired: "expired",
    ended_by_owner: "ended by owner",
    relay_left: "ended: you left the relay program",
    privacy_mode: "ended by privacy mode",
    live_not_shared: "ended: camera no longer shared live",
    not_available: "ended: outside the camera's schedule",
    left: "the agency stopped watching",
  };
  return known[reason] || "ended (" + String(reason).replace(/_/g, " ") + ")";
}

/** "Live: porch, 3 minutes, 14:02–14:05, ended by owner". */
function liveText(v) {
  const minutes = v.minutes + (v.minutes === 1 ? " minute" : " minutes");
  const until = v.ended ? clock(v.ended) : "now";
  const how = v.ended ? endedBy(v.end_reason) : "still watching";
  return "Live: " + v.camera + ", " + minutes + ", " + clock(v.started) + "–" + until + ", " + how +
    " (" + v.agency + ", certificate ";
}

/** One camera of a finished request: outcome, window, package, downloads, live views. */
function cameraHistory(r, c) {
  const delivery = (r.deliveries || []).find((d) => d.camera === c.camera);
  const downloads = (r.downloads || []).filter((d) => d.camera === c.camera);
  const lives = (r.live_views || []).filter((v) => v.camera === c.camera);
  const head = [c.camera + ": " + c.outcome.replace(/_/g, " ")];
  if (c.window) head.push(span(c.window));
  if (c.refusal) head.push("policy: " + c.refusal.replace(/_/g, " "));
  if (c.distance_m !== null && c.distance_m !== undefined) head.push(distance(c.distance_m) + " from the incident");
  const items = [];
  if (delivery) {
    items.push(el("li", { class: "delivery" }, "Package " + bytes(delivery.bytes) + " (" + delivery.bytes + " bytes), SHA-256 ",
      el("span", { class: "hash", title: delivery.sha256 }, short(delivery.sha256)), ", built " + when(delivery.built),
      delivery.removed ? el("span", { class: "removed" }, ", removed " + when(delivery.removed)) : null));
  }
  for (const d of downloads) {
    const what = d.status === 206 ? "range " + (d.range || "") : "whole package";
    const done = d.finished === null ? "still sending" : d.complete ? "complete" : "cut short";
    items.push(el("li", { class: "download" }, "Downloaded " + when(d.started) + " by " + d.agency + " (certificate ",
      el("span", { class: "hash", title: d.cert_fingerprint }, short(d.cert_fingerprint, 12)),
      "): " + what + ", " + bytes(d.bytes_sent) + " of " + bytes(d.bytes_planned) + " (" + d.bytes_sent + " bytes), " + done));
  }
  for (const v of lives) {
    items.push(el("li", { class: "live-view" }, liveText(v),
      el("span", { class: "hash", title: v.cert_fingerprint }, short(v.cert_fingerprint, 12)), ")"));
  }
  if (!items.length && (c.outcome === "approved" || c.outcome === "serve")) items.push(el("li", { class: "muted" }, "Not downloaded yet"));
  return el("div", { class: "camera-history", "data-camera": c.camera }, head.join(" · "), items.length ? el("ul", {}, items) : null);
}

function historyRow(r) {
  return el("tr", { "data-id": r.id },
    el("td", {}, when(r.received)),
    el("td", {}, r.agency),
    el("td", {}, r.case_id),
    el("td", { class: "state" }, r.state.replace(/_/g, " ") + (r.denial_reason ? " — " + r.denial_reason : "")),
    el("td", {}, r.cameras.map((c) => cameraHistory(r, c))),
    el("td", {}, el("a", { href: "/audit?request=" + encodeURIComponent(r.id) }, "audit log")));
}

async function load() {
  try {
    const all = await api("GET", "/api/requests");
    const pending = all.filter((r) => r.cameras.some(awaiting) && r.state !== "expired");
    $("pending-empty").hidden = pending.length > 0;
    $("pending").replaceChildren(...pending.map(pendingCard));
    $("history").tBodies[0].replaceChildren(...all.filter((r) => !pending.includes(r)).map(historyRow));
  } catch (e) {
    toast("Requests: " + e.message, true);
  }
}

load();
setInterval(() => { if (!document.querySelector(".request :focus")) load(); }, 15000);
