// The HTTP API, and the one place the access token lives.
//
// Every request goes through `request()`: it attaches the access token, turns error responses
// into ApiError and network failures into NetworkError. Access tokens are short-lived: a timer
// refreshes them (POST /auths/refresh) a minute before they expire, a request refreshes first
// when the token is about to expire, and a 401 triggers one refresh and one retry. Only when the
// refresh itself is refused is the token forgotten and the onUnauthorized() handler called (the
// app shows the login form; drafts live elsewhere and survive).
//
// Refresh tokens are single use, and presenting a used one logs the session out everywhere, so
// tabs take turns refreshing (Web Locks) and a tab first looks whether another one already did.

const TOKEN_KEY = "chat-ui.auth";

export class ApiError extends Error {
  constructor(status, detail) {
    super(describeDetail(detail) || `Request failed (${status})`);
    this.name = "ApiError";
    this.status = status;
    this.detail = detail;
  }
}

export class NetworkError extends Error {
  constructor() {
    super("Can't reach the server. Check your connection and try again.");
    this.name = "NetworkError";
  }
}

let unauthorizedHandler = () => {};
let failureHandler = () => {};

/** Called after a request was refused with 401 (the token has already been forgotten). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** Called on network errors and 5xx responses, for a page-wide notice. */
export function onServiceFailure(handler) {
  failureHandler = handler;
}

// ---- the token ----------------------------------------------------------------------------

function readAuth() {
  try {
    const auth = JSON.parse(localStorage.getItem(TOKEN_KEY) || "null");
    return auth && typeof auth.accessToken === "string" ? auth : null;
  } catch {
    return null;
  }
}

function storeAuth(body) {
  const now = Date.now();
  const auth = {
    accessToken: body.access_token,
    expiresAt: now + (body.expires_in || 0) * 1000,
    refreshToken: body.refresh_token || null,
    refreshExpiresAt: now + (body.refresh_expires_in || 0) * 1000,
  };
  localStorage.setItem(TOKEN_KEY, JSON.stringify(auth));
  scheduleRefresh();
}

export function hasToken() {
  return readAuth() !== null;
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
  clearTimeout(refreshTimer);
}

// ---- refresh ------------------------------------------------------------------------------

const REFRESH_AHEAD_MS = 60_000;
const REFRESH_RETRY_MS = 15_000;
let refreshTimer = 0;
let refreshing = null;

/** Refresh a minute before the access token expires, also when the tab is idle. */
function scheduleRefresh() {
  clearTimeout(refreshTimer);
  const auth = readAuth();
  if (!auth || !auth.refreshToken) return;
  const delay = Math.max(1_000, auth.expiresAt - Date.now() - REFRESH_AHEAD_MS);
  refreshTimer = setTimeout(() => refreshTokens(auth.accessToken).catch(() => {}), delay);
}

/** Replace the pair whose access token is `staleToken`; true when there is a fresh pair,
 * false when the session is over. Concurrent callers share one refresh; a network failure
 * keeps the session and tries again later. */
function refreshTokens(staleToken) {
  if (!refreshing) {
    refreshing = withRefreshLock(() => refreshOnce(staleToken)).finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

function withRefreshLock(task) {
  if (navigator.locks && navigator.locks.request) return navigator.locks.request("chat-ui.refresh", task);
  return task();
}

async function refreshOnce(staleToken) {
  const auth = readAuth();
  if (!auth || !auth.refreshToken || auth.refreshExpiresAt <= Date.now()) return false;
  if (auth.accessToken !== staleToken) {
    scheduleRefresh(); // another tab refreshed while this one waited for the lock
    return true;
  }
  let response;
  try {
    response = await fetch("/auths/refresh", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ refresh_token: auth.refreshToken }),
      credentials: "same-origin",
    });
  } catch {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => refreshTokens(staleToken).catch(() => {}), REFRESH_RETRY_MS);
    throw new NetworkError();
  }
  if (!response.ok) return false;
  storeAuth(await response.json());
  return true;
}

/** The stored tokens, refreshed first when the access token is about to expire (a failed refresh
 * leaves them as they are: the 401 that follows deals with it). */
async function freshAuth() {
  const auth = readAuth();
  if (!auth || !auth.refreshToken || auth.expiresAt - Date.now() >= REFRESH_AHEAD_MS / 2) return auth;
  await refreshTokens(auth.accessToken).catch(() => false);
  return readAuth();
}

function sessionEnded(error) {
  forgetToken();
  unauthorizedHandler(error);
}

/** Another tab logged in or out: `handler(loggedIn)`. */
export function onTokenChangedElsewhere(handler) {
  window.addEventListener("storage", (event) => {
    if (event.key === TOKEN_KEY || event.key === null) handler(hasToken());
  });
}

