// The search box over the chat list: results replace the list while there is a query; each
// shows its chat, who wrote it and when, and a snippet with the matched words marked. The
// snippet is built from the server's offsets as text nodes and <mark> elements (never HTML).

import { api } from "./api.js";
import { el, timeElement } from "./text.js";

const PAGE_SIZE = 20;
const DEBOUNCE_MS = 250;
const MAX_FOLLOW_PAGES = 5; // pages may come back short (each reads a bounded stretch of history)
const ROLE_LABELS = { user: "You", assistant: "Assistant", system: "System", tool: "Tool" };

/** Text with [start, end) code-point ranges wrapped in <mark>, as DOM nodes. */
export function highlighted(text, ranges) {
  const points = Array.from(text);
  const fragment = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of ranges) {
    if (start < at || end <= start) continue;
    fragment.append(points.slice(at, start).join(""));
    fragment.append(el("mark", { text: points.slice(start, end).join("") }));
    at = end;
  }
  fragment.append(points.slice(at).join(""));
  return fragment;
}

function snippetNode(snippet) {
  const node = el("span", { className: "search-snippet" });
  if (snippet.truncated_start) node.append("…");
  node.append(highlighted(snippet.text, snippet.highlights));
  if (snippet.truncated_end) node.append("…");
  return node;
}

function hitItem(hit) {
  const session = hit.session;
  const href = hit.message ? `#/s/${session.id}/m/${hit.message.seq}` : `#/s/${session.id}`;
  const meta = hit.message
    ? el("span", { className: "session-meta" }, `${ROLE_LABELS[hit.message.role] || hit.message.role} · `, timeElement(hit.message.created_at, { short: true }))
    : el("span", { className: "session-meta", text: "Chat title" });
  const title = el("span", { className: "session-title", text: session.title });
  const body = hit.message ? snippetNode(hit.snippet) : null;
  return el("li", {}, el("a", { href, className: "session-link search-hit" }, title, meta, body));
}

export function createSearch({ onActive }) {
  const form = document.getElementById("search-form");
  const input = document.getElementById("search-input");
  const results = document.getElementById("search-results");
  const list = document.getElementById("search-list");
  const status = document.getElementById("search-status");
  const more = document.getElementById("search-more");
  let query = "";
  let cursor = null;
  let generation = 0;
  let timer = null;

  async function fetchPages(mine, pages) {
    let found = 0;
    for (let page = 0; page < pages && (found < PAGE_SIZE || page === 0); page += 1) {
      const answer = await api.search(query, PAGE_SIZE, cursor);
      if (mine !== generation) return;
      list.append(...answer.items.map(hitItem));
      found += answer.items.length;
      cursor = answer.next_cursor;
      if (cursor === null) break;
    }
  }

  async function run(reset) {
    generation += 1;
    const mine = generation;
    if (reset) {
      list.replaceChildren();
      cursor = null;
    }
    status.textContent = "Searching…";
    more.hidden = true;
    try {
      await fetchPages(mine, MAX_FOLLOW_PAGES);
      if (mine !== generation) return;
      const count = list.childElementCount;
      status.textContent = count ? "" : cursor === null ? "No matches." : "No matches yet.";
      more.hidden = cursor === null;
    } catch (error) {
      if (mine === generation) status.textContent = `Search failed: ${error.message}`;
    }
  }

  function update() {
    const next = input.value.trim();
    if (next === query) return;
    query = next;
    clearTimeout(timer);
    results.hidden = query === "";
    onActive(query !== "");
    if (query === "") {
      generation += 1;
      list.replaceChildren();
      status.textContent = "";
      more.hidden = true;
      return;
    }
    timer = setTimeout(() => run(true), DEBOUNCE_MS);
  }

  input.addEventListener("input", update);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    if (query) run(true);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      input.value = "";
      update();
    }
  });
  more.addEventListener("click", () => run(false));
  return {
    clear() {
      input.value = "";
      update();
    },
  };
}
