// Walks the owner web UI in headless Chromium, the way an owner would, and
// reports what each page showed. The Rust test (tests/web_ui.rs) sets the
// stage (daemon, camera, relay request, MQTT broker) and checks the effects.
//   node web_ui.mjs BASE_URL OUT_DIR CAMERA REQUEST_ID
// OUT_DIR gets one PNG per page and the downloaded clip and evidence.
// Prints one JSON line with what each step saw.
// With PORCHLIGHT_USER and PORCHLIGHT_PASSWORD set, it logs in first
// (accounts mode); without, it expects open local mode's banner.
import { chromium } from "playwright-core";
import { join } from "node:path";

const [base, out, camera, requestId] = process.argv.slice(2);
if (!base || !out || !camera || !requestId) {
  console.error("usage: node web_ui.mjs BASE_URL OUT_DIR CAMERA REQUEST_ID");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});
const result = { consoleErrors: [], failedResponses: [] };
const shot = (page, name) => page.screenshot({ path: join(out, name + ".png"), fullPage: true });

async function logIn(page) {
  const user = process.env.PORCHLIGHT_USER;
  if (user) {
    // Without a session, pages send the browser to the login page.
    await page.goto(base + "/");
    await page.waitForURL(/\/login\?next=/);
    await page.goto(base + "/login?next=/");
    await page.getByLabel(/user/i).fill(user);
    await page.getByLabel(/password/i).fill(process.env.PORCHLIGHT_PASSWORD || "");
    await page.getByRole("button", { name: /log in|sign in/i }).click();
    await page.waitForURL(base + "/");
    result.login = "accounts";
  } else {
    await page.goto(base + "/");
    await page.locator("#banner").waitFor({ state: "visible", timeout: 10000 });
    result.login = "open";
    result.banner = await page.locator("#banner").textContent();
  }
}

async function cameras(page) {
  await page.goto(base + "/");
  const tile = page.locator("article.tile", { hasText: camera });
  await tile.waitFor({ timeout: 15000 });
  const video = tile.locator("video");
  const times = [];
  for (let i = 0; i < 10; i++) {
    await page.waitForTimeout(500);
    times.push(await video.evaluate((v) => v.currentTime));
  }
  result.cameras = {
    currentTimes: times,
    badge: await tile.locator(".badge").textContent(),
    facts: await tile.locator(".facts").textContent(),
    framesShown: await page.evaluate((c) => window.players[c].framesShown, camera),
    discovery: await page.locator("#disc-status").textContent(),
  };
  await shot(page, "cameras");
}

async function timeline(page) {
  await page.goto(base + "/cameras/" + encodeURIComponent(camera));
  await page.locator("#coverage-summary").filter({ hasText: /footage/ }).waitFor({ timeout: 15000 });
  await page.getByRole("button", { name: "Fit footage" }).click();
  // Drag across the middle of the footage with the mouse.
  const box = await page.locator("#bar").boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.move(box.x + box.width * 0.3, y);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, y, { steps: 5 });
  await page.mouse.move(box.x + box.width * 0.7, y, { steps: 5 });
  await page.mouse.up();
  await page.locator("#download-clip[aria-disabled=false]").waitFor({ timeout: 5000 });
  const t = { start: await page.inputValue("#start"), end: await page.inputValue("#end"), length: await page.locator("#range-length").textContent() };
  const [clip] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /Download clip/ }).click()]);
  await clip.saveAs(join(out, "clip.mp4"));
  t.clipName = clip.suggestedFilename();
  await page.fill("#case", "owner-test-1");
  const [evidence] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: /evidence package/ }).click()]);
  await evidence.saveAs(join(out, "evidence.zip"));
  t.evidenceName = evidence.suggestedFilename();
  await page.getByRole("button", { name: "Play selection" }).click();
  await page.waitForTimeout(2500);
  t.playerTime = await page.locator("#player").evaluate((v) => v.currentTime);
  t.summary = await page.locator("#coverage-summary").textContent();
  result.timeline = t;
  await shot(page, "timeline");
}