// ---- requests -----------------------------------------------------------------------------

/** `stream`: ask for an event stream, and resolve to the Response itself when it succeeds
 * (errors are still JSON, and handled as for every other request). */
async function request(method, path, { json, form, query, headers: extraHeaders, auth = true, stream = false } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null) url.searchParams.set(name, String(value));
  }
  const headers = { Accept: stream ? "text/event-stream" : "application/json", ...extraHeaders };
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = new URLSearchParams(form);
  }

  let response = await send(url, method, headers, body, auth);
  if (response.status === 401 && auth && readAuth()) {
    let refreshed = false;
    try {
      refreshed = await refreshTokens(bearerOf(headers));
    } catch (error) {
      failureHandler(error);
      throw error;
    }
    if (refreshed) response = await send(url, method, headers, body, auth);
  }
  if (response.status === 204) return null;
  if (stream && response.ok) return response;
  const data = await response.json().catch(() => null);
  if (response.ok) return data;

  const error = new ApiError(response.status, data && data.detail);
  if (response.status === 401 && auth) {
    sessionEnded(error);
  } else if (response.status >= 500) {
    failureHandler(error);
  }
  throw error;
}

function bearerOf(headers) {
  return (headers.Authorization || "").replace(/^Bearer /, "");
}

async function send(url, method, headers, body, auth) {
  if (auth) {
    const token = await freshAuth();
    if (token) headers.Authorization = `Bearer ${token.accessToken}`;
    else delete headers.Authorization;
  }
  try {
    return await fetch(url, { method, headers, body, credentials: "same-origin" });
  } catch {
    const error = new NetworkError();
    failureHandler(error);
    throw error;
  }
}

export async function login(username, password) {
  const body = await request("POST", "/auths/login", { form: { username, password }, auth: false });
  storeAuth(body);
}

/** End the login session on the server too (its refresh token and this access token stop
 * working), then forget the tokens. Forgetting happens even when the server can't be reached. */
export async function logout() {
  let auth = readAuth();
  if (auth && auth.expiresAt - Date.now() < REFRESH_AHEAD_MS / 2) {
    await refreshTokens(auth.accessToken).catch(() => false); // logging out needs a live access token
    auth = readAuth();
  }
  forgetToken();
  if (!auth) return;
  try {
    await fetch("/auths/logout", {
      method: "POST",
      headers: { Accept: "application/json", Authorization: `Bearer ${auth.accessToken}` },
      credentials: "same-origin",
    });
  } catch {
    // Offline: the tokens are forgotten here and expire on their own.
  }
}

window.addEventListener("storage", (event) => {
  if (event.key === TOKEN_KEY || event.key === null) scheduleRefresh();
});
scheduleRefresh();

/** Open a long-lived GET (an event stream) with the current access token in the header,
 * never in the URL: refreshed first when about to expire, and once more after a 401. Only
 * when that refresh is refused does the login session end. Resolves to the Response. */
export async function openStream(path, extraHeaders, signal) {
  const url = new URL(path, window.location.origin);
  const headers = { Accept: "text/event-stream", ...extraHeaders };
  const open = async () => {
    const auth = await freshAuth();
    if (auth) headers.Authorization = `Bearer ${auth.accessToken}`;
    return fetch(url, { headers, signal, cache: "no-store", credentials: "same-origin" });
  };
  let response = await open();
  if (response.status === 401 && readAuth()) {
    if (await refreshTokens(bearerOf(headers)).catch(() => true)) response = await open();
    else sessionEnded(new ApiError(401, "Your session has expired"));
  }
  return response;
}

/** POST `file` as the body of `path` with upload progress (`onProgress(sent, total)`), which
 * fetch cannot report: XMLHttpRequest with the access token, refreshed once after a 401. */
export async function upload(path, file, onProgress) {
  const attempt = async () => {
    const auth = await freshAuth();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", new URL(path, window.location.origin));
      xhr.setRequestHeader("Accept", "application/json");
      if (auth) xhr.setRequestHeader("Authorization", `Bearer ${auth.accessToken}`);
      xhr.upload.addEventListener("progress", (event) => onProgress(event.loaded, event.total));
      xhr.addEventListener("load", () => resolve({ xhr, token: auth ? auth.accessToken : "" }));
      xhr.addEventListener("error", () => reject(new NetworkError()));
      xhr.send(file);
    });
  };
  let result;
  try {
    result = await attempt();
    if (result.xhr.status === 401 && readAuth() && (await refreshTokens(result.token))) result = await attempt();
  } catch (error) {
    failureHandler(error);
    throw error;
  }
  const { xhr } = result;
  let data = null;
  try {
    data = JSON.parse(xhr.responseText);
  } catch {
    // not JSON: the status says enough
  }
  if (xhr.status >= 200 && xhr.status < 300) return data;
  const error = new ApiError(xhr.status, data && data.detail);
  if (xhr.status === 401) sessionEnded(error);
  else if (xhr.status >= 500) failureHandler(error);
  throw error;
}

