// Runners: the fleet table, polled every 2 s (so a runner going online or offline shows within 5 s),
// heartbeat ages ticking every second; enroll (enrollment token + register command, or a runner + its
// install script), regenerate token, mark offline, delete. Calls: /api/runners*, /v1/runners/enrollment-tokens.

import { api, ApiError, session } from "../api.js";
import {
  agoTime,
  badge,
  bytes,
  clearFormErrors,
  confirmAction,
  copyBlock,
  countdown,
  errorBox,
  h,
  labelList,
  openDialog,
  pageHeader,
  replace,
  shellQuote,
  showFormError,
  splitLabels,
  tickTimes,
} from "../dom.js";

const POLL_MS = 2000;
const PAGE_SIZE = 200;

export async function renderRunners(root, { lifetime }) {
  const status = h("div", { class: "page-status", role: "status" });
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, "No runners yet. Enroll one to run jobs on your own machines.");
  const table = h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data runners" },
      h("caption", { class: "visually-hidden" }, "Runners"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Runner", "Status", "Last heartbeat", "Version", "Labels", "Jobs / slots", "System", "Actions"].map((title) =>
            h("th", { scope: "col" }, title),
          ),
        ),
      ),
      tbody,
    ),
  );
  const pager = h("div", { class: "pager" });
  const enroll = h("button", { type: "button", class: "primary", onclick: () => openEnrollDialog(refresh) }, "Enroll a runner");
  replace(root, pageHeader("Runners", enroll), status, table, empty, pager);

  const rows = new Map();
  let cursor = null;
  let cursors = [];

  async function refresh() {
    try {
      const page = await api("GET", "/api/runners", { query: { limit: PAGE_SIZE, cursor } });
      replace(status);
      update(page.data, page.nextCursor);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refresh));
    }
  }

  function update(runners, nextCursor) {
    const seen = new Set();
    runners.forEach((runner, index) => {
      seen.add(runner._id);
      let row = rows.get(runner._id);
      if (!row) {
        row = runnerRow(runner, refresh);
        rows.set(runner._id, row);
      }
      row.update(runner);
      // In the API's order; a row already in place is not moved (moving it would drop the focus).
      if (tbody.children[index] !== row.element) tbody.insertBefore(row.element, tbody.children[index] || null);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.element.remove();
        rows.delete(id);
      }
    }
    empty.hidden = runners.length > 0 || cursors.length > 0;
    replace(
      pager,
      cursors.length
        ? h("button", { type: "button", onclick: () => { cursor = cursors.pop() ?? null; refresh(); } }, "Previous page")
        : null,
      nextCursor
        ? h("button", { type: "button", onclick: () => { cursors.push(cursor); cursor = nextCursor; refresh(); } }, "Next page")
        : null,
    );
  }

  lifetime.every(1000, () => tickTimes(root));
  lifetime.poll(POLL_MS, refresh);
}

function runnerRow(runner, refresh) {
  const cells = {
    name: h("td", { dataset: { label: "Runner" } }),
    status: h("td", { dataset: { label: "Status" } }),
    heartbeat: h("td", { dataset: { label: "Last heartbeat" } }),
    version: h("td", { dataset: { label: "Version" } }),
    labels: h("td", { dataset: { label: "Labels" } }),
    jobs: h("td", { dataset: { label: "Jobs / slots" } }),
    system: h("td", { dataset: { label: "System" } }),
  };
  let latest = runner;
  const actions = h(
    "td",
    { class: "row-actions", dataset: { label: "Actions" } },
    h("button", { type: "button", onclick: () => regenerate(latest, refresh) }, "Regenerate token"),
    h("button", { type: "button", onclick: () => markOffline(latest, refresh) }, "Mark offline"),
    h("button", { type: "button", class: "danger", onclick: () => remove(latest, refresh) }, "Delete"),
  );
  const element = h("tr", { dataset: { runnerId: runner._id } }, Object.values(cells), actions);
  let shown = "";
  return {
    element,
    update(next) {
      latest = next;
      const key = JSON.stringify(next);
      if (key === shown) return;
      shown = key;
      replace(cells.name, h("strong", {}, next.name), h("div", { class: "muted mono" }, next._id));
      replace(cells.status, badge(next.status));
      replace(cells.heartbeat, agoTime(next.lastHeartbeat));
      replace(cells.version, next.version || h("span", { class: "muted" }, "—"));
      replace(cells.labels, labelList(next.labels));
      replace(
        cells.jobs,
        `${next.currentJobs} / ${next.configuredConcurrency}`,
        h("div", { class: "muted" }, `${next.jobsCompleted} completed`),
      );
      replace(cells.system, systemInfo(next.systemInfo));
    },
  };
}

