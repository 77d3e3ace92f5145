// The chat UI: sign-in, the chat list, the open chat (in the URL as #/s/<id>), dialogs.

import {
  ApiError,
  NetworkError,
  api,
  hasToken,
  invalidFields,
  login,
  logout,
  onServiceFailure,
  onTokenChangedElsewhere,
  onUnauthorized,
} from "./api.js";
import { createConversation } from "./conversation.js";
import { clearDrafts, saveDraft } from "./drafts.js";
import { createLiveEvents } from "./live.js";
import { createReplyPicker } from "./replies.js";
import { createSearch } from "./search.js";
import { createSidebar } from "./sidebar.js";

const USERNAME_PATTERN = /^[A-Za-z0-9._-]{3,32}$/;
const PASSWORD_MIN = 8;
const PASSWORD_MAX = 128;
const ROUTE_PATTERN = /^#\/s\/([0-9a-f]{24})(?:\/m\/([1-9][0-9]{0,15}))?$/;
const MOBILE = window.matchMedia("(max-width: 760px)");

const $ = (id) => document.getElementById(id);
const views = { boot: $("boot"), auth: $("auth-view"), app: $("app-view") };
const state = { user: null, lastUsername: "" };

const sidebar = createSidebar();
createSearch({
  onActive(searching) {
    $("session-scroller").hidden = searching;
  },
});
const replyPicker = createReplyPicker({ getUserId: () => state.user && state.user._id });
const conversation = createConversation({
  getUserId: () => state.user && state.user._id,
  getReplyTarget: () => replyPicker.target(),
  onSent: (session) => {
    sidebar.upsert(session, { toTop: true });
    conversation.update(session);
  },
});

// ---- live updates: other tabs, programs and servers ----------------------------------------

function editingTitle() {
  return !$("rename-form").hidden;
}

function applyEvent(name, data) {
  if (name === "message.created") {
    conversation.receive(data);
  } else if (name === "message.updated") {
    conversation.receiveUpdate(data);
  } else if (name === "session.created" || name === "session.updated") {
    sidebar.upsert(data, { toTop: true });
    conversation.update(data);
    if (current && current._id === data._id && !editingTitle()) showTitle(data);
  } else if (name === "session.deleted") {
    sidebar.remove(data._id);
    if (routeId() === data._id) showWelcome("Chat deleted", "This chat was deleted. Pick another one from the list.");
  }
}

const live = createLiveEvents({
  onEvent: applyEvent,
  onResync: () => {
    if (!state.user) return;
    sidebar.reset().catch(() => {});
    showRoute().catch(() => {});
  },
  onStatus: (connected) => {
    $("live-status").hidden = connected;
  },
});

// ---- notices ------------------------------------------------------------------------------

function showNotice(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
}

function hideNotice() {
  $("notice").hidden = true;
}

$("notice-dismiss").addEventListener("click", hideNotice);
window.addEventListener("offline", () => showNotice("You're offline. Changes will fail until the connection is back."));
window.addEventListener("online", hideNotice);
onServiceFailure((error) => {
  if (error instanceof NetworkError) showNotice(error.message);
  else showNotice(`The server had a problem (${error.status}). Please try again in a moment.`);
});

// ---- views --------------------------------------------------------------------------------

function showView(name) {
  for (const [key, view] of Object.entries(views)) view.hidden = key !== name;
}

function showAuth(which, message = "") {
  showView("auth");
  document.title = which === "login" ? "Sign in · Chat" : "Create an account · Chat";
  $("login-form").hidden = which !== "login";
  $("register-form").hidden = which !== "register";
  const form = $(`${which}-form`);
  $(`${which}-message`).textContent = message;
  $(`${which}-message`).classList.toggle("is-info", Boolean(message));
  if (which === "login" && state.lastUsername && !$("login-username").value) {
    $("login-username").value = state.lastUsername;
  }
  const first = [...form.querySelectorAll("input")].find((input) => !input.value) || form.querySelector("input");
  first.focus();
}

