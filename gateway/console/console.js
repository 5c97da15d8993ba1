// The console: a hash router over the views, the login when the gateway asks for a token,
// and the one runtime event stream (GET /v1/events) that keeps every view live.

import { Unauthorized, api, follow, onUnauthorized, setToken, token } from "./api.js";
import { openAgent, refreshAgent, setUpSendForm } from "./agent.js";
import { $, el, showError, time } from "./dom.js";
import {
  deadLettered, refreshDeadLetters, refreshJobs, refreshLedger, refreshSystem, refreshTopics,
  setUpLedger, startTail, stopTail,
} from "./panels.js";
import { refreshTree, treeEvent } from "./tree.js";

const POLL_MS = 2000;
const FEED = 100;
const views = {
  tree: refreshTree, agent: refreshAgent, "dead-letters": refreshDeadLetters,
  topics: refreshTopics, ledger: refreshLedger, jobs: refreshJobs, system: refreshSystem,
};
let current = "tree";
let events = null;
let timer = null;
let refreshing = false;
let again = false;

function route() {
  const [, view, arg] = (location.hash || "#/tree").split("/");
  current = view in views ? view : "tree";
  if (current === "agent") openAgent(decodeURIComponent(arg || ""));
  if (current !== "topics") stopTail();
  for (const section of document.querySelectorAll("main .view")) section.hidden = section.id !== `view-${current}`;
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.dataset.view === current);
  refresh();
}

// Redraw the current view (one refresh at a time; a request meanwhile runs once more after).
async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    await views[current]();
    showError(null);
  } catch (error) {
    if (!(error instanceof Unauthorized)) showError(error);
  } finally {
    refreshing = false;
  }
  if (again) {
    again = false;
    refresh();
  }
}

function onRuntimeEvent(message) {
  if (message.event === "gap" || message.event === "dropped") {
    refresh();
    return;
  }
  const event = JSON.parse(message.data);
  const feed = $("event-feed");
  const subject = event.agent || event.supervisor || "";
  feed.prepend(el("li", { dataset: { type: event.type, agent: subject }, text: `${time(event.at)} ${event.type} ${subject} ${event.reason || event.error || ""}` }));
  while (feed.children.length > FEED) feed.lastChild.remove();
  const treeChanged = treeEvent(event.type, event);
  if (event.type === "DeadLettered") deadLettered(event);
  if ((treeChanged && current === "tree") || current === "system" || current === "agent") refresh();
}

function setLive(state) {
  const live = $("live");
  live.textContent = state;
  live.className = state === "live" ? "live-on" : "live-off";
}

function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = !token();
  route();
  if (!events) {
    events = new AbortController();
    follow("/v1/events", events.signal, onRuntimeEvent, setLive);
  }
  if (!timer) timer = setInterval(refresh, POLL_MS);
}

function stop() {
  if (events) events.abort();
  events = null;
  clearInterval(timer);
  timer = null;
  stopTail();
}

function askForToken(message) {
  stop();
  $("main").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
  $("token").focus();
}

onUnauthorized(() => askForToken(token() ? "the token was refused" : ""));

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  setToken($("token").value);
  try {
    await api("/v1/system");
  } catch (error) {
    setToken(null);
    $("login-error").textContent = error instanceof Unauthorized ? "the token was refused" : String(error.message);
    return;
  }
  $("token").value = "";
  start();
});

$("logout").addEventListener("click", () => {
  setToken(null);
  askForToken("");
});

$("tail-form").addEventListener("submit", (event) => {
  event.preventDefault();
  startTail($("tail-topic").value);
});
$("tail-stop").addEventListener("click", stopTail);
window.addEventListener("hashchange", route);
setUpSendForm();
setUpLedger();

// First contact: with tokens configured and none kept, the gateway answers 401 and the
// login form shows (onUnauthorized).
api("/v1/system").then(start, (error) => {
  if (!(error instanceof Unauthorized)) {
    start();
    showError(error);
  }
});
