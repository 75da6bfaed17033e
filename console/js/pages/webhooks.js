// Webhooks: list, create (the signing secret is shown once), delete, send a test ping; each webhook's
// deliveries with their status, and redeliver. Calls: /v1/webhooks*.

import { api, ApiError } from "../api.js";
import {
  agoTime,
  badge,
  clearFormErrors,
  cursorPager,
  confirmAction,
  copyBlock,
  dateTime,
  errorBox,
  h,
  openDialog,
  pageHeader,
  replace,
  replaceIfChanged,
  showFormError,
  tickTimes,
} from "../dom.js";

export const EVENT_TYPES = [
  "runner.created", "runner.online", "runner.offline", "runner.deleted", "runner.token_regenerated",
  "job.queued", "job.started", "job.completed", "job.failed", "job.cancelled", "job.requeued", "job.expired",
];
const POLL_MS = 3000;

export async function renderWebhooks(root, { lifetime, navigate }) {
  const status = h("div", { class: "page-status", role: "status" });
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No webhooks yet. Add one to be told when runners and jobs change.");
  const add = h("button", { type: "button", class: "primary", onclick: () => openWebhookForm(refresh) }, "Add webhook");
  replace(
    root,
    pageHeader("Webhooks", add),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data webhooks" },
        h("caption", { class: "visually-hidden" }, "Webhooks"),
        h("thead", {}, h("tr", {}, ["URL", "Events", "Description", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        tbody,
      ),
    ),
    empty,
  );

  async function refresh() {
    try {
      const page = await api("GET", "/v1/webhooks", { query: { limit: 200 } });
      replace(status);
      replaceIfChanged(tbody, page.webhooks, (webhooks) => webhooks.map((webhook) => webhookRow(webhook, refresh, navigate)));
      empty.hidden = page.webhooks.length > 0;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refresh));
    }
  }
  lifetime.every(1000, () => tickTimes(root));
  lifetime.poll(POLL_MS, refresh);
}

function webhookRow(webhook, refresh, navigate) {
  const id = encodeURIComponent(webhook.id);
  return h(
    "tr",
    { dataset: { webhookId: webhook.id } },
    h("td", { dataset: { label: "URL" } }, h("a", { href: `#/webhooks/${id}` }, webhook.url), h("div", { class: "muted mono" }, webhook.id)),
    h("td", { dataset: { label: "Events" } }, webhook.events.includes("*") ? "all events" : webhook.events.join(", ")),
    h("td", { dataset: { label: "Description" } }, webhook.description || "—"),
    h("td", { dataset: { label: "Created" } }, agoTime(webhook.createdAt)),
    h(
      "td",
      { class: "row-actions", dataset: { label: "Actions" } },
      h("button", { type: "button", onclick: () => navigate(`webhooks/${id}`) }, "Deliveries"),
      h("button", { type: "button", onclick: () => ping(webhook, refresh) }, "Send test"),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            const ok = await confirmAction(`Delete the webhook to ${webhook.url}?`, "No more events are sent to it.", "Delete webhook");
            if (!ok) return;
            try {
              await api("DELETE", `/v1/webhooks/${id}`);
            } catch (error) {
              if (!(error instanceof ApiError)) throw error;
              openDialog("Delete refused", errorBox(error));
            }
            refresh();
          },
        },
        "Delete",
      ),
    ),
  );
}

async function ping(webhook, refresh) {
  try {
    await api("POST", `/v1/webhooks/${encodeURIComponent(webhook.id)}/test`);
    openDialog("Test sent", h("p", {}, "A ping event is on its way; its delivery shows under Deliveries."));
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    openDialog("Test refused", errorBox(error));
  }
  refresh();
}

