// Readiness: may a scan start now (GET /v1/runners/readiness, for a target and/or a runner), as a
// checklist with the API's reasons, and the license's limits against usage (GET /v1/license).

import { api, ApiError } from "../api.js";
import { errorBox, h, pageHeader, replace } from "../dom.js";

const POLL_MS = 3000;
const REASONS = {
  license_inactive: "The license is not active.",
  concurrent_job_limit_reached: "Every concurrent-job slot of the license is in use.",
  runner_limit_exceeded: "More runners are registered than the license allows.",
  visibility_not_allowed: "The license does not allow targets of this visibility.",
  runner_offline: "The chosen runner is offline.",
  runner_busy: "The chosen runner has no free slot.",
  no_online_runner: "No runner is online.",
  all_runners_busy: "Every online runner is busy.",
};

export async function renderReadiness(root, { lifetime }) {
  const target = h("select", { id: "readiness-target", name: "targetId" }, h("option", { value: "" }, "Any target"));
  const runner = h("select", { id: "readiness-runner", name: "runnerId" }, h("option", { value: "" }, "Any runner"));
  const status = h("div", { class: "page-status", role: "status" });
  const checklist = h("section", { class: "card" });
  const limits = h("section", { class: "card" });
  replace(
    root,
    pageHeader("Readiness", h("label", { class: "inline" }, h("span", {}, "Target"), target), h("label", { class: "inline" }, h("span", {}, "Runner"), runner)),
    status,
    h("div", { class: "grid-2" }, checklist, limits),
  );
  for (const select of [target, runner]) select.addEventListener("change", refresh);

  const [targets, runners] = await Promise.allSettled([
    api("GET", "/v1/targets", { query: { limit: 200 } }),
    api("GET", "/api/runners", { query: { limit: 200 } }),
  ]);
  if (targets.status === "fulfilled") target.append(...targets.value.targets.map((t) => h("option", { value: t.id }, `${t.name} (${t.visibility})`)));
  if (runners.status === "fulfilled") runner.append(...runners.value.data.map((r) => h("option", { value: r._id }, r.name)));

  async function refresh() {
    try {
      const [readiness, license] = await Promise.all([
        api("GET", "/v1/runners/readiness", { query: { targetId: target.value, runnerId: runner.value } }),
        api("GET", "/v1/license"),
      ]);
      replace(status);
      showChecklist(checklist, readiness, Boolean(target.value), Boolean(runner.value));
      showLimits(limits, license);
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      replace(status, errorBox(error, refresh));
    }
  }
  lifetime.poll(POLL_MS, refresh);
}

function check(ok, title, reasons) {
  return h(
    "li",
    { class: ok ? "check ok" : "check fail", dataset: { check: title } },
    h("span", { class: "check-mark", "aria-hidden": "true" }, ok ? "✓" : "✗"),
    h("span", { class: "visually-hidden" }, ok ? "Passed: " : "Failed: "),
    h("span", {}, h("strong", {}, title), reasons.length ? h("ul", { class: "reasons" }, reasons.map((code) => h("li", {}, REASONS[code] || code, h("span", { class: "muted mono" }, ` ${code}`)))) : null),
  );
}

function showChecklist(section, readiness, targetChosen, runnerChosen) {
  const reasons = new Set(readiness.reasons);
  const pick = (...codes) => codes.filter((code) => reasons.has(code));
  const license = readiness.license;
  const items = [
    check(!reasons.has("license_inactive"), `License active (${license.plan}, ${license.licenseState})`, pick("license_inactive")),
    check(!reasons.has("concurrent_job_limit_reached"), "A concurrent-job slot is free", pick("concurrent_job_limit_reached")),
    check(!reasons.has("runner_limit_exceeded"), "Runners within the license's limit", pick("runner_limit_exceeded")),
    targetChosen ? check(readiness.visibilityOk, `Target visibility allowed (${readiness.visibility})`, pick("visibility_not_allowed")) : null,
    check(
      readiness.runnerOk,
      runnerChosen ? "The chosen runner can take a job" : "A runner is online with a free slot",
      pick("runner_offline", "runner_busy", "no_online_runner", "all_runners_busy"),
    ),
  ];
  const known = new Set(Object.keys(REASONS));
  const other = readiness.reasons.filter((code) => !known.has(code));
  replace(
    section,
    h("h2", {}, "Can a scan start now?"),
    h("p", { class: readiness.ready ? "verdict ready" : "verdict not-ready", dataset: { ready: String(readiness.ready) } }, readiness.ready ? "Ready" : "Not ready"),
    h("ul", { class: "checklist" }, items, other.length ? check(false, "Other", other) : null),
    readiness.selectedRunnerId ? h("p", { class: "muted" }, "Next job would go to ", h("span", { class: "mono" }, readiness.selectedRunnerId)) : null,
  );
}

function usage(title, used, limit, id) {
  const meter = h("meter", { id, min: "0", max: String(Math.max(limit, 1)), value: String(Math.min(used, Math.max(limit, 1))), low: String(Math.max(limit, 1) * 0.7), high: String(Math.max(limit, 1) * 0.9), optimum: "0" });
  return h("div", { class: "usage", dataset: { usage: id } }, h("label", { for: id }, h("span", {}, title), h("span", { class: "mono" }, `${used} of ${limit}`)), meter);
}

function showLimits(section, license) {
  replace(
    section,
    h("h2", {}, `License: ${license.plan}`),
    usage("Runners", license.usage.runners, license.runnerLimit, "usage-runners"),
    usage("Active jobs", license.usage.activeJobs, license.concurrentJobLimit, "usage-jobs"),
    usage("Targets", license.usage.targets, license.targetLimit, "usage-targets"),
    h("p", { class: "muted" }, `Target visibilities allowed: ${license.allowedTargetVisibilities.join(", ")}`),
  );
}
