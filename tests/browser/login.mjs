// Opens a Porchlight page without a session, is sent to /login, logs in
// there (a wrong password first, then the right one) and reports where it
// landed.
//   node login.mjs URL USER WRONG_PASSWORD PASSWORD
// Prints one JSON line: loginUrl, errorShown, finalUrl, session (from
// /api/session), cookieVisibleToScript.
import { chromium } from "playwright-core";

const [url, user, wrongPassword, password] = process.argv.slice(2);
if (!password) {
  console.error("usage: node login.mjs URL USER WRONG_PASSWORD PASSWORD");
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector("#user");
  const loginUrl = page.url();
  await page.fill("#user", user);
  await page.fill("#password", wrongPassword);
  await page.click("#submit");
  await page.waitForFunction(() => document.getElementById("error").textContent !== "");
  const errorShown = await page.textContent("#error");
  await page.fill("#password", password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 15000 }),
    page.click("#submit"),
  ]);
  const finalUrl = page.url();
  const session = await page.evaluate(async () => (await fetch("/api/session")).json());
  const cookieVisibleToScript = await page.evaluate(() => document.cookie.includes("porchlight_session"));
  console.log(JSON.stringify({ loginUrl, errorShown, finalUrl, session, cookieVisibleToScript }));
} finally {
  await browser.close();
}