function systemInfo(info) {
  if (!info || typeof info !== "object" || !Object.keys(info).length) return h("span", { class: "muted" }, "—");
  const parts = [];
  if (info.cpu) parts.push(`${info.cpu} CPU`);
  if (info.memory) parts.push(`${bytes(info.memory)} RAM`);
  if (info.disk) parts.push(`${bytes(info.disk)} free`);
  for (const [name, value] of Object.entries(info)) {
    if (!["cpu", "memory", "disk"].includes(name) && (typeof value === "string" || typeof value === "number")) {
      parts.push(`${name} ${value}`);
    }
  }
  return h("span", { class: "system" }, parts.join(" · ") || "—");
}

async function markOffline(runner, refresh) {
  const ok = await confirmAction(
    `Mark ${runner.name} offline?`,
    "It gets no new jobs until its next heartbeat says it is back.",
    "Mark offline",
  );
  if (!ok) return;
  await act(`Mark ${runner.name} offline`, () => api("POST", `/api/runners/${encodeURIComponent(runner._id)}/mark-offline`), refresh);
}

async function remove(runner, refresh) {
  const ok = await confirmAction(
    `Delete runner ${runner.name}?`,
    "Its tokens stop working at once and its running jobs go back to the queue. This cannot be undone.",
    "Delete runner",
  );
  if (!ok) return;
  await act(`Delete ${runner.name}`, () => api("DELETE", `/api/runners/${encodeURIComponent(runner._id)}`), refresh);
}

async function regenerate(runner, refresh) {
  const ok = await confirmAction(
    `Regenerate the token of ${runner.name}?`,
    "Its current token stops working: the agent must be given the new one (or reinstalled). At most 5 per hour.",
    "Regenerate token",
  );
  if (!ok) return;
  await act(
    `Regenerate the token of ${runner.name}`,
    async () => {
      const id = encodeURIComponent(runner._id);
      const { data } = await api("POST", `/api/runners/${id}/regenerate-token`);
      const setup = await api("GET", `/api/runners/${id}/setup-info`);
      openDialog(
        "New runner token",
        h("p", {}, "Shown this once. Reinstall the agent with the script, or put the token in its config."),
        copyBlock("Runner token", data.token),
        copyBlock("Install script", setup.data.installCommand),
      );
    },
    refresh,
  );
}

/** Runs a runner action; a refusal is shown in a dialog that says which action it was. */
async function act(what, action, refresh) {
  try {
    await action();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    openDialog(`${what}: refused`, errorBox(error));
  }
  await refresh();
}

// -- enrolling -----------------------------------------------------------------------------------------

const TTL_CHOICES = [
  [600, "10 minutes"],
  [1800, "30 minutes"],
  [3600, "1 hour"],
  [86400, "24 hours"],
];

