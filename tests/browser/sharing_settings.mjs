// The owner edits a camera's sharing settings and the request limits on
// the sharing page, in headless Chromium, logged in (accounts mode).
// The Rust test (tests/sharing_settings.rs) sets the stage and checks the
// effects (API, MQTT, audit log, relay gate).
//   node sharing_settings.mjs BASE_URL OUT_DIR CAMERA SKIP_DAY
// SKIP_DAY (mon..sun) is today: the schedule set here covers every other
// day, so "now" is outside it. Needs PORCHLIGHT_USER and PORCHLIGHT_PASSWORD.
// Prints one JSON line with what each step saw; OUT_DIR gets screenshots.
import { chromium } from "playwright-core";
import { join } from "node:path";

const [base, out, camera, skipDay] = process.argv.slice(2);
if (!base || !out || !camera || !skipDay) {
  console.error("usage: node sharing_settings.mjs BASE_URL OUT_DIR CAMERA SKIP_DAY");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const result = { consoleErrors: [] };
const shot = (page, name) => page.screenshot({ path: join(out, name + ".png"), fullPage: true });

async function logIn(page) {
  await page.goto(base + "/sharing");
  await page.waitForURL(/\/login\?next=/);
  await page.getByLabel(/user/i).fill(process.env.PORCHLIGHT_USER || "");
  await page.getByLabel(/password/i).fill(process.env.PORCHLIGHT_PASSWORD || "");
  await page.getByRole("button", { name: /log in|sign in/i }).click();
  await page.waitForURL(base + "/sharing");
}

async function editCamera(page) {
  const form = page.locator("#settings-" + camera);
  await form.waitFor({ timeout: 10000 });
  result.before = {
    always: await form.locator(".always").isVisible(),
    status: await form.locator("p.muted").first().textContent(),
  };
  // A bad time first: the API's answer is shown next to the form.
  await form.getByRole("button", { name: "Add window" }).click();
  const row = form.locator("fieldset.window").last();
  await row.locator("input.from").fill("00:00");
  await row.locator("input.to").fill("25:00");
  await form.getByRole("button", { name: "Save " + camera }).click();
  await page.locator("#error-" + camera).filter({ hasText: "Not saved" }).waitFor({ timeout: 10000 });
  result.shownError = await page.locator("#error-" + camera).textContent();
  // Every day but today, all day; outside it "on_request"; 20-minute clips; no audio.
  await row.locator("input.to").fill("24:00");
  await row.locator(`.days input[value="${skipDay}"]`).uncheck();
  await page.getByLabel("Outside-schedule level of " + camera).selectOption("on_request");
  await page.getByLabel("Longest clip of " + camera).fill("20m");
  await page.getByLabel("Send " + camera + "'s audio to police").uncheck();
  // Saved with the keyboard, as a form.
  await page.getByLabel("Longest clip of " + camera).press("Enter");
  await page.locator("#toast").filter({ hasText: camera + ": sharing settings saved" }).waitFor({ timeout: 10000 });
  const saved = page.locator("#settings-" + camera);
  await saved.locator("p.muted").first().filter({ hasText: "Outside the schedule now" }).waitFor({ timeout: 10000 });
  result.after = {
    status: await saved.locator("p.muted").first().textContent(),
    windows: await saved.locator("fieldset.window").count(),
    days: await saved.locator("fieldset.window .days input:checked").evaluateAll((inputs) => inputs.map((i) => i.value)),
    outside: await page.getByLabel("Outside-schedule level of " + camera).inputValue(),
    maxClip: await page.getByLabel("Longest clip of " + camera).inputValue(),
    audio: await page.getByLabel("Send " + camera + "'s audio to police").isChecked(),
    error: await page.locator("#error-" + camera).textContent(),
  };
}

async function otherCameras(page) {
  // Cameras without audio say why the box is off.
  result.noAudio = await page.locator("form.camera-settings").evaluateAll((forms) => forms
    .filter((f) => f.querySelector("input[type=checkbox][id^=audio-]")?.disabled)
    .map((f) => ({ camera: f.querySelector("h3").textContent, why: f.querySelector("[id^=audio-why-]")?.textContent })));
}

async function limits(page) {
  await page.getByLabel("Requests per agency per day").fill("0");
  await page.getByRole("button", { name: "Save limits" }).click();
  await page.locator("#limits-error").filter({ hasText: "Not saved" }).waitFor({ timeout: 10000 });
  result.limitsError = await page.locator("#limits-error").textContent();
  await page.getByLabel("Requests per agency per day").fill("1");
  await page.getByRole("button", { name: "Save limits" }).click();
  await page.locator("#toast").filter({ hasText: "Limits saved" }).waitFor({ timeout: 10000 });
  result.limits = {
    perDay: await page.getByLabel("Requests per agency per day").inputValue(),
    error: await page.locator("#limits-error").textContent(),
  };
  await shot(page, "sharing-settings");
}

async function phone() {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await logIn(page);
  await page.locator("#settings-" + camera).waitFor({ timeout: 10000 });
  await shot(page, "sharing-settings-phone");
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await context.close();
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) result.consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => result.consoleErrors.push(String(e)));
  const steps = { logIn, editCamera, otherCameras, limits };
  for (const [name, step] of Object.entries(steps)) {
    try {
      await step(page);
    } catch (e) {
      result.failed = name + ": " + e.message;
      await shot(page, "failed-sharing-" + name).catch(() => {});
      break;
    }
  }
  if (!result.failed) await phone();
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
