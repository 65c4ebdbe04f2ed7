// The owner, who left the relay program, joins it again from the sharing
// page in headless Chromium, logged in (accounts mode): pastes the agency
// CA, picks the registry CA file, checks, compares the fingerprint, ticks
// the box and joins; waits for the daemon to restart (the login survives
// it) and reads the new relay status.
// The Rust test (tests/relay_join.rs) sets the stage and checks the effects.
//   node relay_join.mjs BASE_URL OUT_DIR AGENCY_CA_PEM_FILE REGISTRY_CA_PEM_FILE
// Needs PORCHLIGHT_USER and PORCHLIGHT_PASSWORD. Prints one JSON line with
// what each step saw; OUT_DIR gets join-form(-phone).png.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [base, out, agencyFile, registryFile] = process.argv.slice(2);
if (!base || !out || !agencyFile || !registryFile) {
  console.error("usage: node relay_join.mjs BASE_URL OUT_DIR AGENCY_CA_PEM_FILE REGISTRY_CA_PEM_FILE");
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
  await page.waitForURL(/\/login\?next=/, { timeout: 60000 });
  await page.getByLabel(/user/i).fill(process.env.PORCHLIGHT_USER || "");
  await page.getByLabel(/password/i).fill(process.env.PORCHLIGHT_PASSWORD || "");
  await page.getByRole("button", { name: /log in|sign in/i }).click();
  await page.waitForURL(base + "/sharing");
}

async function phone() {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await page.goto(base + "/sharing");
  await logIn(page);
  await page.locator("#join-form").waitFor({ timeout: 10000 });
  await page.getByLabel("Agency CA certificate (PEM)").fill(readFileSync(agencyFile, "utf8"));
  await page.getByRole("button", { name: "Check" }).click();
  await page.locator("#join-preview .fingerprint").first().waitFor({ timeout: 10000 });
  await page.locator("#join-form").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(out, "join-form-phone.png") });
  result.phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  await context.close();
}

async function desktop() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => { if (m.type() === "error") result.consoleErrors.push(m.text()); });
  await page.goto(base + "/sharing");
  await logIn(page);
  const form = page.locator("#join-form");
  await form.waitFor({ timeout: 10000 });
  result.stateBefore = await page.locator("#relay dd").first().textContent();
  result.leaveHidden = await page.locator("#leave").isHidden();

  // Something that is not a certificate first: the problem is named.
  await page.getByLabel("Agency CA certificate (PEM)").fill("this is not a certificate");
  await page.getByRole("button", { name: "Check" }).click();
  await page.locator("#join-error").filter({ hasText: "not a PEM" }).waitFor({ timeout: 10000 });
  result.shownError = await page.locator("#join-error").textContent();

  // The agency CA pasted, the registry CA picked as a file; keyboard from here.
  await page.getByLabel("Agency CA certificate (PEM)").fill(readFileSync(agencyFile, "utf8"));
  await page.getByLabel("Or pick the registry CA file").setInputFiles(registryFile);
  await page.getByRole("button", { name: "Check" }).focus();
  await page.keyboard.press("Enter");
  await page.locator("#join-preview .fingerprint").first().waitFor({ timeout: 10000 });
  result.fingerprints = await page.locator("#join-preview .fingerprint").allTextContents();
  result.subjects = await page.locator("#join-preview dd").allTextContents();
  result.joinDisabledBeforeTick = await page.locator("#join-submit").isDisabled();
  await shot(page, "join-form");
  // The checkbox has the focus after Check: Space ticks it.
  result.confirmFocused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  await page.keyboard.press("Space");
  await page.getByRole("button", { name: "Join", exact: true }).click();
  await page.locator("#join-wait").filter({ hasText: "restarting" }).waitFor({ timeout: 10000 });
  // The restarted daemon still knows our session: no login page on the way.
  await page.locator("#relay dd").first().filter({ hasText: "enrolled" }).waitFor({ timeout: 20000 });
  result.stateAfter = await page.locator("#relay dd").first().textContent();
  result.joinHiddenAfter = await page.locator("#join-form").isHidden();
  result.urlAfter = page.url();
  await shot(page, "join-after");
  await context.close();
}

try {
  await phone();
  await desktop();
} catch (e) {
  result.failed = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
