// Jobs: the list (status filter, cursor paging, refreshed every 3 s) and the New job form
// (POST /v1/jobs with an Idempotency-Key, so a double submit creates one job).

import { api, ApiError } from "../api.js";
import {
  agoTime,
  badge,
  clearFormErrors,
  cursorPager,
  errorBox,
  h,
  openDialog,
  pageHeader,
  randomId,
  replace,
  replaceIfChanged,
  showFormError,
  splitLabels,
  tickTimes,
} from "../dom.js";

export const JOB_STATUSES = ["queued", "assigned", "running", "completed", "failed", "cancelled", "expired"];
const POLL_MS = 3000;
const PAGE_SIZE = 25;

export async function renderJobs(root, { lifetime, query, navigate }) {
  const statusFilter = query.get("status") || "";
  const filter = h(
    "select",
    { id: "status-filter", name: "status", "aria-label": "Status" },
    h("option", { value: "" }, "All statuses"),
    JOB_STATUSES.map((status) => h("option", { value: status, selected: status === statusFilter }, status)),
  );
  filter.addEventListener("change", () => navigate(filter.value ? `jobs?status=${filter.value}` : "jobs"));
  const newJob = h("button", { type: "button", class: "primary", onclick: () => openJobForm(navigate) }, "New job");
  const status = h("div", { class: "page-status", role: "status" });
  const tbody = h("tbody");
  const empty = h("p", { class: "empty", hidden: true }, statusFilter ? `No ${statusFilter} jobs.` : "No jobs yet.");
  const pager = h("div", { class: "pager" });
  replace(
    root,
    pageHeader("Jobs", h("label", { class: "inline" }, h("span", {}, "Status"), filter), newJob),
    status,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { class: "data jobs" },
        h("caption", { class: "visually-hidden" }, "Jobs"),
        h("thead", {}, h("tr", {}, ["Job", "Status", "Type", "Repository", "Labels", "Runner", "Attempts", "Created"].map((t) => h("th", { scope: "col" }, t)))),
        tbody,
      ),
    ),
    empty,
    pager,
  );

  const paging = cursorPager(() => refresh());

  async function refresh() {
    try {
      const page = await api("GET", "/v1/jobs", { query: { status: statusFilter, limit: PAGE_SIZE, cursor: paging.cursor } });
      replace(status);
      replaceIfChanged(tbody, page.jobs, (jobs) => jobs.map(jobRow));
      empty.hidden = page.jobs.length > 0 || !paging.onFirstPage;
      replace(pager, ...paging.buttons(page.nextCursor));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refresh));
    }
  }

  lifetime.every(1000, () => tickTimes(root));
  lifetime.poll(POLL_MS, refresh);
}

function jobRow(job) {
  const repository = [job.repositoryName, job.branch].filter(Boolean).join(" @ ") || "—";
  return h(
    "tr",
    { dataset: { jobId: job.id } },
    h("td", { dataset: { label: "Job" } }, h("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, class: "mono" }, job.id)),
    h("td", { dataset: { label: "Status" } }, badge(job.status)),
    h("td", { dataset: { label: "Type" } }, job.type),
    h("td", { dataset: { label: "Repository" } }, repository),
    h("td", { dataset: { label: "Labels" } }, job.labels.length ? job.labels.join(", ") : "—"),
    h("td", { dataset: { label: "Runner" } }, job.runnerId ? h("span", { class: "mono" }, job.runnerId) : "—"),
    h("td", { dataset: { label: "Attempts" } }, `${job.attempts} / ${job.maxAttempts}`),
    h("td", { dataset: { label: "Created" } }, agoTime(job.createdAt)),
  );
}

// -- the New job form --------------------------------------------------------------------------------

function field(label, input, hint) {
  return h("label", { class: "field" }, h("span", {}, label), input, hint ? h("small", { class: "muted" }, hint) : null);
}

async function openJobForm(navigate) {
  const input = (name, attributes = {}) => h("input", { id: `job-${name}`, name, autocomplete: "off", ...attributes });
  const type = input("type", { value: "scan", required: true });
  const repositoryName = input("repositoryName", { placeholder: "org/terraform-infra" });
  const repositoryConfig = input("repositoryConfig", { placeholder: "config id or path" });
  const branch = input("branch", { placeholder: "main" });
  const labels = input("labels", { placeholder: "linux" });
  const target = h("select", { id: "job-targetId", name: "targetId" }, h("option", { value: "" }, "No target"));
  const runner = h("select", { id: "job-runnerId", name: "runnerId" }, h("option", { value: "" }, "Any runner with the labels"));
  const payload = h("textarea", { id: "job-payload", name: "payload", rows: "3", placeholder: '{"paths": ["modules/"]}', spellcheck: "false" });
  const submit = h("button", { type: "submit", class: "primary" }, "Create job");
  const form = h(
    "form",
    { class: "job-form", novalidate: true },
    field("Type", type),
    h("div", { class: "field-row" }, field("Repository", repositoryName), field("Branch", branch)),
    field("Repository config", repositoryConfig),
    field("Labels", labels, "The runner must have every one; separate with commas or spaces."),
    h("div", { class: "field-row" }, field("Target", target), field("Pin to runner", runner)),
    field("Payload (JSON object, optional)", payload),
    h("div", { class: "actions" }, submit),
  );
  const dialog = openDialog("New job", form);
  type.focus();
  const idempotencyKey = randomId(); // one per form: a repeated submit is the same job

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearFormErrors(form);
    const body = { type: type.value.trim(), labels: splitLabels(labels.value) };
    for (const [name, element] of Object.entries({ repositoryName, repositoryConfig, branch, targetId: target, runnerId: runner })) {
      if (element.value.trim()) body[name] = element.value.trim();
    }
    if (payload.value.trim()) {
      try {
        body.payload = JSON.parse(payload.value);
      } catch {
        showFormError(form, new ApiError(400, "invalid_json", "payload: not valid JSON", "payload"));
        return;
      }
    }
    submit.disabled = true;
    try {
      const job = await api("POST", "/v1/jobs", { body, headers: { "Idempotency-Key": idempotencyKey } });
      dialog.close();
      navigate(`jobs/${encodeURIComponent(job.id)}`);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showFormError(form, error);
    } finally {
      submit.disabled = false;
    }
  });
  // The choices are filled in when they arrive (the form is usable at once, and without them).
  const [targets, runners] = await Promise.allSettled([
    api("GET", "/v1/targets", { query: { limit: 200 } }),
    api("GET", "/api/runners", { query: { limit: 200 } }),
  ]);
  if (targets.status === "fulfilled") {
    target.append(...targets.value.targets.map((t) => h("option", { value: t.id }, `${t.name || t.id} (${t.visibility})`)));
  }
  if (runners.status === "fulfilled") {
    runner.append(...runners.value.data.map((r) => h("option", { value: r._id }, `${r.name} (${r.status})`)));
  }
}
