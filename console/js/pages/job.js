// One job: its state (refreshed every 2 s until it ends), its error, result and attempts, Cancel, the
// live log tail (GET /v1/jobs/{id}/logs followed by cursor: auto-scrolls, pauses when scrolled up) and
// its artifacts with download links (GET /v1/jobs/{id}/artifacts).

import { api, ApiError } from "../api.js";
import { agoTime, badge, bytes, confirmAction, dateTime, details, errorBox, h, labelList, openDialog, pageHeader, replace, tickTimes } from "../dom.js";

const TERMINAL = new Set(["completed", "failed", "cancelled", "expired"]);
const JOB_POLL_MS = 2000;
const LOG_POLL_MS = 1000;

export async function renderJob(root, { lifetime, params }) {
  const jobId = params[0];
  const path = `/v1/jobs/${encodeURIComponent(jobId)}`;
  const cancel = h("button", { type: "button", class: "danger", hidden: true }, "Cancel job");
  const status = h("div", { class: "page-status", role: "status" });
  const summary = h("section", { class: "card", "aria-label": "Job" });
  const problem = h("div");
  const result = h("section", { class: "card", hidden: true }, h("h2", {}, "Result"));
  const log = logTail();
  const artifacts = h("section", { class: "card artifacts" }, h("h2", {}, "Artifacts"), h("p", { class: "muted" }, "None yet."));
  replace(
    root,
    h("p", {}, h("a", { href: "#/jobs" }, "← Jobs")),
    pageHeader(`Job ${jobId}`, cancel),
    status,
    summary,
    problem,
    log.element,
    artifacts,
    result,
  );

  let job = null;
  let artifactsShown = null;
  cancel.addEventListener("click", async () => {
    const ok = await confirmAction(
      `Cancel job ${jobId}?`,
      "A queued job will not run; a running job's runner is told to stop it.",
      "Cancel job",
    );
    if (!ok) return;
    try {
      job = await api("POST", `${path}/cancel`);
      show(job);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      openDialog("Cancel refused", errorBox(error));
    }
  });

  function show(next) {
    job = next;
    cancel.hidden = TERMINAL.has(job.status) || job.cancelRequested;
    replace(
      summary,
      details([
        ["Status", h("span", {}, badge(job.status), job.cancelRequested && !TERMINAL.has(job.status) ? " (cancel requested)" : "")],
        ["Type", job.type],
        ["Repository", job.repositoryName],
        ["Branch", job.branch],
        ["Repository config", job.repositoryConfig],
        ["Target", job.targetId],
        ["Labels", labelList(job.labels)],
        ["Runner", job.runnerId ? h("span", { class: "mono" }, job.runnerId) : "not assigned"],
        job.pinnedRunnerId ? ["Pinned to", h("span", { class: "mono" }, job.pinnedRunnerId)] : null,
        ["Attempts", `${job.attempts} of ${job.maxAttempts}`],
        ["Created", h("span", {}, dateTime(job.createdAt), " (", agoTime(job.createdAt), ")")],
        ["Started", dateTime(job.startedAt)],
        ["Finished", dateTime(job.finishedAt)],
        ["Timeout", `${job.timeoutSeconds} s`],
      ]),
    );
    replace(
      problem,
      job.error
        ? h(
            "div",
            { class: "alert alert-error job-error", role: "alert" },
            h("strong", {}, `${job.status === "expired" ? "Expired" : "Failed"}: `),
            job.error.message,
            h("span", { class: "muted" }, ` (${job.error.code})`),
          )
        : null,
    );
    result.hidden = !job.result;
    if (job.result) replace(result, h("h2", {}, "Result"), h("pre", { class: "json", tabindex: "0" }, JSON.stringify(job.result, null, 2)));
  }

  async function refreshJob() {
    if (job && TERMINAL.has(job.status)) return;
    try {
      show(await api("GET", path));
      replace(status);
      if (TERMINAL.has(job.status) || artifactsShown === null) await refreshArtifacts();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refreshJob));
    }
  }

  async function refreshArtifacts() {
    try {
      const list = await api("GET", `${path}/artifacts`);
      artifactsShown = list.artifacts.length;
      replace(artifacts, h("h2", {}, "Artifacts"), artifactTable(list.artifacts));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(artifacts, h("h2", {}, "Artifacts"), errorBox(error, refreshArtifacts));
    }
  }

  let cursor = null;
  async function refreshLog() {
    if (log.complete) return;
    try {
      const page = await api("GET", `${path}/logs`, { query: { cursor, limit: 200 } });
      log.append(page.chunks);
      if (page.nextCursor) cursor = page.nextCursor;
      log.finish(page.complete, page.truncated, job);
      if (page.complete && job && !TERMINAL.has(job.status)) await refreshJob();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      log.fail(error);
    }
  }

  lifetime.every(1000, () => tickTimes(root));
  lifetime.poll(JOB_POLL_MS, refreshJob);
  lifetime.poll(LOG_POLL_MS, refreshLog);
}

/** The log panel: text appended as it arrives; follows the end unless the reader scrolled up. */
function logTail() {
  const pre = h("pre", { class: "log", tabindex: "0", "aria-label": "Job log", "aria-live": "off" });
  const state = h("span", { class: "log-state muted", role: "status" }, "Waiting for output…");
  const resume = h("button", { type: "button", hidden: true }, "Follow the log");
  const element = h("section", { class: "card log-card" }, h("div", { class: "log-head" }, h("h2", {}, "Log"), h("span", {}, state, resume)), pre);
  let following = true;
  const atBottom = () => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 8;
  pre.addEventListener("scroll", () => {
    following = atBottom();
    resume.hidden = following || tail.complete;
  });
  resume.addEventListener("click", () => {
    following = true;
    pre.scrollTop = pre.scrollHeight;
    resume.hidden = true;
  });
  const tail = {
    element,
    complete: false,
    append(chunks) {
      if (!chunks.length) return;
      pre.append(chunks.map((chunk) => chunk.data).join(""));
      if (following) pre.scrollTop = pre.scrollHeight;
      else resume.hidden = false;
    },
    finish(complete, truncated, job) {
      tail.complete = complete;
      const empty = !pre.textContent;
      if (complete) state.textContent = `${empty ? "No output" : "End of log"}${truncated ? " (truncated at the size limit)" : ""}.`;
      else if (!empty) state.textContent = following ? "Following…" : "Paused (scrolled up).";
      else state.textContent = job && job.status === "queued" ? "Waiting for a runner…" : "Waiting for output…";
      element.classList.toggle("done", complete);
    },
    fail(error) {
      replace(state, errorBox(error));
    },
  };
  return tail;
}

function artifactTable(artifacts) {
  if (!artifacts.length) return h("p", { class: "muted" }, "None.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "data" },
      h("thead", {}, h("tr", {}, ["Name", "Size", "Type", "Created", "Download"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        artifacts.map((artifact) =>
          h(
            "tr",
            {},
            h("td", { dataset: { label: "Name" } }, artifact.name),
            h("td", { dataset: { label: "Size" } }, bytes(artifact.size)),
            h("td", { dataset: { label: "Type" } }, artifact.contentType),
            h("td", { dataset: { label: "Created" } }, dateTime(artifact.createdAt)),
            h(
              "td",
              { dataset: { label: "Download" } },
              h("a", { href: artifact.downloadUrl, download: artifact.name, rel: "noreferrer" }, "Download"),
              h("div", { class: "muted" }, `link valid until ${dateTime(artifact.downloadExpiresAt)}`),
            ),
          ),
        ),
      ),
    ),
  );
}
