// The supervision tree (GET /v1/tree), redrawn in place as it changes; a crash or a restart
// (from the runtime event stream) makes its node flash.

import { api } from "./api.js";
import { $, agentLink, el } from "./dom.js";

const FLASH_MS = 4000;
const flashing = new Map(); // agent name -> until (ms)
const pending = new Map(); // agent name -> status shown until the next tree says otherwise

export function statusOf(node) {
  if (pending.has(node.name)) return pending.get(node.name);
  if (node.status === "running" && node.impaired) return "impaired";
  if (node.status === "running" && node.degraded) return "degraded";
  return node.status;
}

function drawNode(node) {
  const status = statusOf(node);
  // Workers, pools and entity kinds have a page; a supervisor is its children.
  const label = node.kind === "supervisor" ? el("span", { class: "name", text: node.name }) : agentLink(node.name);
  const details = [node.kind];
  if (node.strategy) details.push(node.strategy);
  if (node.dynamic) details.push("dynamic");
  if (node.placement && node.placement !== "local") details.push(node.placement);
  const box = el(
    "div",
    {
      class: `node status-${status}` + (flashing.get(node.name) > Date.now() ? " flash" : ""),
      dataset: { name: node.name, status, kind: node.kind, restarts: String(node.restarts) },
      title: node.last_failure || "",
    },
    el("span", { class: `dot status-${status}` }),
    label,
    el("span", { class: "kind", text: details.join(" · ") }),
    el("span", { class: "status", text: status }),
    el("span", { class: "restarts", text: `restarts ${node.restarts}` }),
  );
  const item = el("li", {}, box);
  if (node.children && node.children.length) {
    item.append(el("ul", {}, ...node.children.map(drawNode)));
  }
  return item;
}

export async function refreshTree() {
  const root = await api("/v1/tree");
  pending.clear();
  $("tree").replaceChildren(drawNode(root));
  return root;
}

function mark(name, status) {
  flashing.set(name, Date.now() + FLASH_MS);
  if (status) pending.set(name, status);
  const node = document.querySelector(`#tree .node[data-name="${CSS.escape(name)}"]`);
  if (!node) return;
  node.classList.remove("flash");
  void node.offsetWidth; // restart the animation
  node.classList.add("flash");
  if (status) {
    for (const cls of [...node.classList]) if (cls.startsWith("status-")) node.classList.remove(cls);
    node.classList.add(`status-${status}`);
    node.dataset.status = status;
    node.querySelector(".status").textContent = status;
  }
}

// A runtime event: flash (and show as restarting) what it names; true if the tree changed.
export function treeEvent(type, event) {
  switch (type) {
    case "AgentCrashedEvent":
      mark(event.agent, "restarting");
      return true;
    case "AgentRestarted":
      pending.delete(event.agent);
      mark(event.agent, null);
      return true;
    case "SupervisorGaveUp":
      mark(event.supervisor, "stopped");
      return true;
    case "AgentAbandoned":
    case "AgentDeclaredHung":
    case "DynamicChildStarted":
    case "DynamicChildTerminated":
      mark(event.agent, null);
      return true;
    case "TreeReloaded":
      return true;
    default:
      return false;
  }
}