function openWebhookForm(refresh) {
  const url = h("input", { id: "webhook-url", name: "url", type: "url", required: true, placeholder: "https://example.com/hangar-events", autocomplete: "off" });
  const description = h("input", { id: "webhook-description", name: "description", autocomplete: "off" });
  const all = h("input", { type: "checkbox", id: "webhook-all", checked: true });
  const boxes = EVENT_TYPES.map((type) => h("input", { type: "checkbox", value: type, name: "events", disabled: true }));
  all.addEventListener("change", () => boxes.forEach((box) => (box.disabled = all.checked)));
  const submit = h("button", { type: "submit", class: "primary" }, "Add webhook");
  const form = h(
    "form",
    { novalidate: true },
    h("label", { class: "field" }, h("span", {}, "URL (https, public)"), url),
    h("label", { class: "field" }, h("span", {}, "Description (optional)"), description),
    h(
      "fieldset",
      { class: "field events" },
      h("legend", {}, "Events"),
      h("label", { class: "check-label" }, all, " All events (and those added later)"),
      h("div", { class: "event-grid" }, boxes.map((box) => h("label", { class: "check-label" }, box, ` ${box.value}`))),
    ),
    h("div", { class: "actions" }, submit),
  );
  const dialog = openDialog("Add a webhook", form);
  url.focus();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const events = all.checked ? ["*"] : boxes.filter((box) => box.checked).map((box) => box.value);
    const body = { url: url.value.trim(), events };
    if (description.value.trim()) body.description = description.value.trim();
    submit.disabled = true;
    try {
      const created = await api("POST", "/v1/webhooks", { body });
      replace(
        dialog.querySelector(".dialog-body"),
        h("p", {}, "Webhook added. Its signing secret is shown this once: keep it where your receiver verifies Hangar-Signature."),
        copyBlock("Signing secret", created.secret),
        h("div", { class: "actions" }, h("button", { type: "button", class: "primary", onclick: () => dialog.close() }, "Done")),
      );
      refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showFormError(form, error);
    } finally {
      submit.disabled = false;
    }
  });
}

// -- deliveries of one webhook -----------------------------------------------------------------------

export async function renderDeliveries(root, { lifetime, params }) {
  const id = encodeURIComponent(params[0]);
  const status = h("div", { class: "page-status", role: "status" });
  const summary = h("p", { class: "muted" });
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No deliveries yet.");
  const pager = h("div", { class: "pager" });
  replace(
    root,
    h("p", {}, h("a", { href: "#/webhooks" }, "← Webhooks")),
    pageHeader("Deliveries"),
    summary,
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data deliveries" },
        h("caption", { class: "visually-hidden" }, "Deliveries"),
        h("thead", {}, h("tr", {}, ["Event", "Status", "Attempts", "Last response", "Created", "Next attempt", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        tbody,
      ),
    ),
    empty,
    pager,
  );

  const paging = cursorPager(() => refresh());
  async function refresh() {
    try {
      const [webhook, page] = await Promise.all([
        api("GET", `/v1/webhooks/${id}`),
        api("GET", `/v1/webhooks/${id}/deliveries`, { query: { cursor: paging.cursor, limit: 50 } }),
      ]);
      replace(summary, `To ${webhook.url}`, h("span", { class: "mono" }, ` (${webhook.id})`));
      replace(status);
      replaceIfChanged(tbody, page.deliveries, (deliveries) => deliveries.map((delivery) => deliveryRow(id, delivery, refresh)));
      empty.hidden = page.deliveries.length > 0 || !paging.onFirstPage;
      replace(pager, ...paging.buttons(page.nextCursor));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refresh));
    }
  }
  lifetime.every(1000, () => tickTimes(root));
  lifetime.poll(POLL_MS, refresh);
}

function deliveryRow(webhookId, delivery, refresh) {
  const redeliver = h("button", { type: "button" }, "Redeliver");
  redeliver.addEventListener("click", async () => {
    redeliver.disabled = true;
    try {
      await api("POST", `/v1/webhooks/${webhookId}/deliveries/${encodeURIComponent(delivery.id)}/redeliver`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      openDialog("Redeliver refused", errorBox(error));
    }
    redeliver.disabled = false;
    refresh();
  });
  const response = delivery.lastStatusCode ? `HTTP ${delivery.lastStatusCode}` : delivery.lastError ? "" : "—";
  return h(
    "tr",
    { dataset: { deliveryId: delivery.id } },
    h("td", { dataset: { label: "Event" } }, delivery.eventType, h("div", { class: "muted mono" }, delivery.eventId)),
    h("td", { dataset: { label: "Status" } }, badge(delivery.status)),
    h("td", { dataset: { label: "Attempts" } }, String(delivery.attempts)),
    h("td", { dataset: { label: "Last response" } }, response, delivery.lastError ? h("div", { class: "error-text" }, delivery.lastError) : null),
    h("td", { dataset: { label: "Created" } }, agoTime(delivery.createdAt)),
    h("td", { dataset: { label: "Next attempt" } }, delivery.nextAttemptAt ? dateTime(delivery.nextAttemptAt) : "—"),
    h("td", { class: "row-actions", dataset: { label: "Actions" } }, redeliver),
  );
}
