// Unsent text per chat, in localStorage until it is sent. A draft survives reloads and an
// expired login; an explicit log-out clears the drafts of that user (shared computers).

const PREFIX = "chat-ui.draft.";

function key(userId, sessionId) {
  return `${PREFIX}${userId}.${sessionId}`;
}

export function loadDraft(userId, sessionId) {
  return localStorage.getItem(key(userId, sessionId)) || "";
}

export function saveDraft(userId, sessionId, text) {
  if (text) localStorage.setItem(key(userId, sessionId), text);
  else localStorage.removeItem(key(userId, sessionId));
}

export function clearDrafts(userId) {
  const prefix = `${PREFIX}${userId}.`;
  for (const name of Object.keys(localStorage)) {
    if (name.startsWith(prefix)) localStorage.removeItem(name);
  }
}