async function sharing(page) {
  await page.goto(base + "/sharing");
  const select = page.getByLabel("Sharing level of " + camera);
  await select.waitFor({ timeout: 10000 });
  const before = await select.inputValue();
  await select.selectOption("emergency_auto");
  await page.locator("#toast").filter({ hasText: "now shared: emergency_auto" }).waitFor({ timeout: 10000 });
  result.sharing = { before, after: await select.inputValue(), relay: await page.locator("#relay").textContent() };
  await shot(page, "sharing");
}

async function requests(page) {
  await page.goto(base + "/requests");
  const card = page.locator(`article.request[data-id="${requestId}"]`);
  await card.waitFor({ timeout: 10000 });
  const details = await card.locator("dl").textContent();
  await shot(page, "requests-pending");
  await card.getByRole("button", { name: "Approve all as asked" }).click();
  await card.waitFor({ state: "detached", timeout: 10000 });
  const row = page.locator("#history tbody tr", { hasText: "approved" }).first();
  await row.waitFor({ timeout: 10000 });
  result.requests = { details, history: await row.textContent() };
  await shot(page, "requests");
}

async function audit(page) {
  await page.goto(base + "/audit");
  await page.locator("#verify.ok-text, #verify.error-text").waitFor({ timeout: 15000 });
  await page.locator("#entries tbody tr").first().waitFor({ timeout: 10000 });
  result.audit = {
    verify: await page.locator("#verify").textContent(),
    rows: await page.locator("#entries tbody tr").count(),
    events: await page.locator("#entries tbody tr td:nth-child(3)").allTextContents(),
  };
  // The filter narrows to one request's story.
  await page.fill("#request", requestId);
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForTimeout(800);
  result.audit.requestRows = await page.locator("#entries tbody tr").count();
  await shot(page, "audit");
}

async function health(page) {
  await page.goto(base + "/health");
  await page.locator("#forecast").waitFor({ timeout: 10000 });
  await page.locator("#camera-health tbody tr").first().waitFor({ timeout: 10000 });
  result.health = {
    forecast: await page.locator("#forecast").textContent(),
    camera: await page.locator("#camera-health tbody tr").first().textContent(),
  };
  await shot(page, "health");
}

/** Changes the API refuses from a page: not JSON, or from another origin. */
async function refusals(page) {
  await page.goto(base + "/sharing");
  result.refused = await page.evaluate(async () => {
    const plain = await fetch("/api/privacy", { method: "PUT", headers: { "Content-Type": "text/plain" }, body: '{"on":true}' });
    // The session cookie goes along, but a page that is not ours cannot
    // know the CSRF token: such a change is refused.
    const noCsrf = await fetch("/api/privacy", { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"on":true}' });
    return {
      notJson: plain.status, notJsonError: (await plain.json()).error,
      noCsrf: noCsrf.status, noCsrfError: (await noCsrf.json()).error,
    };
  });
  // A browser with no session gets nothing: the API says 401, pages go to
  // the login page.
  const stranger = await browser.newContext();
  const strangerPage = await stranger.newPage();
  const api = await strangerPage.request.get(base + "/api/settings");
  result.refused.noSessionApi = api.status();
  await strangerPage.goto(base + "/sharing");
  result.refused.noSessionPage = strangerPage.url();
  await stranger.close();
}

async function phone(browser) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await logIn(page);
  await page.goto(base + "/");
  await page.locator("article.tile").first().waitFor({ timeout: 15000 });
  await page.waitForTimeout(1500);
  await shot(page, "cameras-phone");
  await page.goto(base + "/requests");
  await page.waitForTimeout(800);
  await shot(page, "requests-phone");
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await context.close();
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  // Failed loads are listed with their URL below; everything else is a page error.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) result.consoleErrors.push(m.text());
  });
  page.on("response", (r) => {
    if (r.status() >= 400) result.failedResponses.push(r.status() + " " + new URL(r.url()).pathname);
  });
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  const steps = { logIn, cameras, timeline, sharing, requests, audit, health, refusals };
  for (const [name, step] of Object.entries(steps)) {
    try {
      await step(page);
    } catch (e) {
      result.failed = name + ": " + e.message;
      await shot(page, "failed-" + name).catch(() => {});
      break;
    }
  }
  if (!result.failed) await phone(browser);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
