// DOM helpers: elements are built with h() and text nodes only (no innerHTML from data), timers are owned
// by the page that started them, dialogs are native <dialog> (focus kept inside, Esc closes).

/** h("button", {class: "primary", onclick: f}, "Save") -> <button class="primary">Save</button> */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name in element && typeof value !== "string") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

const shown = new WeakMap();

/** Renders `data` into `element` only when it differs from what is shown, so a refresh that brings
 * nothing new leaves the element (and the keyboard focus inside it) alone. */
export function replaceIfChanged(element, data, render) {
  const key = JSON.stringify(data);
  if (shown.get(element) === key) return;
  shown.set(element, key);
  replace(element, render(data));
}

/** A page's timers and listeners, all stopped when the page goes away. */
export class Lifetime {
  constructor() {
    this.stops = [];
    this.alive = true;
  }
  every(milliseconds, callback) {
    const id = window.setInterval(callback, milliseconds);
    this.stops.push(() => window.clearInterval(id));
  }
  /** Runs `callback` now and then `milliseconds` after each run ends (never two at once). */
  poll(milliseconds, callback) {
    let timer = null;
    const run = async () => {
      if (!this.alive) return;
      try {
        await callback();
      } finally {
        if (this.alive) timer = window.setTimeout(run, milliseconds);
      }
    };
    this.stops.push(() => window.clearTimeout(timer));
    run();
  }
  onStop(callback) {
    this.stops.push(callback);
  }
  stop() {
    this.alive = false;
    for (const stop of this.stops.splice(0)) stop();
  }
}

// -- formatting ------------------------------------------------------------------------------------

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

export function countdown(iso, now = Date.now()) {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  if (seconds <= 0) return null;
  const minutes = Math.floor(seconds / 60);
  const hours = Math.floor(minutes / 60);
  const two = (n) => String(n).padStart(2, "0");
  return hours ? `${hours}:${two(minutes % 60)}:${two(seconds % 60)}` : `${minutes}:${two(seconds % 60)}`;
}

