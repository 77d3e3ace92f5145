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
  let sessionId = null;
  let choices = [];

  async function load() {
    const config = await api.repliesConfig();
    choices = config.enabled ? (await api.models()).items : []; // no model configured: no picker
    select.replaceChildren(
      el("option", { value: NONE, text: "Nobody (no reply)" }),
      ...choices.map((choice) =>
        el("option", {
          value: `${choice.kind}:${choice.id}`,
          text: choice.kind === "agent" ? `${choice.id} (${choice.model})` : choice.id,
        }),
      ),
    );
    show();
  }

  function show() {
    box.hidden = choices.length === 0 || sessionId === null;
    if (box.hidden) return;
    const saved = localStorage.getItem(storageKey(getUserId(), sessionId));
    const first = choices[0] ? `${choices[0].kind}:${choices[0].id}` : NONE;
    const wanted = saved !== null ? saved : first;
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
    /** Who should reply to the next message, or null. */
    target: () => (box.hidden ? null : targetOf(select.value)),
  };
}