function openEnrollDialog(refresh) {
  const name = h("input", { id: "enroll-name", name: "name", autocomplete: "off", placeholder: "e.g. build-box-1" });
  const labels = h("input", { id: "enroll-labels", name: "labels", autocomplete: "off", placeholder: "linux, docker" });
  const concurrency = h("input", { id: "enroll-concurrency", name: "configuredConcurrency", type: "number", min: "1", max: "64", value: "1" });
  const ttl = h("select", { id: "enroll-ttl", name: "ttlSeconds" }, TTL_CHOICES.map(([value, text]) => h("option", { value, selected: value === 1800 }, text)));
  const result = h("div", { class: "enroll-result", "aria-live": "polite" });
  const create = h("button", { type: "submit", class: "primary" }, "Create enrollment token");
  const script = h("button", { type: "button" }, "Create the runner and show its install script");
  const form = h(
    "form",
    { class: "enroll-form", novalidate: true },
    h("label", { class: "field" }, h("span", {}, "Runner name (optional)"), name),
    h("label", { class: "field" }, h("span", {}, "Labels (jobs are routed by them)"), labels),
    h("div", { class: "field-row" },
      h("label", { class: "field" }, h("span", {}, "Jobs at once"), concurrency),
      h("label", { class: "field" }, h("span", {}, "Token valid for"), ttl)),
    h("div", { class: "actions" }, create, script),
  );
  const dialog = openDialog("Enroll a runner", form, result);
  name.focus();
  let timer = null;
  dialog.addEventListener("close", () => window.clearInterval(timer));

  const options = () => ({
    name: name.value.trim(),
    labels: splitLabels(labels.value),
    concurrency: Number(concurrency.value || 1),
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const { name: runnerName, labels: runnerLabels, concurrency: slots } = options();
    const body = { ttlSeconds: Number(ttl.value) };
    if (runnerName) body.name = runnerName;
    create.disabled = true;
    try {
      const token = await api("POST", "/v1/runners/enrollment-tokens", { body });
      const register = [
        `echo ${shellQuote(token.token)} |`,
        "hangar-agent register",
        `--api-url ${shellQuote(session.apiUrl())}`,
        "--token-file -",
        runnerName ? `--name ${shellQuote(runnerName)}` : null,
        ...runnerLabels.map((label) => `--label ${shellQuote(label)}`),
        slots > 1 ? `--concurrency ${slots}` : null,
      ].filter(Boolean).join(" ");
      const expiry = h("p", { class: "expiry", role: "timer" });
      const tick = () => {
        const left = countdown(token.expiresAt);
        expiry.textContent = left
          ? `This enrollment token (${token.tokenPrefix}) can be used once and expires in ${left}.`
          : `This enrollment token (${token.tokenPrefix}) has expired: create a new one.`;
        expiry.classList.toggle("expired", !left);
      };
      tick();
      window.clearInterval(timer);
      timer = window.setInterval(tick, 1000);
      replace(
        result,
        h("h3", {}, "On the runner's machine"),
        expiry,
        copyBlock("Register", register),
        copyBlock("Then run jobs", "hangar-agent run --exec 'YOUR-JOB-COMMAND'"),
        h("p", { class: "muted" }, "The runner appears in the table once it registers, and turns online with its first heartbeat."),
      );
      refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showFormError(form, error);
    } finally {
      create.disabled = false;
    }
  });

  script.addEventListener("click", async () => {
    clearFormErrors(form);
    const { name: runnerName, labels: runnerLabels, concurrency: slots } = options();
    if (!runnerName) {
      showFormError(form, new ApiError(400, "required", "name: a runner created here needs a name", "name"));
      return;
    }
    script.disabled = true;
    try {
      const created = await api("POST", "/api/runners", {
        body: { name: runnerName, labels: runnerLabels, configuredConcurrency: slots },
      });
      const setup = await api("GET", `/api/runners/${encodeURIComponent(created.data._id)}/setup-info`);
      window.clearInterval(timer);
      replace(
        result,
        h("h3", {}, `Install ${runnerName} on its machine`),
        h("p", {}, "The script installs the agent and this runner's token (shown this once); add --exec to run it as a service."),
        copyBlock("Install script", setup.data.installCommand),
        copyBlock("As a service", `${setup.data.installCommand.replace(/\| *sh$/, "| sh -s -- --exec 'YOUR-JOB-COMMAND'")}`),
      );
      refresh();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showFormError(form, error);
    } finally {
      script.disabled = false;
    }
  });
}
