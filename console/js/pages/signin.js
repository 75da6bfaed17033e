// Sign-in: an API key (hgk_...) or a JWT, pasted once and checked against the API (GET /v1/license)
// before it is kept, in sessionStorage only: closing the tab or "Sign out" forgets it.

import { api, ApiError, normalizeApiUrl, session } from "../api.js";
import { clearFormErrors, h, replace, showFormError } from "../dom.js";

export function renderSignIn(root, { onSignedIn, next }) {
  const configured = session.configuredApiUrl();
  const credential = h("input", {
    id: "credential",
    name: "credential",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "hgk_… or eyJ…",
  });
  const apiUrl = h("input", {
    id: "api-url",
    name: "apiUrl",
    type: "url",
    value: configured,
    placeholder: window.location.origin,
    autocomplete: "url",
  });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h(
    "form",
    { class: "card signin", novalidate: true },
    h("h1", { tabindex: "-1" }, "Sign in to Hangar"),
    h(
      "p",
      { class: "muted" },
      "Paste an API key (hgk_…) or a JWT. It is kept in this tab only (sessionStorage) and sent only to the API, as a header.",
    ),
    h("label", { class: "field" }, h("span", {}, "API key or JWT"), credential),
    h(
      "details",
      { open: Boolean(configured) && configured !== window.location.origin },
      h("summary", {}, "API URL"),
      h(
        "label",
        { class: "field" },
        h("span", {}, "Base URL of the Hangar API (empty: this console's own origin)"),
        apiUrl,
      ),
    ),
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const secret = credential.value.trim();
    if (!secret) {
      showFormError(form, new ApiError(400, "required", "Paste an API key or a JWT", "credential"));
      return;
    }
    let base;
    try {
      base = normalizeApiUrl(apiUrl.value);
    } catch {
      showFormError(form, new ApiError(400, "invalid_url", "Not an http(s) URL", "apiUrl"));
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    try {
      await api("GET", "/v1/license", { credential: secret, base: base || window.location.origin });
      session.signIn(secret, base);
      credential.value = "";
      await onSignedIn(next);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const field = error.status === 0 ? "apiUrl" : "credential";
      const message =
        error.status === 401 || error.status === 403
          ? `The API refused this credential: ${error.message}`
          : error.message;
      showFormError(form, new ApiError(error.status, error.code, message, field));
      if (field === "apiUrl") form.querySelector("details").open = true;
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });
  replace(root, form);
  credential.focus();
}
