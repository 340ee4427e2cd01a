// The live page: microphone -> AudioWorklet (16 kHz l16) -> Watson WebSocket /v1/recognize; interim words in
// grey, replaced by finals, each final with its latency; a file upload as a second input (sessionless POST).

import { ApiError, api, apiKey, apiUrl, setupKeyBar, show, sortedVersions } from "/ui/common.js";

const RATE_HZ = 16000;
const CONTENT_TYPE = `audio/l16;rate=${RATE_HZ};endianness=little-endian`;
const $ = (id) => document.getElementById(id);
const CLOSE_WORDS = {
  1000: "closed normally",
  1001: "the server went away",
  1002: "protocol error",
  1006: "the connection was lost (no close frame)",
  1008: "refused by policy",
  1009: "a frame was too big",
  1011: "the server hit an unexpected error",
  1012: "the server is restarting",
  1013: "the server is busy: try again later",
};

let models = {};
let session = null;

function selected(id) {
  return $(id).value || undefined;
}

function fillSelect(select, options, keep) {
  const previous = keep ? select.value : "";
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  if (options.some(([value]) => value === previous)) select.value = previous;
}

async function loadModels() {
  const { models: list } = await api("/v1/models");
  models = Object.fromEntries(list.map((m) => [m.name, m]));
  const names = Object.keys(models).sort();
  fillSelect($("model"), names.map((n) => [n, `${n} (${models[n].rate / 1000} kHz)`]), true);
  if (!$("model").value || !models[$("model").value]) $("model").value = names.includes("en-US_BroadbandModel") ? "en-US_BroadbandModel" : names[0];
  await modelChanged();
}

async function modelChanged() {
  const model = models[$("model").value];
  if (!model) return;
  const versions = sortedVersions(model).reverse();
  fillSelect($("base-version"), [["", "newest (default)"], ...versions.map((v) => [v.version, `${v.version} · ${v.state}`])], true);
  const none = [["", "none"]];
  try {
    const [language, acoustic] = await Promise.all([api("/v1/customizations"), api("/v1/acoustic_customizations")]);
    const usable = (list) => list.customizations
      .filter((c) => c.base_model_name === model.name && ["available", "upgrading"].includes(c.status))
      .map((c) => [c.customization_id, `${c.name} (${c.customization_id.slice(0, 8)})`]);
    fillSelect($("language-custom"), [...none, ...usable(language)], true);
    fillSelect($("acoustic-custom"), [...none, ...usable(acoustic)], true);
  } catch (error) {
    fillSelect($("language-custom"), none);
    fillSelect($("acoustic-custom"), none);
    if (error.status !== 401) showError(`custom models could not be listed: ${error.message}`);
  }
}

function recognitionQuery() {
  return {
    model: selected("model"),
    base_model_version: selected("base-version"),
    language_customization_id: selected("language-custom"),
    acoustic_customization_id: selected("acoustic-custom"),
  };
}

function startMessage() {
  return {
    action: "start",
    "content-type": CONTENT_TYPE,
    interim_results: $("interim").checked,
    end_of_phrase_silence_time: Number($("silence").value),
    timestamps: true,
  };
}

function setStatus(text) {
  $("status").textContent = text;
}

function showError(text) {
  show($("error"), text, "error");
}

function showWarnings(warnings) {
  for (const warning of warnings || []) {
    const item = document.createElement("li");
    item.textContent = warning;
    $("warnings").append(item);
  }
}

/** Append a final result before the interim line, with its latency when known. */
function addFinal(transcript, latencyMs) {
  const line = document.createElement("span");
  line.className = "final";
  const words = document.createElement("span");
  words.className = "words";
  words.textContent = transcript.trim();
  line.append(words);
  if (latencyMs !== null) {
    const badge = document.createElement("small");
    badge.className = "latency";
    badge.title = "from the end of the last word's audio to this final's arrival";
    badge.textContent = `${Math.round(latencyMs)} ms`;
    line.append(" ", badge);
  }
  $("transcript").insertBefore(line, $("interim-text"));
}

