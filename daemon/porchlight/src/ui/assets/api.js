// The one way pages talk to the owner API, plus small DOM helpers.
// Fetches /api/session once; sends X-CSRF-Token when there is one; on 401
// goes to the login page and comes back here afterwards.
"use strict";

let sessionPromise = null;

/** The session (`{user, mode, csrf_token}`); open mode when the daemon has no accounts. */
export function session() {
  if (!sessionPromise) {
    sessionPromise = fetch("/api/session", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : { user: null, mode: "open", csrf_token: null }))
      .catch(() => ({ user: null, mode: "open", csrf_token: null }));
  }
  return sessionPromise;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function toLogin() {
  location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
}

/** Calls the API; resolves to the JSON body, rejects with ApiError naming the problem. */
export async function api(method, path, body) {
  const s = await session();
  const headers = { Accept: "application/json" };
  const changes = method !== "GET" && method !== "HEAD";
  if (changes) headers["Content-Type"] = "application/json";
  if (s.csrf_token) headers["X-CSRF-Token"] = s.csrf_token;
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: changes ? JSON.stringify(body === undefined ? {} : body) : undefined,
  });
  return answer(response);
}

/** A response's JSON body, or an ApiError naming the problem (401: to the login page). */
async function answer(response) {
  if (response.status === 401) {
    toLogin();
    throw new ApiError(401, "please log in");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    throw new ApiError(response.status, (data && data.error) || text || response.statusText);
  }
  return data;
}

/** Sends a file (Blob) as the body of a POST; resolves to the JSON answer, like api(). */
export async function apiUpload(path, blob, contentType = "application/octet-stream") {
  const s = await session();
  const headers = { Accept: "application/json", "Content-Type": contentType };
  if (s.csrf_token) headers["X-CSRF-Token"] = s.csrf_token;
  const response = await fetch(path, { method: "POST", headers, credentials: "same-origin", body: blob });
  return answer(response);
}

/** GETs a file as a Blob; rejects with ApiError naming the problem. */
export async function apiBlob(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) await answer(response);
  return response.blob();
}

/** Builds an element: el("td", {class: "x"}, "text", child...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export const $ = (id) => document.getElementById(id);

let toastTimer = null;
/** A short message in the polite live region. */
export function toast(message, isError = false) {
  const box = $("toast");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.classList.add("shown");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("shown"), isError ? 8000 : 4000);
}

export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

export function bitrate(bps) {
  if (!bps) return "–";
  return bps >= 1e6 ? (bps / 1e6).toFixed(2) + " Mbit/s" : Math.round(bps / 1e3) + " kbit/s";
}

/** An RFC 3339 time as local text. */
export function when(text) {
  if (!text) return "–";
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

/** `datetime-local` value (local time) for a Date, to the second. */
export function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** RFC 3339 UTC (no milliseconds) from a Date. */
export function rfc3339(date) {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

// Every page: the open-mode banner and who is logged in.
session().then((s) => {
  if (s.mode === "open") $("banner").hidden = false;
  if (s.user) $("who").textContent = "Signed in as " + s.user;
});
