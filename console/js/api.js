// The Hangar API as the console calls it: the base URL and the credential (API key or JWT) live in
// sessionStorage only, and the credential is sent only as a header to that base URL, never in a URL.

const CREDENTIAL_KEY = "hangar.credential";
const API_URL_KEY = "hangar.apiUrl";

/** An API (or network) failure in words: `status` 0 means the API could not be reached at all. */
export class ApiError extends Error {
  constructor(status, code, message, field = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

let defaultApiUrl = "";

/** The deployment's API URL (config.json; empty: the console's own origin). */
export async function loadConfig() {
  try {
    const response = await fetch("config.json", { cache: "no-cache" });
    if (response.ok) {
      const config = await response.json();
      defaultApiUrl = typeof config.apiUrl === "string" ? config.apiUrl.trim() : "";
    }
  } catch {
    defaultApiUrl = "";
  }
}

export function normalizeApiUrl(value) {
  const text = (value || "").trim().replace(/\/+$/, "");
  if (!text) return "";
  const url = new URL(text); // throws on a malformed URL
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new TypeError("not an http(s) URL");
  return url.origin + url.pathname.replace(/\/+$/, "");
}

export const session = {
  credential: () => sessionStorage.getItem(CREDENTIAL_KEY),
  configuredApiUrl: () => sessionStorage.getItem(API_URL_KEY) || defaultApiUrl,
  /** The absolute base URL requests go to. */
  apiUrl: () => session.configuredApiUrl() || window.location.origin,
  signIn(credential, apiUrl) {
    sessionStorage.setItem(CREDENTIAL_KEY, credential);
    if (apiUrl) sessionStorage.setItem(API_URL_KEY, apiUrl);
    else sessionStorage.removeItem(API_URL_KEY);
  },
  signOut() {
    sessionStorage.removeItem(CREDENTIAL_KEY);
    sessionStorage.removeItem(API_URL_KEY);
  },
};

/** The header that carries a credential: an API key (hgk_...) as X-API-Key, anything else as a bearer JWT. */
export function credentialHeader(credential) {
  return credential.startsWith("hgk_") ? { "X-API-Key": credential } : { Authorization: `Bearer ${credential}` };
}

function errorOf(status, body, retryAfter) {
  const error = body && typeof body === "object" ? body.error : null;
  if (error && typeof error === "object") {
    return new ApiError(status, error.code || `http_${status}`, error.message || `HTTP ${status}`, error.field || null, retryAfter);
  }
  if (body && typeof body === "object" && typeof body.message === "string") {
    return new ApiError(status, `http_${status}`, body.message, null, retryAfter);
  }
  return new ApiError(status, `http_${status}`, `The API answered HTTP ${status}`, null, retryAfter);
}

/**
 * METHOD path (relative to the API URL) with the session's credential; the parsed JSON body.
 * `credential` and `base` override the session's (sign-in checks them before keeping them).
 */
export async function api(method, path, { body, query, credential, base: baseUrl, headers = {}, signal } = {}) {
  const base = baseUrl || session.apiUrl();
  const url = new URL(base + path);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const secret = credential ?? session.credential();
  const sent = { Accept: "application/json", ...headers, ...(secret ? credentialHeader(secret) : {}) };
  if (body !== undefined) sent["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: sent,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network_error", `Cannot reach the API at ${base} (it is down, or it does not allow this console's origin).`);
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  if (!response.ok) throw errorOf(response.status, parsed, response.headers.get("Retry-After"));
  return parsed; // /api routes: {"success": true, "data": ..., "nextCursor"?}; /v1 routes: plain JSON

}