function showResults(message, latencyOf) {
  showWarnings(message.warnings);
  for (const result of message.results || []) {
    const alternative = result.alternatives && result.alternatives[0];
    const transcript = alternative ? alternative.transcript : "";
    if (result.final) {
      $("interim-text").textContent = "";
      if (transcript.trim()) addFinal(transcript, latencyOf(alternative));
    } else {
      $("interim-text").textContent = transcript;
    }
  }
}

/** One microphone session: capture, the socket, and the clock of the audio sent. */
class LiveSession {
  constructor() {
    this.ws = null;
    this.context = null;
    this.stream = null;
    this.node = null;
    this.queue = [];
    this.sentSamples = 0;
    this.sent = []; // [seconds of audio sent, performance.now() when sent]
    this.listening = 0;
    this.stopping = false;
    this.error = null;
    this.opened = false;
  }

  async start() {
    // The audio graph is ready before the microphone opens, so that nothing said right after
    // "Start" is lost while the worklet loads (a capture opened first runs ahead of its consumer).
    try {
      this.context = new AudioContext({ sampleRate: RATE_HZ });
    } catch {
      this.context = new AudioContext(); // the worklet down-samples from the device's rate
    }
    await this.context.audioWorklet.addModule("/ui/pcm-worklet.js");
    this.node = new AudioWorkletNode(this.context, "pcm16k", {
      numberOfOutputs: 0, processorOptions: { targetRate: RATE_HZ, frameSamples: RATE_HZ / 10 },
    });
    this.node.port.onmessage = (event) => this.onAudio(event.data);
    setStatus("asking for the microphone…");
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    this.context.createMediaStreamSource(this.stream).connect(this.node);
    await this.context.resume();
    this.open();
  }

  open() {
    const url = apiUrl("/v1/recognize", { ...recognitionQuery(), access_token: apiKey() || undefined });
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    setStatus("connecting…");
    this.ws = new WebSocket(url);
    this.ws.binaryType = "arraybuffer";
    this.ws.onopen = () => {
      this.opened = true;
      this.ws.send(JSON.stringify(startMessage()));
      for (const frame of this.queue) this.send(frame);
      this.queue = [];
    };
    this.ws.onmessage = (event) => this.onMessage(JSON.parse(event.data));
    this.ws.onclose = (event) => this.onClose(event);
  }

  onAudio(data) {
    if (data === "flushed") {
      this.sendStop();
      return;
    }
    if (this.stopping && this.listening > 1) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.send(data);
    else if (!this.opened) this.queue.push(data);
  }

  send(frame) {
    this.ws.send(frame);
    this.sentSamples += frame.byteLength / 2;
    this.sent.push([this.sentSamples / RATE_HZ, performance.now()]);
  }

  /** Milliseconds from sending the audio at the end of the alternative's last word until now. */
  latencyOf(alternative) {
    const stamps = alternative && alternative.timestamps;
    if (!stamps || stamps.length === 0) return null;
    const end = stamps[stamps.length - 1][2];
    const sent = this.sent.find(([seconds]) => seconds >= end);
    return sent ? performance.now() - sent[1] : null;
  }

  onMessage(message) {
    if (message.error) {
      this.error = message.error;
      showError(`the server ended the session: ${message.error}`);
    }
    if (message.state === "listening") {
      this.listening += 1;
      if (this.listening === 1) setStatus("listening: speak now");
      else if (this.stopping) {
        setStatus("done");
        this.ws.close(1000);
      }
    }
    if (message.results) showResults(message, (alternative) => this.latencyOf(alternative));
  }

