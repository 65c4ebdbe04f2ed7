// Live view in a <video> via Media Source Extensions, fed by the daemon's
// WebSocket of fMP4 (`/api/cameras/{camera}/live.ws`). Used by the /live
// page and every tile of the cameras grid. Cameras a browser cannot play
// (H.265) get the latest snapshot instead.
"use strict";

/**
 * Starts live view of `camera` in `video`. Returns the stats object the
 * pages and tests read (`framesShown`, `firstFrameMs`, `codec`, `playable`,
 * `error`) and a `stop()`.
 * options: onStatus(text), snapshot (an <img> to show instead for H.265).
 */
export function playLive(video, camera, options = {}) {
  const onStatus = options.onStatus || (() => {});
  const base = "/api/cameras/" + encodeURIComponent(camera);
  const stats = { opened: performance.now(), firstFrameMs: null, framesShown: 0, codec: null, playable: null, error: null };

  if ("requestVideoFrameCallback" in video) {
    video.requestVideoFrameCallback(function shown() {
      stats.framesShown += 1;
      if (stats.firstFrameMs === null) stats.firstFrameMs = performance.now() - stats.opened;
      video.requestVideoFrameCallback(shown);
    });
  }

  let mediaSource = null, sourceBuffer = null, queue = [];

  function pump() {
    if (!sourceBuffer || sourceBuffer.updating || queue.length === 0) return;
    try {
      sourceBuffer.appendBuffer(queue.shift());
    } catch (e) {
      // QuotaExceeded: drop what is behind the playhead and retry later.
      trim(true);
    }
  }

  function trim(force) {
    if (!sourceBuffer || sourceBuffer.updating || video.buffered.length === 0) return;
    const start = video.buffered.start(0);
    const keepFrom = video.currentTime - (force ? 2 : 10);
    if (keepFrom > start + 1) sourceBuffer.remove(start, keepFrom);
  }

  function followLiveEdge() {
    const b = video.buffered;
    if (b.length === 0) return;
    const end = b.end(b.length - 1);
    // Start (or restart) at what is buffered; stay near the live edge.
    if (video.currentTime < b.start(0) || end - video.currentTime > 1.5) {
      video.currentTime = Math.max(b.start(b.length - 1), end - 0.2);
    }
    if (video.paused) video.play().catch(() => {});
  }

  function startPlayer(mime) {
    if (mediaSource) { queue = []; sourceBuffer = null; }
    mediaSource = new MediaSource();
    video.src = URL.createObjectURL(mediaSource);
    mediaSource.addEventListener("sourceopen", () => {
      sourceBuffer = mediaSource.addSourceBuffer(mime);
      sourceBuffer.mode = "segments";
      sourceBuffer.addEventListener("updateend", () => { followLiveEdge(); pump(); });
      pump();
    }, { once: true });
  }

  function showSnapshotInstead(codec) {
    const img = options.snapshot;
    video.hidden = true;
    if (img) {
      img.src = base + "/snapshot.jpg";
      img.alt = "Latest snapshot of " + camera;
      img.hidden = false;
    }
    onStatus("This camera sends " + codec + " (H.265), which this browser cannot play live. Showing the latest snapshot instead; choose H.264 in the camera's settings for live video here.");
  }

  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(scheme + location.host + base + "/live.ws");
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    if (typeof event.data === "string") {
      const message = JSON.parse(event.data);
      if (message.type !== "init") return;
      stats.codec = message.codec;
      stats.playable = !!(window.MediaSource && MediaSource.isTypeSupported(message.mime));
      if (!stats.playable) { showSnapshotInstead(message.codec); socket.close(); return; }
      onStatus(message.width + "×" + message.height + " " + message.codec);
      startPlayer(message.mime);
      return;
    }
    queue.push(event.data);
    pump();
  };
  socket.onclose = () => { if (stats.playable !== false) onStatus("Live view ended."); };
  socket.onerror = () => { stats.error = "websocket error"; };
  const trimmer = setInterval(() => trim(false), 5000);
  stats.stop = () => { clearInterval(trimmer); socket.close(); };
  return stats;
}
