// Police requests: the ones waiting for the owner (approve all, some
// cameras or a shorter window; deny with a reason) and the history.
import { api, el, $, toast, when, localInput, rfc3339 } from "/ui/assets/api.js";

function basis(legal) {
  if (!legal) return "–";
  return [legal.kind, legal.reference].filter(Boolean).join(": ");
}

function detail(label, value) {
  return [el("dt", {}, label), el("dd", {}, value === null || value === undefined || value === "" ? "–" : value)];
}

/** Outcomes still waiting for the owner (as `requests::outcome::is_awaiting`). */
const awaiting = (c) => c.outcome === "await_owner" || c.outcome === "show_to_owner_only";

function pendingCard(request) {
  const id = request.id;
  const waiting = request.cameras.filter(awaiting);
  const boxes = waiting.map((c) => el("label", { class: "check" },
    el("input", { type: "checkbox", name: "camera", value: c.camera, checked: true }), " " + c.camera,
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

function historyRow(r) {
  const cameras = r.cameras.map((c) => c.camera + ": " + c.outcome.replace(/_/g, " ")).join(", ");
  return el("tr", {},
    el("td", {}, when(r.received)),
    el("td", {}, r.agency),
    el("td", {}, r.case_id),
    el("td", {}, r.state + (r.denial_reason ? " — " + r.denial_reason : "")),
    el("td", {}, cameras),
    el("td", {}, el("a", { href: "/audit?request=" + encodeURIComponent(r.id) }, "deliveries & downloads")));
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
