// What every form in the UI does the same way: a busy submit button, and an error under a field.

/** Disable the submit button and show `label` on it while `busy`; restore it after. */
export function setBusy(form, busy, label) {
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

/** Show `message` in the field's #<id>-error and mark the input invalid ("" clears both). */
export function fieldError(input, message) {
  const error = document.getElementById(`${input.id}-error`);
  if (error) error.textContent = message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}