for (const button of document.querySelectorAll("[data-show]")) {
  button.addEventListener("click", () => showAuth(button.dataset.show));
}

function setBusy(form, busy, label) {
  const button = form.querySelector('button[type="submit"]');
  if (busy) {
    button.dataset.label = button.textContent;
    button.textContent = label;
  } else if (button.dataset.label) {
    button.textContent = button.dataset.label;
  }
  button.disabled = busy;
  form.setAttribute("aria-busy", String(busy));
}

function fieldError(input, message) {
  const error = $(`${input.id}-error`);
  if (error) error.textContent = message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

// ---- sign in, register, log out -----------------------------------------------------------

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const message = $("login-message");
  message.classList.remove("is-info");
  if (!username || !password) {
    message.textContent = "Enter your username and password.";
    (username ? $("login-password") : $("login-username")).focus();
    return;
  }
  message.textContent = "";
  setBusy(form, true, "Signing in…");
  try {
    await login(username, password);
    form.reset();
    await enterApp();
  } catch (error) {
    message.textContent = error.message;
    if (error instanceof ApiError && error.status === 401) {
      $("login-password").select();
      $("login-password").focus();
    }
  } finally {
    setBusy(form, false);
  }
});

function validateRegistration(username, password) {
  const errors = {};
  if (!USERNAME_PATTERN.test(username)) {
    errors.username =
      username.length < 3 || username.length > 32
        ? "Username must be 3 to 32 characters long."
        : "Use only letters, digits, dots, dashes and underscores.";
  }
  if (password.length < PASSWORD_MIN) errors.password = `Password is too short: use at least ${PASSWORD_MIN} characters.`;
  else if (password.length > PASSWORD_MAX) errors.password = `Password is too long: use at most ${PASSWORD_MAX} characters.`;
  return errors;
}

$("register-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const usernameInput = $("register-username");
  const passwordInput = $("register-password");
  const username = usernameInput.value.trim();
  const password = passwordInput.value;
  $("register-message").textContent = "";
  const errors = validateRegistration(username, password);
  fieldError(usernameInput, errors.username || "");
  fieldError(passwordInput, errors.password || "");
  if (errors.username || errors.password) {
    (errors.username ? usernameInput : passwordInput).focus();
    return;
  }
  setBusy(form, true, "Creating account…");
  try {
    await api.register(username, password);
    await login(username, password);
    form.reset();
    await enterApp();
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      fieldError(usernameInput, error.message);
      usernameInput.focus();
    } else if (error instanceof ApiError && error.status === 422) {
      const fields = invalidFields(error);
      if (fields.includes("username")) fieldError(usernameInput, "That username isn't allowed.");
      if (fields.includes("password")) fieldError(passwordInput, "That password isn't allowed.");
      $("register-message").textContent = error.message;
    } else {
      $("register-message").textContent = error.message;
    }
  } finally {
    setBusy(form, false);
  }
});

$("logout").addEventListener("click", () => {
  if (state.user) clearDrafts(state.user._id);
  logout();
  leaveApp();
  history.replaceState(null, "", window.location.pathname);
  showAuth("login", "You have logged out.");
});

