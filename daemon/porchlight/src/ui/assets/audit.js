// Audit log: the entries with filters (paged, newest last as the log
// keeps them) and the result of `porchlight audit verify`.
import { api, el, $, toast, when, rfc3339 } from "/ui/assets/api.js";

let nextAfter = null;

function who(identity) {
  if (!identity) return "–";
  if (typeof identity === "string") return identity;
  return identity.agency || identity.user || identity.kind || JSON.stringify(identity);
}

function row(e) {
  const details = e.details ? JSON.stringify(e.details) : "";
  const outcome = e.outcome && (e.outcome.result || e.outcome.code || (typeof e.outcome === "string" ? e.outcome : ""));
  return el("tr", {},
    el("td", {}, String(e.seq)),
    el("td", {}, when(e.time)),
    el("td", {}, e.event + (outcome && outcome !== "ok" ? " (" + outcome + ")" : ""), e.bytes_served ? el("span", { class: "muted" }, " · " + e.bytes_served + " bytes served") : null),
    el("td", {}, who(e.identity), el("span", { class: "muted" }, " via " + e.component)),
    el("td", {}, (e.object && e.object.camera) || "–"),
    el("td", { class: "details" }, (e.object && e.object.request_id ? e.object.request_id + " " : "") + (details.length > 240 ? details.slice(0, 240) + "…" : details)));
}

function query(after) {
  const params = new URLSearchParams({ limit: "100" });
  for (const id of ["since", "until"]) {
    if ($(id).value) params.set(id, rfc3339(new Date($(id).value)));
  }
  for (const id of ["camera", "request"]) {
    if ($(id).value.trim()) params.set(id, $(id).value.trim());
  }
  if (after !== null) params.set("after", String(after));
  return "/api/audit?" + params;
}

async function load(append) {
  try {
    const page = await api("GET", query(append ? nextAfter : null));
    const rows = page.entries.map(row);
    if (append) $("entries").tBodies[0].append(...rows);
    else $("entries").tBodies[0].replaceChildren(...rows);
    nextAfter = page.next_after;
    $("more").hidden = nextAfter === null;
    $("audit-empty").hidden = $("entries").tBodies[0].rows.length > 0;
  } catch (e) {
    toast("Audit log: " + e.message, true);
  }
}

async function verify() {
  $("verify").textContent = "Checking the chain…";
  $("verify").className = "";
  try {
    const r = await api("GET", "/api/audit/verify");
    const range = r.first_seq !== null ? "entries " + r.first_seq + "–" + r.head_seq : "no entries";
    $("verify").className = r.intact ? "ok-text" : "error-text";
    $("verify").replaceChildren(
      r.intact ? "Audit log intact: " + r.entries + " entries (" + range + ")." : "Audit log DAMAGED: " + r.problems.length + " problem(s) in " + r.entries + " entries (" + range + ").",
      ...r.problems.map((p) => el("span", { class: "problem" }, p)),
      ...r.alerts.map((seq) => el("span", { class: "problem" }, "Entry " + seq + " records tampering found earlier.")));
  } catch (e) {
    $("verify").className = "error-text";
    $("verify").textContent = "Could not verify: " + e.message;
  }
}

// Links from the requests page: /audit?request=req_…
const initial = new URLSearchParams(location.search);
if (initial.get("request")) $("request").value = initial.get("request");
if (initial.get("camera")) $("camera").value = initial.get("camera");

$("filters").addEventListener("submit", (e) => { e.preventDefault(); load(false); });
$("filters").addEventListener("reset", () => setTimeout(() => load(false), 0));
$("more").addEventListener("click", () => load(true));
$("reverify").addEventListener("click", verify);
load(false);
verify();
