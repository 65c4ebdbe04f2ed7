// Opens Porchlight's /live page in headless Chromium and reports what it saw.
//   node live_view.mjs URL [seconds]
// Prints one JSON line: frames shown, time to the first frame, currentTime
// samples, the codec, whether MSE can play it, and the page's status text.
import { chromium } from "playwright-core";

const [url, seconds = "4"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node live_view.mjs URL [seconds]");
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
try {
  const page = await browser.newPage();
  await page.goto(url);
  const currentTimes = [];
  const deadline = Date.now() + Number(seconds) * 1000;
  while (Date.now() < deadline) {
    await page.waitForTimeout(500);
    currentTimes.push(await page.evaluate(() => document.getElementById("video").currentTime));
  }
  const result = await page.evaluate(() => {
    const v = document.getElementById("video");
    const quality = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : null;
    return {
      ...window.live,
      width: v.videoWidth,
      height: v.videoHeight,
      totalVideoFrames: quality ? quality.totalVideoFrames : null,
      videoError: v.error ? `${v.error.code} ${v.error.message}` : null,
      status: document.getElementById("status").textContent,
      snapshotShown: !document.getElementById("snapshot").hidden,
    };
  });
  result.currentTimes = currentTimes;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
