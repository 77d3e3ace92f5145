// The list of chats: most recently active first, the next page loaded when scrolled near the end.

import { api } from "./api.js";
import { el, timeElement } from "./text.js";

const PAGE_SIZE = 30;
const LOAD_MARGIN_PX = 200;

function activity(session) {
  return session.updated_at || session.last_message_at || session.created_at;
}

/** `onChange()` after the list is drawn again. */
export function createSidebar({ onChange = () => {} } = {}) {
  const scroller = document.getElementById("session-scroller");
  const list = document.getElementById("session-list");
  const empty = document.getElementById("sessions-empty");
  const status = document.getElementById("sessions-status");
  const filter = document.getElementById("platform-filter");

  let sessions = new Map();
  let cursor = null;
  let exhausted = false;
  let loading = false;
  let activeId = null;
  let generation = 0;
  let platform = null;

  function item(session) {
    const count = session.message_count;
    const meta = el(
      "span",
      { className: "session-meta" },
      el("span", { className: "platform-badge", title: `Platform: ${session.platform}`, text: session.platform }),
      timeElement(activity(session), { short: true }),
      ` · ${count} ${count === 1 ? "message" : "messages"}`,
    );
    const link = el(
      "a",
      { href: `#/s/${session._id}`, className: "session-link", "aria-current": session._id === activeId && "page" },
      el("span", { className: "session-title", text: session.title }),
      meta,
    );
    return el("li", { dataset: { id: session._id } }, link);
  }

  /** Every platform seen becomes a filter choice. */
  function offerPlatform(name) {
    if (!name || [...filter.options].some((option) => option.value === name)) return;
    filter.append(el("option", { value: name, text: name }));
  }

  function render() {
    for (const session of sessions.values()) offerPlatform(session.platform);
    list.replaceChildren(...[...sessions.values()].map(item));
    empty.hidden = !(exhausted && sessions.size === 0);
    onChange();
  }

  function nearEnd() {
    return scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - LOAD_MARGIN_PX;
  }

  async function loadMore() {
    if (loading || exhausted) return;
    loading = true;
    const mine = generation;
    status.textContent = sessions.size ? "Loading more chats…" : "Loading chats…";
    try {
      const page = await api.listSessions(PAGE_SIZE, cursor, platform);
      if (mine !== generation) return;
      for (const session of page.items) {
        if (!sessions.has(session._id)) sessions.set(session._id, session);
      }
      cursor = page.next_cursor;
      exhausted = cursor === null;
      status.textContent = "";
      render();
    } catch (error) {
      if (mine === generation) status.textContent = "Couldn't load chats.";
      throw error;
    } finally {
      if (mine === generation) loading = false;
    }
    if (!exhausted && nearEnd()) await loadMore();
  }

  scroller.addEventListener("scroll", () => {
    if (nearEnd()) loadMore().catch(() => {});
  });

  const sidebar = {
    async reset() {
      generation += 1;
      sessions = new Map();
      cursor = null;
      exhausted = false;
      loading = false;
      list.replaceChildren();
      empty.hidden = true;
      await loadMore();
    },
    get: (id) => sessions.get(id),
    /** True once every page is read and there is no chat at all (no platform filter set). */
    isEmpty: () => exhausted && sessions.size === 0 && !platform,
    /** Add or replace a session; `toTop` when it just became the most recently active. */
    upsert(session, { toTop = false } = {}) {
      if (platform && session.platform !== platform) {
        offerPlatform(session.platform);
        return;
      }
      if (toTop) {
        sessions.delete(session._id);
        sessions = new Map([[session._id, session], ...sessions]);
      } else {
        sessions.set(session._id, session);
      }
      render();
    },
    remove(id) {
      sessions.delete(id);
      render();
    },
    setActive(id) {
      activeId = id;
      for (const link of list.querySelectorAll(".session-link")) {
        if (link.closest("li").dataset.id === id) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    },
    focusActive() {
      const target = list.querySelector('[aria-current="page"]') || list.querySelector(".session-link");
      if (target) target.focus();
      return Boolean(target);
    },
  };

  filter.addEventListener("change", () => {
    platform = filter.value || null;
    sidebar.reset().catch(() => {});
  });
  return sidebar;
}
