// The minimal /live page: one camera, full width.
import { playLive } from "/ui/assets/live-player.js";

const camera = document.body.dataset.camera;
document.getElementById("title").textContent = "Live: " + camera;
const statusLine = document.getElementById("status");
window.live = playLive(document.getElementById("video"), camera, {
  snapshot: document.getElementById("snapshot"),
  onStatus: (text) => { statusLine.textContent = text; },
});