export function bytes(value) {
  if (value === null || value === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = Number(value);
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${unit ? size.toFixed(1) : size} ${units[unit]}`;
}

export function dateTime(iso) {
  return iso ? new Date(iso).toLocaleString() : "—";
}

/** A <time> that keeps saying how long ago `iso` was (updated by `tickTimes`). */
export function agoTime(iso) {
  return h("time", { datetime: iso || "", dataset: { ago: iso || "" }, title: iso ? dateTime(iso) : "" }, ago(iso));
}

export function tickTimes(root) {
  for (const element of root.querySelectorAll("time[data-ago]")) element.textContent = ago(element.dataset.ago || null);
}

export function badge(status) {
  return h("span", { class: `badge badge-${status}`, dataset: { status } }, status);
}

export function labelList(labels) {
  if (!labels || !labels.length) return h("span", { class: "muted" }, "none");
  return h("span", { class: "labels" }, labels.map((label) => h("span", { class: "label" }, label)));
}

export function splitLabels(text) {
  return (text || "").split(/[\s,]+/).map((label) => label.trim()).filter(Boolean);
}

/** A random id (crypto.randomUUID exists only in secure contexts; make run may be reached over plain http). */
export function randomId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A shell word: 'text' with any ' inside closed, escaped and reopened. */
export function shellQuote(text) {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${String(text).replaceAll("'", `'"'"'`)}'`;
}

// -- errors ----------------------------------------------------------------------------------------

/** An alert box saying what went wrong (and, for a field error, which field). */
// Cursor paging for a list that refreshes itself: the cursor of the page shown and the ones before it;
// `buttons(nextCursor)` are the Previous/Next page buttons for the page just read.
export function cursorPager(refresh) {
  let cursor = null;
  const previous = [];
  return {
    get cursor() { return cursor; },
    get onFirstPage() { return previous.length === 0; },
    buttons(nextCursor) {
      return [
        previous.length ? h("button", { type: "button", onclick: () => { cursor = previous.pop() ?? null; refresh(); } }, "Previous page") : null,
        nextCursor ? h("button", { type: "button", onclick: () => { previous.push(cursor); cursor = nextCursor; refresh(); } }, "Next page") : null,
      ];
    },
  };
}

export function errorBox(error, retry) {
  const message = error && error.message ? error.message : String(error);
  const detail = error && error.code ? ` (${error.code}${error.status ? `, HTTP ${error.status}` : ""})` : "";
  return h(
    "div",
    { class: "alert alert-error", role: "alert" },
    h("strong", {}, "Error: "),
    message,
    h("span", { class: "muted" }, detail),
    retry ? h("button", { type: "button", class: "link", onclick: retry }, " Try again") : null,
  );
}

/** Shows `error` in the form: beside the input its `field` names when there is one, else on top. */
export function showFormError(form, error) {
  clearFormErrors(form);
  const field = error && error.field ? String(error.field).split(".")[0] : null;
  const input = field ? form.querySelector(`[name="${CSS.escape(field)}"]`) : null;
  if (input) {
    const id = `${input.id || input.name}-error`;
    const message = h("p", { class: "field-error", id, role: "alert" }, `${error.message}`);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", id);
    input.closest("label, .field")?.append(message);
    input.focus();
  } else {
    form.prepend(h("div", { class: "form-error" }, errorBox(error)));
  }
}

export function clearFormErrors(form) {
  for (const element of form.querySelectorAll(".field-error, .form-error")) element.remove();
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

// -- dialogs and copying ---------------------------------------------------------------------------

/** A modal dialog; `close()` removes it. Esc and the Close button close it. */
export function openDialog(title, ...content) {
  const dialog = h(
    "dialog",
    { class: "dialog", "aria-labelledby": "dialog-title" },
    h(
      "header",
      {},
      h("h2", { id: "dialog-title" }, title),
      h("button", { type: "button", class: "icon", "aria-label": "Close", onclick: () => dialog.close() }, "×"),
    ),
    h("div", { class: "dialog-body" }, content),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Asks before a destructive action; resolves true when confirmed. */
export function confirmAction(title, text, actionLabel) {
  return new Promise((resolve) => {
    let confirmed = false;
    const cancel = h("button", { type: "button", onclick: () => dialog.close() }, "Cancel");
    const confirm = h(
      "button",
      {
        type: "button",
        class: "danger",
        onclick: () => {
          confirmed = true;
          dialog.close();
        },
      },
      actionLabel,
    );
    const dialog = openDialog(title, h("p", {}, text), h("div", { class: "actions" }, cancel, confirm));
    dialog.addEventListener("close", () => resolve(confirmed));
    cancel.focus(); // the safe choice has focus: Enter does not destroy anything
  });
}

/** A read-only block of text (a command, a token) with a Copy button. */
export function copyBlock(label, text) {
  const status = h("span", { class: "copy-status", role: "status" });
  const button = h(
    "button",
    {
      type: "button",
      class: "copy",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(text);
          status.textContent = "Copied";
        } catch {
          const range = document.createRange();
          range.selectNodeContents(code);
          window.getSelection()?.removeAllRanges();
          window.getSelection()?.addRange(range);
          status.textContent = "Selected: press Ctrl+C to copy";
        }
        window.setTimeout(() => (status.textContent = ""), 2500);
      },
    },
    "Copy",
  );
  const code = h("code", {}, text);
  return h(
    "div",
    { class: "copy-block", dataset: { copy: label } },
    h("div", { class: "copy-head" }, h("span", {}, label), h("span", {}, status, button)),
    h("pre", { tabindex: "0" }, code),
  );
}

/** A <dl> from [term, description] pairs. */
export function details(pairs) {
  return h(
    "dl",
    { class: "details" },
    pairs.filter(Boolean).map(([term, description]) => h("div", {}, h("dt", {}, term), h("dd", {}, description ?? "—"))),
  );
}

export function pageHeader(title, ...actions) {
  return h("div", { class: "page-header" }, h("h1", { tabindex: "-1" }, title), h("div", { class: "actions" }, actions));
}