function leaveApp() {
  state.user = null;
  live.stop();
  conversation.close();
  closeSidebar({ restoreFocus: false });
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

onUnauthorized(() => {
  if (!views.auth.hidden) return;
  leaveApp();
  showAuth("login", "Your session has expired. Sign in again to continue; your draft is kept.");
});

onTokenChangedElsewhere((loggedIn) => {
  if (loggedIn && views.app.hidden) enterApp();
  else if (!loggedIn && !views.app.hidden) {
    leaveApp();
    showAuth("login", "You have logged out in another tab.");
  }
});

async function enterApp() {
  const user = await api.me();
  state.user = user;
  state.lastUsername = user.username;
  $("whoami").textContent = user.username;
  $("avatar").textContent = user.username.charAt(0).toUpperCase();
  hideNotice();
  showView("app");
  live.start();
  await Promise.all([sidebar.reset().catch(() => {}), replyPicker.load().catch(() => {}), showRoute()]);
}

// ---- routing: #/s/<id> is the open chat ---------------------------------------------------

function routeId() {
  const match = window.location.hash.match(ROUTE_PATTERN);
  return match ? match[1] : null;
}

/** The message a route points at (#/s/<id>/m/<seq>, from a search hit), or null. */
function routeSeq() {
  const match = window.location.hash.match(ROUTE_PATTERN);
  return match && match[2] ? Number(match[2]) : null;
}

function showWelcome(title, text) {
  conversation.close();
  replyPicker.close();
  $("chat-title").textContent = "";
  $("rename-button").hidden = true;
  $("delete-button").hidden = true;
  $("welcome-title").textContent = title;
  $("welcome-text").textContent = text;
  $("welcome").hidden = false;
  document.title = "Chat";
}

let current = null;

function showTitle(session) {
  current = session;
  $("chat-title").textContent = session.title;
  document.title = `${session.title} · Chat`;
  $("rename-button").hidden = false;
  $("delete-button").hidden = false;
}

async function showRoute({ focus = false } = {}) {
  if (!state.user) return;
  const id = routeId();
  sidebar.setActive(id);
  cancelRename();
  closeSidebar({ restoreFocus: false });
  current = null;
  if (!id) {
    showWelcome("Welcome", "Pick a chat from the list, or start a new one.");
    return;
  }
  let session = sidebar.get(id);
  if (!session) {
    $("welcome").hidden = true;
    $("chat-title").textContent = "Loading…";
    try {
      session = await api.getSession(id);
    } catch (error) {
      if (routeId() !== id) return;
      if (error instanceof ApiError && error.status === 404) {
        showWelcome("Chat not found", "This chat doesn't exist or was deleted. Pick another one from the list.");
      } else if (!(error instanceof ApiError && error.status === 401)) {
        showWelcome("Couldn't open this chat", error.message);
      }
      return;
    }
    if (routeId() !== id) return;
  }
  $("welcome").hidden = true;
  showTitle(session);
  replyPicker.open(session._id);
  await conversation.open(session, { focus: focus && !MOBILE.matches, seq: routeSeq() }).catch((error) => {
    if (error instanceof ApiError && error.status === 404) {
      showWelcome("Chat not found", "This chat doesn't exist or was deleted.");
      sidebar.remove(id);
    }
  });
}

window.addEventListener("hashchange", () => showRoute({ focus: true }));

// ---- the sidebar on narrow screens --------------------------------------------------------

function openSidebar() {
  views.app.classList.add("sidebar-open");
  $("menu-button").setAttribute("aria-expanded", "true");
  $("scrim").hidden = false;
  if (!sidebar.focusActive()) $("new-chat").focus();
}

function closeSidebar({ restoreFocus = true } = {}) {
  if (!views.app.classList.contains("sidebar-open")) return;
  views.app.classList.remove("sidebar-open");
  $("menu-button").setAttribute("aria-expanded", "false");
  $("scrim").hidden = true;
  if (restoreFocus) $("menu-button").focus();
}

$("menu-button").addEventListener("click", openSidebar);
$("session-list").addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (link && link.hash === window.location.hash) closeSidebar({ restoreFocus: false });
});
$("welcome-list").addEventListener("click", openSidebar);
$("scrim").addEventListener("click", () => closeSidebar());
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && views.app.classList.contains("sidebar-open") && !document.querySelector("dialog[open]")) {
    closeSidebar();
  }
});
MOBILE.addEventListener("change", () => closeSidebar({ restoreFocus: false }));

// ---- dialogs: new chat, delete ------------------------------------------------------------

let dialogReturnFocus = null;

