// The model/agent picker in the chat header: what replies to your messages in this chat
// (remembered per chat in this browser). Hidden when the server has no model configured.

import { api } from "./api.js";
import { el } from "./text.js";

const NONE = "";
const storageKey = (userId, sessionId) => `chat.reply.${userId}.${sessionId}`;

/** {agent: name} or {model: name} from a picker value "agent:name" / "model:name". */
export function targetOf(value) {
  if (!value) return null;
  const [kind, ...rest] = value.split(":");
  const name = rest.join(":");
  return kind === "agent" ? { agent: name } : { model: name };
}

/** The picker value for a reply's metadata (what Retry asks again). */
export function targetOfReply(metadata) {
  if (typeof metadata.agent === "string") return { agent: metadata.agent };
  if (typeof metadata.model === "string") return { model: metadata.model };
  return {};
}

export function createReplyPicker({ getUserId }) {
  const box = document.getElementById("reply-choice");
  const select = document.getElementById("reply-picker");
  const newChatField = document.getElementById("new-chat-reply-field");
  const newChatSelect = document.getElementById("new-chat-reply");
  let sessionId = null;
  let choices = [];

  async function load() {
    const config = await api.repliesConfig();
    choices = config.enabled ? (await api.models()).items : []; // no model configured: no picker
    for (const picker of [select, newChatSelect]) {
      picker.replaceChildren(
        el("option", { value: NONE, text: "Nobody (no reply)" }),
        ...choices.map((choice) =>
          el("option", {
            value: `${choice.kind}:${choice.id}`,
            text: choice.kind === "agent" ? `${choice.id} (${choice.model})` : choice.id,
          }),
        ),
      );
    }
    newChatField.hidden = choices.length === 0;
    newChatSelect.value = firstChoice();
    show();
  }

  function firstChoice() {
    return choices[0] ? `${choices[0].kind}:${choices[0].id}` : NONE;
  }

  function show() {
    box.hidden = choices.length === 0 || sessionId === null;
    if (box.hidden) return;
    const saved = localStorage.getItem(storageKey(getUserId(), sessionId));
    const wanted = saved !== null ? saved : firstChoice();
    select.value = [...select.options].some((option) => option.value === wanted) ? wanted : NONE;
  }

  select.addEventListener("change", () => {
    if (sessionId !== null) localStorage.setItem(storageKey(getUserId(), sessionId), select.value);
  });

  return {
    load,
    open(id) {
      sessionId = id;
      show();
    },
    close() {
      sessionId = null;
      show();
    },
    /** The new-chat dialog's choice: the agent for the new session (or undefined), and a
     * `remember(sessionId)` that makes it the new chat's picker choice. */
    newChatChoice() {
      const value = newChatField.hidden ? NONE : newChatSelect.value;
      const target = targetOf(value);
      return {
        agent: target && target.agent ? target.agent : undefined,
        remember: (id) => localStorage.setItem(storageKey(getUserId(), id), value),
      };
    },
    resetNewChat() {
      newChatSelect.value = firstChoice();
    },
    /** Who should reply to the next message, or null. */
    target: () => (box.hidden ? null : targetOf(select.value)),
  };
}
