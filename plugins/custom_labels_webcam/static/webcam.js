// Webcam -> POST api/detect -> labelled boxes on an overlay canvas. Plain JS, no build step, no CDN.
// Test hooks: window.webcamState and data-* attributes on <body> mirror what the page did.
(() => {
  "use strict";

  const base = document.querySelector('meta[name="webcam-base"]').content;
  const pageParams = new URLSearchParams(location.search);
  const $ = (id) => document.getElementById(id);
  const video = $("video");
  const overlay = $("overlay");
  const versionSelect = $("version");
  const confidence = $("confidence");
  const confidenceValue = $("confidence-value");
  const interval = $("interval");
  const toggle = $("toggle");
  const status = $("status");
  const labelList = $("labels");
  const grab = document.createElement("canvas");

  // Frames are downscaled before upload: Custom Labels models see small images anyway, and uploads stay fast.
  const MAX_SIDE = 640;
  const MAX_RESULTS = 50;

  const state = {
    running: false,
    versions: 0,
    frames: 0,
    responses: 0,
    boxesDrawn: 0,
    lastBoxes: 0,
    lastLabels: [],
    lastError: null,
    inFlight: 0,
    maxInFlight: 0,
  };
  window.webcamState = state;

  let stream = null;
  let loop = 0; // bumped on every start/stop so that an old loop ends instead of running beside a new one
  let timer = null;

  if (pageParams.has("min_confidence")) confidence.value = pageParams.get("min_confidence");
  if (pageParams.has("interval_ms")) interval.value = pageParams.get("interval_ms");
  confidenceValue.textContent = confidence.value;

  function publish() {
    const data = document.body.dataset;
    data.running = String(state.running);
    data.versions = String(state.versions);
    data.frames = String(state.frames);
    data.responses = String(state.responses);
    data.boxesDrawn = String(state.boxesDrawn);
    data.lastBoxes = String(state.lastBoxes);
    data.lastError = state.lastError || "";
  }

  function setStatus(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  function apiUrl(path, params = {}) {
    const url = new URL(base + path, location.href);
    // The page's own ?conn_id= picks the Airflow AWS connection for every API call.
    if (pageParams.get("conn_id")) url.searchParams.set("conn_id", pageParams.get("conn_id"));
    for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
    return url;
  }

  async function errorText(response) {
    let detail = null;
    try {
      detail = (await response.json()).detail;
    } catch (_) {
      // not JSON: fall back to the status line
    }
    if (detail && typeof detail === "object" && !Array.isArray(detail) && detail.message) {
      return `${detail.code || response.status}: ${detail.message}${detail.hint ? " " + detail.hint : ""}`;
    }
    if (typeof detail === "string") {
      const login = response.status === 401 ? " Log in to Airflow and reload." : "";
      return `${response.status} ${detail}.${login}`;
    }
    if (Array.isArray(detail)) return `${response.status}: ${detail.map((d) => d.msg).join("; ")}`;
    return `HTTP ${response.status} ${response.statusText}`;
  }

  async function loadVersions() {
    versionSelect.disabled = true;
    const previous = versionSelect.value || pageParams.get("version") || "";
    try {
      const response = await fetch(apiUrl("api/versions"), { credentials: "same-origin" });
      if (!response.ok) throw new Error(await errorText(response));
      const { projects } = await response.json();
      versionSelect.replaceChildren();
      let count = 0;
      for (const project of projects) {
        if (!project.versions.length) continue;
        const group = document.createElement("optgroup");
        group.label = project.name;
        for (const version of project.versions) {
          const option = document.createElement("option");
          option.value = version.arn;
          const f1 = typeof version.f1 === "number" ? ` (F1 ${version.f1.toFixed(2)})` : "";
          option.textContent = `${project.name} / ${version.name}${f1}`;
          group.append(option);
          count += 1;
        }
        versionSelect.append(group);
      }
      state.versions = count;
      if (!count) {
        const option = new Option(`no RUNNING version (${projects.length} project(s))`, "");
        versionSelect.append(option);
        setStatus("No model version is RUNNING: start one (StartProjectVersion), then Refresh.", true);
      } else {
        if ([...versionSelect.options].some((o) => o.value === previous)) versionSelect.value = previous;
        if (!state.running) setStatus(`${count} RUNNING version(s). Start the camera.`);
      }
      versionSelect.disabled = !count;
    } catch (err) {
      state.lastError = err.message;
      setStatus(`Could not list versions: ${err.message}`, true);
    }
    publish();
  }

  function colour(name) {
    let hash = 0;
    for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `hsl(${hash % 360} 90% 50%)`;
  }

  function clearOverlay() {
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
    overlay.dataset.boxes = "0";
  }

  function draw(labels) {
    // The canvas matches the video's on-screen size (boxes are normalized), so lines and captions stay crisp.
    const scale = window.devicePixelRatio || 1;
    const width = Math.round(overlay.clientWidth * scale);
    const height = Math.round(overlay.clientHeight * scale);
    if (overlay.width !== width || overlay.height !== height) {
      overlay.width = width;
      overlay.height = height;
    }
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const line = 2 * scale;
    const fontSize = Math.round(13 * scale);
    ctx.lineWidth = line;
    ctx.font = `${fontSize}px system-ui, sans-serif`;
    ctx.textBaseline = "top";
    let drawn = 0;
    for (const label of labels) {
      if (!label.box) continue;
      const x = label.box.left * width;
      const y = label.box.top * height;
      const w = label.box.width * width;
      const h = label.box.height * height;
      const text = `${label.name} ${label.confidence.toFixed(1)}%`;
      const textHeight = fontSize + 4 * scale;
      const textWidth = ctx.measureText(text).width + 6 * scale;
      // The caption sits above the box, or inside it when the box touches the top edge.
      const textY = y >= textHeight ? y - textHeight : y;
      ctx.strokeStyle = ctx.fillStyle = colour(label.name);
      ctx.strokeRect(x, y, w, h);
      ctx.fillRect(x - line / 2, textY, textWidth, textHeight);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x + 3 * scale, textY + 2 * scale);
      drawn += 1;
    }
    overlay.dataset.boxes = String(drawn);
    return drawn;
  }

  function showLabels(labels) {
    labelList.replaceChildren(
      ...labels.map((label) => {
        const item = document.createElement("li");
        item.textContent = `${label.name}: ${label.confidence.toFixed(1)}%${label.box ? "" : " (whole image)"}`;
        return item;
      }),
    );
  }

  async function sendFrame() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
    grab.width = Math.round(width * scale);
    grab.height = Math.round(height * scale);
    grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
    const frame = await new Promise((resolve) => grab.toBlob(resolve, "image/jpeg", 0.85));
    const params = {
      ProjectVersionArn: versionSelect.value,
      MinConfidence: confidence.value,
      MaxResults: MAX_RESULTS,
    };
    state.frames += 1;
    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    publish();
    try {
      const response = await fetch(apiUrl("api/detect", params), {
        method: "POST",
        headers: { "Content-Type": "image/jpeg" },
        body: frame,
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(await errorText(response));
      const result = await response.json();
      state.responses += 1;
      if (!state.running) return; // stopped while the frame was on its way
      const drawn = draw(result.labels);
      state.boxesDrawn += drawn;
      state.lastBoxes = drawn;
      state.lastLabels = result.labels;
      state.lastError = null;
      showLabels(result.labels);
      setStatus(`${result.labels.length} label(s), ${drawn} box(es), ${Math.round(result.elapsed_ms)} ms in Rekognition.`);
    } catch (err) {
      state.lastError = err.message;
      state.lastBoxes = 0;
      clearOverlay();
      setStatus(err.message, true);
    } finally {
      state.inFlight -= 1;
      publish();
    }
  }

  async function run(id) {
    if (id !== loop || !state.running) return;
    const started = performance.now();
    if (versionSelect.value && video.readyState >= 2 && video.videoWidth) {
      await sendFrame(); // awaited: a new frame leaves only after the previous answer came back
    }
    if (id !== loop || !state.running) return;
    const wait = Math.max(0, (Number(interval.value) || 500) - (performance.now() - started));
    timer = setTimeout(() => run(id), wait);
  }

  async function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus("This browser gives no camera here: open the page over HTTPS (or on localhost).", true);
      return;
    }
    toggle.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { width: { ideal: 1280 }, height: { ideal: 720 } },
        audio: false,
      });
      video.srcObject = stream;
      await video.play();
      state.running = true;
      toggle.textContent = "Stop camera";
      setStatus(versionSelect.value ? "Camera on." : "Camera on. Pick a RUNNING version.", !versionSelect.value);
      loop += 1;
      run(loop);
    } catch (err) {
      const reasons = { NotAllowedError: "Camera permission denied.", NotFoundError: "No camera found." };
      state.lastError = reasons[err.name] || `Camera failed: ${err.message}`;
      setStatus(state.lastError, true);
    } finally {
      toggle.disabled = false;
      publish();
    }
  }

  function stop() {
    state.running = false;
    loop += 1;
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    clearOverlay();
    toggle.textContent = "Start camera";
    setStatus("Camera off.");
    publish();
  }

  toggle.addEventListener("click", () => (state.running ? stop() : start()));
  $("refresh").addEventListener("click", loadVersions);
  confidence.addEventListener("input", () => {
    confidenceValue.textContent = confidence.value;
  });
  versionSelect.addEventListener("change", () => {
    clearOverlay();
    labelList.replaceChildren();
  });

  publish();
  loadVersions();
})();
