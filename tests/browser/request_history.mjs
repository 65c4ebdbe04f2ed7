// The owner's requests page and the timeline's verify status, in headless
// Chromium, in three phases the Rust test (tests/request_history.rs) runs
// between its own steps (the relay downloading, a package tampered with):
//   node request_history.mjs BASE OUT answer APPROVE_ID DENY_ID
//     reads each camera's distance on the pending card, approves the porch
//     only, denies the other request with a reason
//   node request_history.mjs BASE OUT history APPROVE_ID DENY_ID
//     reads the history rows (package, downloads, denial reason)
//   node request_history.mjs BASE OUT timeline CAMERA TAMPERED_FILE
//     downloads an evidence package and reads its verify status, then
//     verifies TAMPERED_FILE through the page's file input
// Logs in with PORCHLIGHT_USER / PORCHLIGHT_PASSWORD. Screenshots go to OUT
// (request-history-*.png). Prints one JSON line with what was seen.
import { chromium } from "playwright-core";
import { join } from "node:path";

const [base, out, phase, a, b] = process.argv.slice(2);
if (!base || !out || !phase || !a || !b) {
  console.error("usage: node request_history.mjs BASE OUT answer|history|timeline ARG ARG");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const result = { phase, consoleErrors: [], failedResponses: [] };
const shot = (page, name) => page.screenshot({ path: join(out, "request-history-" + name + ".png"), fullPage: true });

async function logIn(page) {
  await page.goto(base + "/login?next=/requests");
  await page.getByLabel(/user/i).fill(process.env.PORCHLIGHT_USER || "");
  await page.getByLabel(/password/i).fill(process.env.PORCHLIGHT_PASSWORD || "");
  await page.getByRole("button", { name: /log in|sign in/i }).click();
  await page.waitForURL(base + "/requests");
}

async function answer(page, approveId, denyId) {
  await page.goto(base + "/requests");
  const card = page.locator(`article.request[data-id="${approveId}"]`);
  await card.waitFor({ timeout: 10000 });
  const distances = {};
  for (const span of await card.locator(".distance").all()) {
    distances[await span.getAttribute("data-camera")] = (await span.textContent()).trim();
  }
  result.distances = distances;
  result.details = await card.locator("dl").textContent();
  await shot(page, "pending");
  // Share the porch only: the driveway is left out (and so denied).
  await card.getByRole("checkbox", { name: /driveway/ }).uncheck();
  await card.getByRole("button", { name: "Approve selected" }).click();
  await card.waitFor({ state: "detached", timeout: 10000 });
  const other = page.locator(`article.request[data-id="${denyId}"]`);
  await other.getByLabel(/Reason for denying/).fill("Not our street; this camera faces the back yard.");
  await other.getByRole("button", { name: "Deny" }).click();
  await other.waitFor({ state: "detached", timeout: 10000 });
  result.answered = true;
}

async function history(page, approvedId, deniedId) {
  await page.goto(base + "/requests");
  const row = page.locator(`#history tr[data-id="${approvedId}"]`);
  await row.locator(".download").first().waitFor({ timeout: 10000 });
  const porch = row.locator('.camera-history[data-camera="porch"]');
  result.approved = {
    state: await row.locator(".state").textContent(),
    porch: await porch.textContent(),
    delivery: await porch.locator(".delivery").textContent(),
    downloads: await porch.locator(".download").allTextContents(),
    driveway: await row.locator('.camera-history[data-camera="driveway"]').textContent(),
  };
  const denied = page.locator(`#history tr[data-id="${deniedId}"]`);
  result.denied = { state: await denied.locator(".state").textContent(), text: await denied.textContent() };
  await shot(page, "requests");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  await logIn(small);
  await small.locator(`#history tr[data-id="${approvedId}"] .download`).first().waitFor({ timeout: 10000 });
  await shot(small, "requests-phone");
  result.phoneOverflow = await small.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await phone.close();
}

async function timeline(page, camera, tampered) {
  await page.goto(base + "/cameras/" + encodeURIComponent(camera));
  await page.locator("#coverage-summary").filter({ hasText: /footage/ }).waitFor({ timeout: 15000 });
  await page.getByRole("button", { name: "Fit footage" }).click();
  const box = await page.locator("#bar").boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 8 });
  await page.mouse.up();
  await page.locator("#download-evidence[aria-disabled=false]").waitFor({ timeout: 5000 });
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: /evidence package/ }).click(),
  ]);
  await download.saveAs(join(out, "request-history-evidence.tar"));
  const status = page.locator("#verify-status.ok, #verify-status.bad");
  await status.waitFor({ timeout: 30000 });
  result.downloaded = { name: download.suggestedFilename(), status: await status.textContent(), ok: await status.evaluate((n) => n.classList.contains("ok")) };
  await shot(page, "timeline-verified");
  await page.setInputFiles("#verify-file", tampered);
  const bad = page.locator("#verify-status.bad");
  await bad.waitFor({ timeout: 30000 });
  result.tampered = await bad.textContent();
  await shot(page, "timeline-tampered");
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) result.consoleErrors.push(m.text());
  });
  page.on("response", (r) => {
    if (r.status() >= 400) result.failedResponses.push(r.status() + " " + new URL(r.url()).pathname);
  });
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  try {
    await logIn(page);
    if (phase === "answer") await answer(page, a, b);
    else if (phase === "history") await history(page, a, b);
    else if (phase === "timeline") await timeline(page, a, b);
    else throw new Error("unknown phase " + phase);
  } catch (e) {
    result.failed = phase + ": " + e.message;
    await shot(page, "failed-" + phase).catch(() => {});
  }
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
