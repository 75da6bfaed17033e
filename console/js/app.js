// The console's shell: sign-in gate, hash routes (#/runners, #/jobs, #/jobs/<id>, #/readiness,
// #/webhooks, #/webhooks/<id>), the signed-in bar, and a banner for anything unexpected (never a blank page).

import { api, ApiError, loadConfig, session } from "./api.js";
import { errorBox, h, Lifetime, replace } from "./dom.js";
import { renderJob } from "./pages/job.js";
import { renderJobs } from "./pages/jobs.js";
import { renderReadiness } from "./pages/readiness.js";
import { renderRunners } from "./pages/runners.js";
import { renderSignIn } from "./pages/signin.js";
import { renderDeliveries, renderWebhooks } from "./pages/webhooks.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const banner = document.getElementById("banner");
let current = null;

const ROUTES = [
  [/^runners$/, "runners", renderRunners],
  [/^jobs$/, "jobs", renderJobs],
  [/^jobs\/([^/]+)$/, "jobs", renderJob],
  [/^readiness$/, "readiness", renderReadiness],
  [/^webhooks$/, "webhooks", renderWebhooks],
  [/^webhooks\/([^/]+)$/, "webhooks", renderDeliveries],
];

function parseHash() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  return { path: decodeURIComponent(path || "runners"), query: new URLSearchParams(query) };
}

export function navigate(path) {
  window.location.hash = `#/${path}`;
}

function showBanner(error) {
  replace(banner, errorBox(error, () => window.location.reload()));
}

async function route() {
  if (window.location.hash && !window.location.hash.startsWith("#/")) return; // the skip link's #main
  current?.stop();
  current = new Lifetime();
  replace(banner);
  const { path, query } = parseHash();
  if (!session.credential()) {
    nav.hidden = true;
    replace(who);
    renderSignIn(main, { lifetime: current, onSignedIn: signedIn, next: path === "signin" ? "runners" : path });
    return;
  }
  if (path === "signin") {
    navigate("runners");
    return;
  }
  const found = ROUTES.map(([pattern, page, render]) => [path.match(pattern), page, render]).find(([m]) => m);
  nav.hidden = false;
  for (const link of nav.querySelectorAll("a")) {
    if (found && link.dataset.page === found[1]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!found) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No such page. "), h("a", { href: "#/runners" }, "Go to runners"));
    return;
  }
  const [match, , render] = found;
  replace(main);
  try {
    await render(main, { lifetime: current, params: match.slice(1), query, navigate });
  } catch (error) {
    if (current.alive) replace(main, errorBox(error, route));
  }
}

async function signedIn(next) {
  await showWho();
  if (parseHash().path === next) route();
  else navigate(next);
}

async function showWho() {
  const signOut = h(
    "button",
    {
      type: "button",
      class: "link",
      onclick: () => {
        session.signOut();
        replace(who);
        navigate("signin");
      },
    },
    "Sign out",
  );
  replace(who, signOut);
  try {
    const license = await api("GET", "/v1/license");
    replace(who, h("span", { class: "org", title: `plan ${license.plan}` }, `${license.orgId} · ${license.plan}`), signOut);
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    // The page itself says what is wrong with the credential; the bar keeps only Sign out.
  }
}

window.addEventListener("error", (event) => showBanner(event.error || event.message));
window.addEventListener("unhandledrejection", (event) => showBanner(event.reason));
window.addEventListener("hashchange", route);
// No form ever submits the browser's way (its fields in a URL): each one's own handler sends it to the API.
document.addEventListener("submit", (event) => event.preventDefault(), true);
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  (main.querySelector("h1") || main).focus();
});

await loadConfig();
if (session.credential()) showWho();
route();