function openDialog(dialog, focusTarget) {
  dialogReturnFocus = document.activeElement;
  dialog.showModal();
  focusTarget.focus();
}

for (const dialog of document.querySelectorAll("dialog")) {
  dialog.addEventListener("close", () => {
    const target = dialogReturnFocus;
    dialogReturnFocus = null;
    if (target && target.isConnected && !views.app.hidden) target.focus();
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  for (const button of dialog.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => dialog.close());
  }
}

function openNewChat() {
  const form = $("new-chat-form");
  form.reset();
  fieldError($("new-chat-title"), "");
  openDialog($("new-chat-dialog"), $("new-chat-title"));
}

$("new-chat").addEventListener("click", openNewChat);
$("welcome-new").addEventListener("click", openNewChat);

$("new-chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("new-chat-title");
  const title = input.value.trim();
  if (!title) {
    fieldError(input, "Give the chat a title.");
    input.focus();
    return;
  }
  setBusy(form, true, "Creating…");
  try {
    const session = await api.createSession(title);
    sidebar.upsert(session, { toTop: true });
    dialogReturnFocus = null;
    $("new-chat-dialog").close();
    window.location.hash = `#/s/${session._id}`;
  } catch (error) {
    fieldError(input, error.message);
  } finally {
    setBusy(form, false);
  }
});

$("delete-button").addEventListener("click", () => {
  if (!current) return;
  const count = current.message_count;
  $("delete-text").textContent =
    `“${current.title}” and its ${count} ${count === 1 ? "message" : "messages"} will be deleted. This can't be undone.`;
  $("delete-error").textContent = "";
  openDialog($("delete-dialog"), $("delete-dialog").querySelector("[data-close]"));
});

$("delete-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!current) return;
  const form = event.currentTarget;
  const session = current;
  setBusy(form, true, "Deleting…");
  try {
    await api.deleteSession(session._id);
    sidebar.remove(session._id);
    saveDraft(state.user._id, session._id, "");
    dialogReturnFocus = $("new-chat");
    $("delete-dialog").close();
    window.location.replace("#/");
  } catch (error) {
    $("delete-error").textContent = error.message;
  } finally {
    setBusy(form, false);
  }
});

// ---- rename inline ------------------------------------------------------------------------

function startRename() {
  if (!current) return;
  $("title-view").hidden = true;
  $("rename-form").hidden = false;
  fieldError($("rename-input"), "");
  $("rename-input").value = current.title;
  $("rename-input").select();
  $("rename-input").focus();
}

function cancelRename({ restoreFocus = false } = {}) {
  if ($("rename-form").hidden) return;
  $("rename-form").hidden = true;
  $("title-view").hidden = false;
  if (restoreFocus) $("rename-button").focus();
}

$("rename-button").addEventListener("click", startRename);
$("rename-cancel").addEventListener("click", () => cancelRename({ restoreFocus: true }));
$("rename-input").addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    cancelRename({ restoreFocus: true });
  }
});

$("rename-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const input = $("rename-input");
  const title = input.value.trim();
  if (!current) return;
  if (!title) {
    fieldError(input, "The title can't be empty.");
    return;
  }
  if (title === current.title) {
    cancelRename({ restoreFocus: true });
    return;
  }
  setBusy(form, true, "Saving…");
  try {
    const session = await api.renameSession(current._id, title);
    sidebar.upsert(session, { toTop: true });
    sidebar.setActive(session._id);
    conversation.update(session);
    showTitle(session);
    cancelRename({ restoreFocus: true });
  } catch (error) {
    fieldError(input, error.message);
  } finally {
    setBusy(form, false);
  }
});

// ---- start --------------------------------------------------------------------------------

if (hasToken()) {
  enterApp().catch((error) => {
    if (error instanceof ApiError && error.status === 401) return;
    showView("auth");
    showAuth("login", error instanceof NetworkError ? error.message : "");
  });
} else {
  showAuth("login");
}
