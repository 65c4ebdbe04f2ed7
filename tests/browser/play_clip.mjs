// Plays a video URL in headless Chromium and reports what the player saw.
//   node play_clip.mjs URL [seconds]
// Prints one JSON line: {"ok":bool,"currentTime":n,"duration":n,"width":n,"height":n,"error":...}
import { chromium } from "playwright-core";

const [url, seconds = "2"] = process.argv.slice(2);
if (!url) {
  console.error("usage: node play_clip.mjs URL [seconds]");
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
  await page.setContent(`<video id="v" muted playsinline src="${url}"></video>`);
  const result = await page.evaluate(async ([wanted]) => {
    const v = document.getElementById("v");
    const outcome = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), 20000);
      v.addEventListener("error", () => { clearTimeout(timer); resolve("error"); });
      v.addEventListener("timeupdate", () => {
        if (v.currentTime >= wanted) { clearTimeout(timer); resolve("played"); }
      });
      v.play().catch((e) => { clearTimeout(timer); resolve("play() failed: " + e); });
    });
    return {
      ok: outcome === "played",
      outcome,
      currentTime: v.currentTime,
      duration: v.duration,
      width: v.videoWidth,
      height: v.videoHeight,
      error: v.error ? `${v.error.code} ${v.error.message}` : null,
    };
  }, [Number(seconds)]);
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
