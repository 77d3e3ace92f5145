// Live updates: GET /chat/events, read with fetch and a small Server-Sent Events parser
// (EventSource cannot send the Authorization header, and a token never goes in a URL).
//
// Reconnects with backoff (the server's `retry:` first, doubling up to 30 s, with jitter) and
// sends Last-Event-ID so the server replays what was missed. A `reset` event means that is no
// longer possible: reconnect without an id, then resync over REST (onResync). While
// disconnected, onStatus(false); once subscribed again, onStatus(true).

import { openStream } from "./api.js";

const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;

/** Split a byte stream into SSE events: {event, id, data, retry}; comments are skipped. */
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let current = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (current.event || current.data.length || current.retry !== undefined) {
          onEvent({ ...current, data: current.data.join("\n") });
        }
        current = { data: [] };
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (name === "event") current.event = value;
      else if (name === "data") current.data.push(value);
      else if (name === "id") current.id = value;
      else if (name === "retry" && /^\d+$/.test(value)) current.retry = Number(value);
    }
  }
}

export function createLiveEvents({ onEvent, onResync, onStatus }) {
  let controller = null;
  let timer = 0;
  let lastEventId = null;
  let retryMs = FIRST_RETRY_MS;
  let failures = 0;
  let subscribedOnce = false;
  let resyncNeeded = false;

  function scheduleReconnect() {
    onStatus(false);
    const delay = Math.min(retryMs * 2 ** failures, MAX_RETRY_MS);
    failures += 1;
    timer = setTimeout(connect, delay / 2 + Math.random() * (delay / 2));
  }

  function handle(event) {
    if (event.retry !== undefined) {
      retryMs = event.retry;
      failures = 0;
      onStatus(true);
      if (subscribedOnce && (resyncNeeded || lastEventId === null)) onResync();
      subscribedOnce = true;
      resyncNeeded = false;
    }
    if (event.event === "reset") {
      lastEventId = null;
      resyncNeeded = true;
      return;
    }
    if (event.id) lastEventId = event.id;
    if (event.event && event.data) onEvent(event.event, JSON.parse(event.data));
  }

  async function connect() {
    const mine = new AbortController();
    controller = mine;
    try {
      const headers = lastEventId ? { "Last-Event-ID": lastEventId } : {};
      const response = await openStream("/chat/events", headers, mine.signal);
      if (response.status === 401) {
        onStatus(false);
        return; // logged out: the app shows the sign-in form and stops the stream
      }
      if (!response.ok || !response.body) throw new Error(`event stream: ${response.status}`);
      await readEvents(response.body, handle);
    } catch {
      // a network failure or an aborted read: reconnect below unless stopped
    }
    if (controller === mine && !mine.signal.aborted) scheduleReconnect();
  }

  return {
    start() {
      this.stop();
      lastEventId = null;
      subscribedOnce = false;
      failures = 0;
      connect();
    },
    stop() {
      clearTimeout(timer);
      if (controller) controller.abort();
      controller = null;
      onStatus(true);
    },
  };
}
