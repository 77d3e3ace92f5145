// One open chat: its messages (older pages load when scrolled to the top, keeping the reading
// position) and the composer (Enter sends, Shift+Enter is a new line, drafts kept per chat; on
// touch screens Enter is a new line and the Send button sends).

import { ApiError, api } from "./api.js";
import { loadDraft, saveDraft } from "./drafts.js";
import { renderMarkdown } from "./markdown.js";
import { targetOfReply } from "./replies.js";
import { readReplyStream } from "./replystream.js";
import { el, linkify, timeElement } from "./text.js";
import { metadataDetails, toolCalls, toolResult } from "./toolcalls.js";

const PAGE_SIZE = 40;
const LOAD_MARGIN_PX = 120;
const ROLE_LABELS = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };

const SUMMARY_CHARS = 60;
const TOUCH = window.matchMedia("(hover: none) and (pointer: coarse)");

/** "Tool · get_weather: {"temp": 21}": what a collapsed tool or system message shows. */
function compactLabel(role, content, metadata) {
  const name = typeof metadata.name === "string" ? ` · ${metadata.name}` : "";
  const firstLine = content.split("\n", 1)[0];
  const preview = firstLine.length > SUMMARY_CHARS ? `${firstLine.slice(0, SUMMARY_CHARS)}…` : firstLine;
  return `${ROLE_LABELS[role]}${name}${preview ? `: ${preview}` : ""}`;
}

/** A reply the server writes: "Writing…" with Stop, a failure's reason with Retry, "Stopped". */
function replyStatusLine(message, metadata) {
  if (message.status === "streaming") {
    return el(
      "p",
      { className: "reply-status", role: "status" },
      el("span", { className: "reply-writing", text: "Writing…" }),
      el("button", { type: "button", className: "button button-quiet", dataset: { action: "stop" }, text: "Stop" }),
    );
  }
  if (message.status === "failed") {
    const error = metadata.error && typeof metadata.error === "object" ? metadata.error : {};
    const reason = typeof error.message === "string" ? error.message : String(error.reason || "unknown error");
    const status = typeof error.status === "number" ? ` (${error.status})` : "";
    return el(
      "p",
      { className: "reply-status reply-failed" },
      el("span", { text: `The reply failed: ${reason}${status}` }),
      el("button", { type: "button", className: "button button-quiet", dataset: { action: "retry" }, text: "Retry" }),
    );
  }
  if (message.status === "cancelled") return el("p", { className: "reply-status", text: "Stopped" });
  return null;
}

