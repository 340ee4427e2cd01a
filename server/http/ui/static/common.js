// Shared by voxgate's pages: the API key (kept in sessionStorage), API calls and errors in words.

const KEY_ITEM = "voxgate.apiKey";

/** The API key typed into the page ("" when none: open mode). */
export function apiKey() {
  return sessionStorage.getItem(KEY_ITEM) || "";
}

/** Keep `key` for this tab only (sessionStorage is cleared when the tab closes). */
export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_ITEM, key);
  else sessionStorage.removeItem(KEY_ITEM);
}

/** An API call the server refused or that never reached it; `message` is meant for people, `body` is the JSON. */
export class ApiError extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const STATUS_WORDS = {
  400: "refused", 401: "not authorised", 403: "forbidden", 404: "not found", 405: "not allowed",
  409: "conflict", 413: "too large", 415: "unsupported audio", 429: "too many requests",
  500: "server error", 503: "server busy",
};

/** The API's own message for an HTTP error (Watson's {"error"}, Transcribe's {"Message"}), with its status. */
export function describeError(status, body, text) {
  const message = (body && (body.error || body.Message)) || (text || "").trim() || "no details given";
  return `${STATUS_WORDS[status] || "HTTP error"} (${status}): ${message}`;
}

/** A URL on this server with the given query parameters (empty ones left out). */
export function apiUrl(path, query = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  return url;
}

/**
 * Call the API with the key as a Bearer token; resolve to the JSON body.
 * `body`: a Blob/File/string is sent as is (with `contentType`), anything else as JSON.
 * Throws ApiError with the server's message when the status is not 2xx.
 */
export async function api(path, { method = "GET", query = {}, body, contentType } = {}) {
  const headers = {};
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined && !(body instanceof Blob) && typeof body !== "string") {
    body = JSON.stringify(body);
    contentType = "application/json";
  }
  if (contentType) headers["Content-Type"] = contentType;
  let response;
  try {
    response = await fetch(apiUrl(path, query), { method, headers, body });
  } catch (error) {
    throw new ApiError(0, `the server did not answer (${error.message}); is voxgate still running?`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = null;
  }
  if (!response.ok) throw new ApiError(response.status, describeError(response.status, data, text), data);
  return data ?? {};
}

/** Show `text` in `element` as an error, a success or plain information ("" hides it). */
export function show(element, text, kind = "info") {
  element.textContent = text;
  element.dataset.kind = kind;
  element.hidden = !text;
}

/**
 * Wire the API-key form of a page: the key is saved on submit and `onChange` runs with it; the hint says
 * whether the server needs one (it answers the customization list without a key only in open mode).
 */
export function setupKeyBar(onChange) {
  const form = document.getElementById("key-form");
  const input = document.getElementById("api-key");
  const hint = document.getElementById("key-hint");
  input.value = apiKey();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setApiKey(input.value.trim());
    describeAccess(hint).then(() => onChange(apiKey()));
  });
  return describeAccess(hint);
}

async function describeAccess(hint) {
  try {
    await api("/v1/customizations");
    show(hint, apiKey() ? "key accepted" : "no key needed: this server runs in open mode (loopback only)", "ok");
  } catch (error) {
    const text = error.status === 401
      ? (apiKey() ? `the key was refused: ${error.message}` : "this server needs an API key")
      : error.message;
    show(hint, text, "error");
  }
}

/** Base-model versions of a SpeechModel, oldest first. */
export function sortedVersions(model) {
  return [...(model.versions || [])].sort((a, b) => (a.created + a.version).localeCompare(b.created + b.version));
}