  async onClose(event) {
    this.release();
    if (!this.opened) {
      setStatus("not connected");
      showError(await handshakeRefusal());
    } else if (!this.error && !(this.stopping && event.code === 1000)) {
      const words = CLOSE_WORDS[event.code] || "closed";
      showError(`the connection closed: ${words} (code ${event.code}${event.reason ? `: ${event.reason}` : ""})`);
      setStatus("disconnected");
    } else if (this.error) {
      setStatus(`disconnected (code ${event.code})`);
    }
    sessionEnded();
  }

  stop() {
    this.stopping = true;
    setStatus("finishing…");
    if (this.node && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.node.port.postMessage("flush");
      // The worklet answers "flushed" at once; should its context have stopped (a microphone unplugged,
      // a busy machine), stop the request anyway rather than wait for ever.
      this.stopTimer = setTimeout(() => this.sendStop(), 2000);
    } else if (this.ws && this.ws.readyState !== WebSocket.CLOSED) {
      this.ws.close(1000);
    }  // already closed: onClose has said why
  }

  /** Tell the server the audio has ended (once): it answers with the last finals and "listening". */
  sendStop() {
    clearTimeout(this.stopTimer);
    if (this.stopSent || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
    this.stopSent = true;
    this.ws.send(JSON.stringify({ action: "stop" }));
  }

  release() {
    if (this.stream) for (const track of this.stream.getTracks()) track.stop();
    if (this.context) this.context.close();
    this.stream = null;
    this.context = null;
  }
}

/**
 * Why the WebSocket handshake failed: a browser hides the HTTP status of a refused upgrade, so ask the same
 * URL again over plain HTTP, where the server answers with the same refusal (401 bad key, 503 at the session
 * limit, 404 unknown model) before it would notice the missing upgrade.
 */
async function handshakeRefusal() {
  try {
    await api("/v1/recognize", { query: recognitionQuery() });
  } catch (error) {
    // A Watson error body ({"error"}) is the server's refusal; aiohttp's bare 400 says only "no upgrade".
    if (error instanceof ApiError && error.body && error.body.error) {
      return `the server refused the connection: ${error.message}`;
    }
    if (error instanceof ApiError && error.status === 0) return `could not connect: ${error.message}`;
  }
  return "the connection was closed before it opened (the server may be busy or restarting)";
}

function sessionStarted() {
  $("start").disabled = true;
  $("stop").disabled = false;
  $("file").disabled = true;
}

function sessionEnded() {
  session = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  $("file").disabled = false;
}

async function startMicrophone() {
  show($("error"), "");
  $("warnings").replaceChildren();
  sessionStarted();
  session = new LiveSession();
  try {
    await session.start();
  } catch (error) {
    session.release();
    sessionEnded();
    setStatus("idle");
    showError(`the microphone could not be opened: ${error.message}`);
  }
}

async function transcribeFile() {
  const file = $("file").files[0];
  if (!file) return;
  show($("error"), "");
  $("warnings").replaceChildren();
  setStatus(`transcribing ${file.name}…`);
  const started = performance.now();
  try {
    const query = { ...recognitionQuery(), end_of_phrase_silence_time: $("silence").value, timestamps: true };
    const results = await api("/v1/recognize", {
      method: "POST", query, body: file, contentType: file.type || "application/octet-stream",
    });
    showResults(results, () => null);
    setStatus(`${file.name}: transcribed in ${Math.round(performance.now() - started)} ms`);
  } catch (error) {
    setStatus("idle");
    showError(`the file was not transcribed: ${error.message}`);
  } finally {
    $("file").value = "";
  }
}

async function main() {
  $("model").addEventListener("change", modelChanged);
  $("start").addEventListener("click", startMicrophone);
  $("stop").addEventListener("click", () => session && session.stop());
  $("file").addEventListener("change", transcribeFile);
  $("clear").addEventListener("click", () => {
    $("transcript").querySelectorAll(".final").forEach((e) => e.remove());
    $("interim-text").textContent = "";
  });
  await setupKeyBar(() => loadModels().catch((error) => showError(error.message)));
  try {
    await loadModels();
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(`the models could not be listed: ${error.message}`);
  }
}

main();