/** A random Idempotency-Key (crypto.randomUUID needs a secure context; this does not). */
function idempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

export const api = {
  register: (username, password) => request("POST", "/auths/register", { json: { username, password }, auth: false }),
  me: () => request("GET", "/auths/me"),
  listSessions: (limit, cursor, platform) => request("GET", "/chat/sessions", { query: { limit, cursor, platform } }),
  createSession: (title, agent) => request("POST", "/chat/sessions", { json: { title, platform: "web", agent } }),
  getSession: (id) => request("GET", `/chat/sessions/${encodeURIComponent(id)}`),
  renameSession: (id, title) => request("PATCH", `/chat/sessions/${encodeURIComponent(id)}`, { json: { title } }),
  deleteSession: (id) => request("DELETE", `/chat/sessions/${encodeURIComponent(id)}`),
  listMessages: (id, limit, cursor) =>
    request("GET", `/chat/sessions/${encodeURIComponent(id)}/messages`, { query: { limit, cursor } }),
  /** The messages after `afterSeq`, oldest first (a page that holds a given seq). */
  listMessagesAfter: (id, afterSeq, limit) =>
    request("GET", `/chat/sessions/${encodeURIComponent(id)}/messages`, { query: { limit, after_seq: afterSeq } }),
  search: (q, limit, cursor) => request("GET", "/chat/search", { query: { q, limit, cursor } }),
  postMessage: (id, content, retryKey) =>
    request("POST", `/chat/sessions/${encodeURIComponent(id)}/messages`, {
      json: { content, role: "user" },
      headers: { "Idempotency-Key": retryKey },
    }),
  changePassword: (currentPassword, newPassword) =>
    request("POST", "/auths/password", { json: { current_password: currentPassword, new_password: newPassword } }),
  listApiKeys: (limit, cursor) => request("GET", "/auths/api-keys", { query: { limit, cursor } }),
  /** `fields`: name, scopes, expires_in_days, current_password. A retry of the same call (same
   * `retryKey`) gets the same key back. */
  createApiKey: (fields, retryKey) =>
    request("POST", "/auths/api-keys", { json: fields, headers: { "Idempotency-Key": retryKey } }),
  revokeApiKey: (id) => request("DELETE", `/auths/api-keys/${encodeURIComponent(id)}`),
  logoutEverywhere: () => request("POST", "/auths/logout-everywhere"),
  newRetryKey: idempotencyKey,
  // Replies the server generates (503 when no model is configured).
  repliesConfig: () => request("GET", "/replies/config"),
  models: () => request("GET", "/models"),
  /** The message and the reply the server now writes, streamed in the response (see
   * replystream.js): `reply.created` {message, reply}, `reply.delta`s, `reply.done`. A retry with
   * the same `retryKey` replays them and starts no second reply. */
  postWithReply: (id, content, reply, retryKey) =>
    request("POST", `/chat/sessions/${encodeURIComponent(id)}/messages`, {
      json: { content, role: "user", reply },
      query: { stream: true },
      headers: { "Idempotency-Key": retryKey },
      stream: true,
    }),
  /** A new reply to the chat as it stands, streamed like postWithReply's (`reply.created` is the reply). */
  askReply: (id, reply, retryKey) =>
    request("POST", `/chat/sessions/${encodeURIComponent(id)}/replies`, {
      json: reply,
      query: { stream: true },
      headers: { "Idempotency-Key": retryKey },
      stream: true,
    }),
  cancelReply: (id, messageId) =>
    request("POST", `/chat/sessions/${encodeURIComponent(id)}/messages/${encodeURIComponent(messageId)}/cancel`),
};

// ---- error text ---------------------------------------------------------------------------

/** FastAPI's 422 detail is a list of {loc, msg}; everything else is a string. */
function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const field = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : "";
        const message = String(item.msg || "is invalid").replace(/^Value error, /, "");
        return field && typeof field === "string" ? `${capitalize(field)}: ${message}` : message;
      })
      .join(" ");
  }
  return "";
}

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The field names a 422 complained about, e.g. ["password"]. */
export function invalidFields(error) {
  if (!(error instanceof ApiError) || !Array.isArray(error.detail)) return [];
  return error.detail.map((item) => (Array.isArray(item.loc) ? String(item.loc[item.loc.length - 1]) : ""));
}
