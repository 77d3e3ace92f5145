// The account page (#/account): API keys (made with scopes and an expiry, the secret shown once
// with a Copy button, listed with their last use, revoked), export and import of every chat,
// the password, and signing out everywhere. Only the REST API the other clients use.

import { ApiError, api, forgetToken, openStream, upload } from "./api.js";
import { fieldError, setBusy } from "./forms.js";
import { el, timeElement } from "./text.js";

const KEYS_PAGE = 200;
const PASSWORD_MIN = 8;
const SKIPPED_SHOWN = 50;
const FORMAT_NAMES = { "chat-export": "Chat export", "chatgpt-json": "ChatGPT conversations.json", "chatgpt-zip": "ChatGPT zip" };

const $ = (id) => document.getElementById(id);

function plural(count, one, many = `${one}s`) {
  return `${count.toLocaleString()} ${count === 1 ? one : many}`;
}

/** `openDialog(dialog, focusTarget)` opens a modal; `onSignedOut(message)` shows the sign-in
 * form; `onImported()` refreshes the chat list; `getUsername()` for the password managers. */
export function createAccount({ openDialog, onSignedOut, onImported, getUsername }) {
  const keyList = $("key-list");
  const keyStatus = $("key-list-status");
  let generation = 0;
  let revoking = null;
  let retryKey = null; // the same Idempotency-Key while the same key is being asked for

  // ---- API keys -------------------------------------------------------------------------------

  function keyItem(key) {
    const revoke = el("button", { type: "button", className: "button button-quiet button-small", text: "Revoke" });
    revoke.addEventListener("click", () => {
      revoking = key;
      $("revoke-text").textContent = `Programs using “${key.name}” (${key.prefix}…) stop working within seconds. This can't be undone.`;
      $("revoke-error").textContent = "";
      openDialog($("revoke-dialog"), $("revoke-dialog").querySelector("[data-close]"));
    });
    revoke.setAttribute("aria-label", `Revoke ${key.name}`);
    const lastUsed = key.last_used_at ? timeElement(key.last_used_at) : "never";
    const expires = key.expires_at ? timeElement(key.expires_at) : "never";
    return el(
      "li",
      { className: "key-item", dataset: { id: key._id } },
      el(
        "div",
        { className: "key-main" },
        el("p", { className: "key-name" }, el("strong", { text: key.name }), " ", el("code", { text: `${key.prefix}…` })),
        el(
          "p",
          { className: "key-meta" },
          el("span", { text: key.scopes.includes("write") ? "Read and write" : "Read only" }),
          el("span", {}, "Created ", timeElement(key.created_at)),
          el("span", {}, "Last used ", lastUsed),
          el("span", {}, "Expires ", expires),
        ),
      ),
      revoke,
    );
  }

  async function loadKeys() {
    const mine = ++generation;
    keyStatus.textContent = "Loading keys…";
    const keys = [];
    let cursor = null;
    try {
      do {
        const page = await api.listApiKeys(KEYS_PAGE, cursor);
        if (mine !== generation) return;
        keys.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor !== null);
    } catch (error) {
      if (mine === generation) keyStatus.textContent = `Couldn't load your keys: ${error.message}`;
      return;
    }
    keyList.replaceChildren(...keys.map(keyItem));
    keyStatus.textContent = keys.length ? "" : "No API keys yet.";
  }

  $("key-form").addEventListener("input", () => {
    retryKey = null; // a changed request is a new one
  });

  $("key-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const name = $("key-name");
    const password = $("key-password");
    $("key-form-message").textContent = "";
    fieldError(name, name.value.trim() ? "" : "Give the key a name.");
    fieldError(password, password.value ? "" : "Enter your password.");
    if (!name.value.trim() || !password.value) {
      (name.value.trim() ? password : name).focus();
      return;
    }
    retryKey = retryKey || api.newRetryKey();
    setBusy(form, true, "Creating…");
    try {
      const created = await api.createApiKey(
        {
          name: name.value.trim(),
          scopes: form.elements.scopes.value.split(","),
          expires_in_days: Number($("key-expiry").value),
          current_password: password.value,
        },
        retryKey,
      );
      retryKey = null;
      form.reset();
      $("key-secret").value = created.key;
      $("key-copy-status").textContent = "";
      $("key-created").hidden = false;
      $("key-secret").select();
      $("key-copy").focus();
      await loadKeys();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        fieldError(password, error.message);
        password.select();
        password.focus();
      } else if (!(error instanceof ApiError && error.status === 401)) {
        $("key-form-message").textContent = error.message;
      }
    } finally {
      setBusy(form, false);
    }
  });

  $("key-copy").addEventListener("click", async () => {
    const secret = $("key-secret");
    try {
      await navigator.clipboard.writeText(secret.value);
      $("key-copy-status").textContent = "Copied to the clipboard.";
      $("key-copy").textContent = "Copied";
    } catch {
      secret.select();
      $("key-copy-status").textContent = "Copying isn't allowed here: the key is selected, press Ctrl+C (⌘C).";
    }
  });

  $("key-done").addEventListener("click", () => {
    $("key-secret").value = "";
    $("key-created").hidden = true;
    $("key-copy").textContent = "Copy";
    $("key-name").focus();
  });

  $("revoke-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!revoking) return;
    const form = event.currentTarget;
    setBusy(form, true, "Revoking…");
    try {
      await api.revokeApiKey(revoking._id);
      $("revoke-dialog").close();
      await loadKeys();
      $("key-list-heading").focus(); // its button is gone: focus stays in the list's place
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        $("revoke-dialog").close();
        await loadKeys();
      } else {
        $("revoke-error").textContent = error.message;
      }
    } finally {
      setBusy(form, false);
    }
  });

  // ---- export ---------------------------------------------------------------------------------

  function filenameOf(response) {
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    return match ? match[1] : "chat-export.ndjson";
  }

  $("export-button").addEventListener("click", async () => {
    const button = $("export-button");
    const status = $("export-status");
    button.disabled = true;
    $("export-progress").hidden = false;
    status.textContent = "Exporting your chats…";
    try {
      const response = await openStream("/chat/export", { Accept: "application/x-ndjson" });
      if (!response.ok) throw new ApiError(response.status, (await response.json().catch(() => null))?.detail);
      const blob = await response.blob();
      const name = filenameOf(response);
      const link = el("a", { href: URL.createObjectURL(blob), download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
      status.textContent = `Downloaded ${name} (${Math.ceil(blob.size / 1024).toLocaleString()} KB).`;
    } catch (error) {
      status.textContent = `Export failed: ${error.message}`;
    } finally {
      button.disabled = false;
      $("export-progress").hidden = true;
    }
  });

  // ---- import ---------------------------------------------------------------------------------

  function showReport(report) {
    const counts = [
      ["Format", FORMAT_NAMES[report.format] || report.format],
      ["Chats", `${report.sessions.created.toLocaleString()} new, ${report.sessions.unchanged.toLocaleString()} already here`],
      ["Messages", `${report.messages.created.toLocaleString()} new, ${report.messages.unchanged.toLocaleString()} already here`],
    ];
    $("import-counts").replaceChildren(...counts.flatMap(([term, detail]) => [el("dt", { text: term }), el("dd", { text: detail })]));
    const shown = report.skipped.slice(0, SKIPPED_SHOWN);
    $("import-skipped-summary").textContent = report.skipped_total
      ? `Skipped ${plural(report.skipped_total, "item")}${report.skipped_total > shown.length ? ` (the first ${shown.length} below)` : ""}:`
      : "Nothing was skipped.";
    $("import-skipped").replaceChildren(
      ...shown.map((item) =>
        el("li", { text: `${item.conversation}${item.message ? ` (message ${item.message})` : ""}: ${item.reason}` }),
      ),
    );
    $("import-report").hidden = false;
  }

  $("import-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const file = $("import-file").files[0];
    const message = $("import-message");
    const bar = $("import-progress");
    const status = $("import-status");
    message.textContent = "";
    if (!file) {
      message.textContent = "Choose a file to import.";
      $("import-file").focus();
      return;
    }
    $("import-report").hidden = true;
    setBusy(form, true, "Importing…");
    bar.hidden = false;
    bar.value = 0;
    bar.max = 1;
    try {
      const report = await upload("/chat/import", file, (sent, total) => {
        if (sent < total) {
          bar.value = sent / total;
          status.textContent = `Uploading… ${Math.round((100 * sent) / total)}%`;
        } else {
          bar.removeAttribute("value"); // the server reads the file now: no measure of that part
          status.textContent = "Uploaded. Importing the chats…";
        }
      });
      status.textContent = `Imported ${file.name}.`;
      showReport(report);
      form.reset();
      onImported();
    } catch (error) {
      status.textContent = "";
      if (!(error instanceof ApiError && error.status === 401)) message.textContent = `Not imported: ${error.message}`;
    } finally {
      bar.hidden = true;
      bar.removeAttribute("value");
      setBusy(form, false);
    }
  });

  // ---- password -------------------------------------------------------------------------------

  $("password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const current = $("current-password");
    const next = $("new-password");
    $("password-message").textContent = "";
    $("password-status").textContent = "";
    fieldError(current, current.value ? "" : "Enter your current password.");
    fieldError(next, next.value.length >= PASSWORD_MIN ? "" : `Use at least ${PASSWORD_MIN} characters.`);
    if (!current.value || next.value.length < PASSWORD_MIN) {
      (current.value ? next : current).focus();
      return;
    }
    setBusy(form, true, "Changing…");
    try {
      await api.changePassword(current.value, next.value);
      form.reset();
      $("password-status").textContent =
        "Password changed. Your other sessions were signed out and your API keys revoked.";
      await loadKeys();
    } catch (error) {
      if (error instanceof ApiError && error.status === 400) {
        fieldError(current, error.message);
        current.select();
        current.focus();
      } else if (!(error instanceof ApiError && error.status === 401)) {
        $("password-message").textContent = error.message;
      }
    } finally {
      setBusy(form, false);
    }
  });

  // ---- sign out everywhere --------------------------------------------------------------------

  $("everywhere-button").addEventListener("click", () => {
    $("everywhere-error").textContent = "";
    openDialog($("everywhere-dialog"), $("everywhere-dialog").querySelector("[data-close]"));
  });

  $("everywhere-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    setBusy(form, true, "Signing out…");
    try {
      await api.logoutEverywhere();
      forgetToken(); // its tokens are dead; other tabs see this and sign out too
      $("everywhere-dialog").close();
      onSignedOut("You have signed out everywhere.");
    } catch (error) {
      $("everywhere-error").textContent = error.message;
    } finally {
      setBusy(form, false);
    }
  });

  return {
    /** Show the page: the forms cleared, the keys read afresh. */
    open() {
      $("account").hidden = false;
      $("password-username").value = getUsername();
      for (const form of ["key-form", "password-form"]) $(form).reset();
      for (const id of ["key-name", "key-password", "current-password", "new-password"]) fieldError($(id), "");
      $("key-created").hidden = true;
      $("key-secret").value = "";
      loadKeys();
    },
    close() {
      generation += 1;
      $("account").hidden = true;
      $("key-secret").value = "";
    },
  };
}