export function createConversation({ getUserId, onSent, getReplyTarget }) {
  const section = document.getElementById("conversation");
  const scroller = document.getElementById("message-scroller");
  const list = document.getElementById("message-list");
  const empty = document.getElementById("chat-empty");
  const olderStatus = document.getElementById("older-status");
  const form = document.getElementById("composer");
  const input = document.getElementById("composer-input");
  const sendButton = document.getElementById("send-button");
  const sendLabel = document.getElementById("send-label");
  const sendError = document.getElementById("send-error");
  const sendErrorText = document.getElementById("send-error-text");
  const retryButton = document.getElementById("send-retry");

  let session = null;
  let cursor = null;
  // Opened at a message (a search hit): pages are read by seq, both ways, without cursors.
  let firstSeq = null; // the oldest seq shown, when older pages are read by seq
  let newerAfter = null; // the newest seq shown while newer messages are still unread
  let loadingNewer = false;
  let loadingOlder = false;
  let sending = false;
  let generation = 0;
  let sentHere = [];
  let shown = new Set();
  const replies = new Map(); // the latest state of the replies shown, by id
  const textToRender = new Map(); // a streaming reply's newest text, drawn at the next frame
  let frame = 0;
  let unsent = null; // {fingerprint, key}: a send whose outcome is unknown (a network failure)
  let inFlight = null; // {sessionId, content}: the send waiting for its answer
  const retryKeys = new Map(); // the same, for Retry, by the failed reply's id

  /** The message being sent, as the live stream shows it stored. */
  function isInFlight(message) {
    if (!inFlight || message.role !== "user") return false;
    return message.session_id === inFlight.sessionId && message.content === inFlight.content;
  }

  /** Append a message once: the UI's own posts also come back on the live stream. */
  function appendMessage(message) {
    if (shown.has(message._id)) return false;
    shown.add(message._id);
    message = newest(message);
    if (message.status) replies.set(message._id, message);
    list.append(messageItem(message));
    return true;
  }

  function messageItem(message) {
    const role = ROLE_LABELS[message.role] ? message.role : "assistant";
    const metadata = message.metadata && typeof message.metadata === "object" ? message.metadata : {};
    let text;
    if (role === "tool") {
      text = toolResult(message.content);
    } else {
      text = el("div", { className: role === "assistant" ? "message-text markdown" : "message-text" });
      // Only assistant text is Markdown (sanitized); what people, tools and systems wrote stays text.
      text.append(role === "assistant" ? renderMarkdown(message.content) : linkify(message.content));
    }
    const calls = toolCalls(metadata);
    const status = role === "assistant" ? replyStatusLine(message, metadata) : null;
    const parts = [text.childNodes.length || !calls ? text : null, calls, status, metadataDetails(metadata, role)];
    let body;
    if (role === "tool" || role === "system") {
      body = el(
        "details",
        { className: "bubble bubble-compact" },
        el("summary", { className: "message-role", text: compactLabel(role, message.content, metadata) }),
        ...parts,
      );
    } else {
      body = el(
        "div",
        { className: "bubble" },
        el("p", { className: role === "user" ? "message-role visually-hidden" : "message-role", text: ROLE_LABELS[role] }),
        ...parts,
      );
    }
    return el(
      "li",
      {
        className: `message message-${role}${message.status === "streaming" ? " is-streaming" : ""}`,
        dataset: { id: message._id, seq: message.seq, status: message.status || "" },
      },
      body,
      el("p", { className: "message-meta" }, timeElement(message.created_at)),
    );
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function hasOlder() {
    return cursor !== null || (firstSeq !== null && firstSeq > 1);
  }

  function updateEmpty() {
    empty.hidden = list.childElementCount > 0 || hasOlder();
  }

  /** The page before the oldest shown: a cursor's, or the seq range just before it. */
  async function olderPage(id) {
    if (cursor !== null) return api.listMessages(id, PAGE_SIZE, cursor);
    const after = Math.max(0, firstSeq - 1 - PAGE_SIZE);
    const page = await api.listMessagesAfter(id, after, firstSeq - 1 - after);
    return { items: page.items, next_cursor: null };
  }

  async function loadNewer() {
    if (!session || loadingNewer || newerAfter === null) return;
    loadingNewer = true;
    const mine = generation;
    try {
      const page = await api.listMessagesAfter(session._id, newerAfter, PAGE_SIZE);
      if (mine !== generation) return;
      for (const message of page.items) appendMessage(message);
      const last = page.items[page.items.length - 1];
      newerAfter = page.next_cursor !== null && last ? last.seq : null;
    } finally {
      if (mine === generation) loadingNewer = false;
    }
  }

  function updateSendState() {
    sendButton.disabled = sending || input.value.trim() === "";
    sendLabel.textContent = sending ? "Sending…" : "Send";
    form.classList.toggle("is-sending", sending);
  }

  async function loadOlder() {
    if (!session || loadingOlder || !hasOlder()) return;
    loadingOlder = true;
    const mine = generation;
    olderStatus.textContent = "Loading earlier messages…";
    try {
      const page = await olderPage(session._id);
      if (mine !== generation) return;
      if (firstSeq !== null && page.items.length) firstSeq = page.items[0].seq;
      const previousHeight = scroller.scrollHeight;
      const previousTop = scroller.scrollTop;
      const older = page.items.filter((message) => !shown.has(message._id));
      for (const message of older) shown.add(message._id);
      list.prepend(...older.map(messageItem));
      scroller.scrollTop = previousTop + (scroller.scrollHeight - previousHeight);
      cursor = page.next_cursor;
      olderStatus.textContent = !hasOlder() && list.childElementCount ? "This is the beginning of the chat." : "";
    } catch (error) {
      if (mine === generation) olderStatus.textContent = "Couldn't load earlier messages.";
      throw error;
    } finally {
      if (mine === generation) loadingOlder = false;
    }
    updateEmpty();
    if (hasOlder() && scroller.scrollHeight <= scroller.clientHeight) await loadOlder();
  }

  async function send() {
    const content = input.value;
    if (!session || sending || content.trim() === "") return;
    const target = session;
    sending = true;
    sendError.hidden = true;
    input.readOnly = true;
    updateSendState();
    const replyTarget = getReplyTarget();
    const fingerprint = JSON.stringify([target._id, content, replyTarget]);
    // Sent again as it was (the Retry after a network failure): the same Idempotency-Key, so a
    // send that did reach the server is answered as the first time, never stored twice.
    if (!unsent || unsent.fingerprint !== fingerprint) unsent = { fingerprint, key: api.newRetryKey() };
    const sendKey = unsent.key;
    inFlight = { sessionId: target._id, content };
    try {
      const answer = replyTarget
        ? await streamReply(api.postWithReply(target._id, content, replyTarget, sendKey), (body) => body.reply)
        : null;
      const message = answer ? answer.message : await api.postMessage(target._id, content, sendKey);
      unsent = null;
      saveDraft(getUserId(), target._id, "");
      if (session && session._id === target._id && newerAfter !== null) {
        input.value = "";
        window.location.hash = `#/s/${target._id}`; // reopen at the newest, which now ends with it
      } else if (session && session._id === target._id) {
        input.value = "";
        for (const stored of answer ? [answer.message, answer.reply] : [message]) {
          sentHere.push(stored);
          appendMessage(stored);
        }
        updateEmpty();
        scrollToBottom();
      }
      onSent({
        ...target,
        message_count: target.message_count + (answer ? 2 : 1),
        last_message_at: message.created_at,
        updated_at: message.created_at,
      });
    } catch (error) {
      if (error instanceof ApiError) unsent = null; // refused: a new request next time
      if (!(error instanceof ApiError && error.status === 401) && session && session._id === target._id) {
        sendErrorText.textContent = `Not sent: ${error.message}`;
        sendError.hidden = false;
      }
    } finally {
      inFlight = null;
      sending = false;
      input.readOnly = false;
      updateSendState();
      if (session && session._id === target._id && sendError.hidden) input.focus();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", (event) => {
    // On a touch screen Enter is a new line, as on-screen keyboards have no Shift+Enter: the Send button sends.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !TOUCH.matches) {
      event.preventDefault();
      send();
    }
  });
  input.addEventListener("input", () => {
    if (session) saveDraft(getUserId(), session._id, input.value);
    updateSendState();
  });
  retryButton.addEventListener("click", () => {
    sendError.hidden = true;
    send();
  });
  list.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    const item = button && button.closest("li.message");
    if (!button || !item || !session) return;
    const id = session._id;
    button.disabled = true;
    try {
      if (button.dataset.action === "stop") {
        replaceMessage(await api.cancelReply(id, item.dataset.id));
      } else if (button.dataset.action === "retry") {
        const failed = replies.get(item.dataset.id);
        const key = retryKeys.get(item.dataset.id) || api.newRetryKey();
        retryKeys.set(item.dataset.id, key);
        const response = api.askReply(id, targetOfReply((failed && failed.metadata) || {}), key);
        const reply = await streamReply(response, (body) => body);
        retryKeys.delete(item.dataset.id);
        if (session && session._id === id && appendMessage(reply)) scrollToBottom();
      }
    } catch (error) {
      if (error instanceof ApiError) retryKeys.delete(item.dataset.id);
      button.disabled = false;
      if (!(error instanceof ApiError)) throw error;
      sendErrorText.textContent = error.message;
      sendError.hidden = false;
    }
  });

  /** The newest state known of a reply (it may have grown or ended before it was shown). */
  function newest(message) {
    const known = message.status ? replies.get(message._id) : undefined;
    if (!known || message.status !== "streaming") return message;
    return known.status !== "streaming" || known.content.length > message.content.length ? known : message;
  }

  /** The reply streamed in `pending` (a Response promise): resolves with what it created once
   * it starts; its text is then drawn as it grows, and its final state once done. */
  async function streamReply(pending, replyOf) {
    return readReplyStream(await pending, replyOf, {
      onCreated: (reply) => {
        if (!replies.has(reply._id)) replies.set(reply._id, reply);
      },
      onText: growReply,
      onDone: (message) => {
        if (!replaceMessage(message)) replies.set(message._id, message); // shown later as it ended
      },
    });
  }

  /** A streaming reply's text, drawn at the next frame if longer than what is shown: its text
   * only grows, so the longest is the newest, whether it came from the response's stream or
   * from the session's (which takes over when the first one drops). */
  function growReply(id, content) {
    const current = replies.get(id);
    const drawing = textToRender.get(id);
    if (!current || current.status !== "streaming") return;
    if (content.length <= (drawing !== undefined ? drawing.length : current.content.length)) return;
    textToRender.set(id, content);
    if (!frame) frame = requestAnimationFrame(drawGrownReplies);
  }

  /** At most once a frame: each grown reply's Markdown swapped in at once (no flicker), its
   * Stop button left in place (a click on it is never lost to a redraw). */
  function drawGrownReplies() {
    frame = 0;
    for (const [id, content] of textToRender) {
      const current = replies.get(id);
      if (!current || current.status !== "streaming") continue;
      replies.set(id, { ...current, content }); // shown with it when not shown yet
      const text = list.querySelector(`li[data-id="${id}"] .message-text`);
      if (!text) continue;
      const follow = atBottom();
      text.replaceChildren(renderMarkdown(content));
      if (follow) scrollToBottom();
    }
    textToRender.clear();
  }

  /** Redraw a message shown already (a reply's final state): one synchronous swap, no flicker. */
  function replaceMessage(message) {
    const current = list.querySelector(`li[data-id="${message._id}"]`);
    if (!current) return false;
    const previous = replies.get(message._id);
    if (previous && previous.status !== "streaming" && message.status === "streaming") return true; // stale
    if (previous && message.status === "streaming" && current.querySelector(".message-text")) {
      growReply(message._id, message.content);
      return true;
    }
    textToRender.delete(message._id);
    replies.set(message._id, message);
    const follow = atBottom();
    current.replaceWith(messageItem(message));
    if (follow) scrollToBottom();
    return true;
  }

  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_MARGIN_PX) loadOlder().catch(() => {});
    if (scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < LOAD_MARGIN_PX) loadNewer().catch(() => {});
  });

  /** Show the chat around `seq`: the page holding it, the message scrolled to and marked. */
  async function openAround(id, seq) {
    const after = Math.max(0, seq - Math.floor(PAGE_SIZE / 2));
    const page = await api.listMessagesAfter(id, after, PAGE_SIZE);
    const last = page.items[page.items.length - 1];
    cursor = null;
    firstSeq = page.items.length ? page.items[0].seq : 1;
    newerAfter = page.next_cursor !== null && last ? last.seq : null;
    return page.items;
  }

  function reveal(seq) {
    const target = list.querySelector(`[data-seq="${seq}"]`);
    if (!target) return;
    target.classList.add("message-found");
    // Scroll the message list only: scrollIntoView would scroll the page too, taking the header
    // off the screen and leaving a blank band below.
    const offset = target.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    scroller.scrollTop += offset - Math.max(0, (scroller.clientHeight - target.offsetHeight) / 2);
  }

  return {
    async open(next, { focus = false, seq = null } = {}) {
      generation += 1;
      const mine = generation;
      session = next;
      sentHere = [];
      shown = new Set();
      cursor = null;
      firstSeq = null;
      newerAfter = null;
      loadingOlder = false;
      loadingNewer = false;
      list.replaceChildren();
      empty.hidden = true;
      sendError.hidden = true;
      section.hidden = false;
      input.value = loadDraft(getUserId(), next._id);
      updateSendState();
      olderStatus.textContent = "Loading messages…";
      section.setAttribute("aria-busy", "true");
      try {
        if (seq !== null) {
          const items = await openAround(next._id, seq);
          if (mine !== generation) return;
          for (const message of items) appendMessage(message);
          olderStatus.textContent = !hasOlder() && items.length ? "This is the beginning of the chat." : "";
          updateEmpty();
          reveal(seq);
          return;
        }
        const page = await api.listMessages(next._id, PAGE_SIZE);
        if (mine !== generation) return;
        // Messages sent while this page was loading may or may not be in it.
        const loaded = new Set(page.items.map((message) => message._id));
        const items = [...page.items, ...sentHere.filter((message) => !loaded.has(message._id))];
        shown = new Set();
        list.replaceChildren();
        for (const message of items.sort((a, b) => a.seq - b.seq)) appendMessage(message);
        cursor = page.next_cursor;
        olderStatus.textContent = cursor === null && page.items.length ? "This is the beginning of the chat." : "";
        updateEmpty();
        scrollToBottom();
        if (cursor !== null && scroller.scrollHeight <= scroller.clientHeight) await loadOlder();
      } catch (error) {
        if (mine === generation) olderStatus.textContent = "Couldn't load messages.";
        if (!(error instanceof ApiError)) return;
        throw error;
      } finally {
        if (mine === generation) section.removeAttribute("aria-busy");
      }
      if (focus && mine === generation) input.focus();
    },
    update(next) {
      if (session && session._id === next._id) session = next;
    },
    /** A message from the live stream: shown when it belongs to the open chat. */
    receive(message) {
      if (isInFlight(message)) {
        // Stored: the live stream can show it before the post's answer comes, and a reload in
        // between must not offer it again as a draft (sent again, it would be stored twice).
        saveDraft(getUserId(), inFlight.sessionId, "");
      }
      if (!session || session._id !== message.session_id) return;
      if (newerAfter !== null) return; // not showing the newest yet: it comes when scrolled to
      const follow = atBottom();
      sentHere.push(message); // kept if the first page is still loading
      if (section.getAttribute("aria-busy") === "true") return;
      if (appendMessage(message)) {
        updateEmpty();
        if (follow) scrollToBottom();
      }
    },
    /** A message rewritten (a reply the server writes): redrawn when shown. */
    receiveUpdate(message) {
      if (!session || session._id !== message.session_id) return;
      if (!replaceMessage(message)) this.receive(message);
    },
    openId: () => (session ? session._id : null),
    close() {
      generation += 1;
      session = null;
      section.hidden = true;
      list.replaceChildren();
    },
    atBottom,
  };
}
