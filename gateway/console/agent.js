// One agent's page: GET /v1/agents/{name} every few seconds (status, incarnation, mailbox,
// rate, last failure, message types and schemas), /metrics for its series, /v1/system for a
// hung incarnation's stack, and a form that sends a message through POST /v1/agents/{name}/{type}.

import { ApiError, api, ask, metricsText } from "./api.js";
import { agentLines, drawChart, percentiles } from "./chart.js";
import { $, clear, el, facts, time } from "./dom.js";

const WINDOW_MS = 5 * 60 * 1000;
const samples = new Map(); // agent -> [{t, depth, rate}]
let shown = null; // the agent whose page is open
let formFor = null;

function schemaFor(schemas, type) {
  if (schemas[type]) return schemas[type];
  const key = Object.keys(schemas).find((k) => k.endsWith("." + type));
  return key ? schemas[key] : null;
}

function resolve(schema, root) {
  let node = schema;
  for (let i = 0; node && node.$ref && i < 20; i++) {
    const name = node.$ref.split("/").pop();
    node = (root.$defs || {})[name];
  }
  return node || {};
}

// A body to start from: every required field with a value of its type.
export function skeleton(schema) {
  const root = resolve(schema, schema);
  const out = {};
  for (const field of root.required || []) {
    if (field === "type") continue;
    const prop = resolve((root.properties || {})[field] || {}, schema);
    if ("default" in prop) out[field] = prop.default;
    else if ("const" in prop) out[field] = prop.const;
    else if (prop.enum) out[field] = prop.enum[0];
    else {
      const type = Array.isArray(prop.type) ? prop.type[0] : prop.type;
      out[field] = { string: "", integer: 0, number: 0, boolean: false, array: [], object: {}, null: null }[type] ?? null;
    }
  }
  return out;
}

function drawForm(view) {
  const select = clear($("send-type"));
  for (const type of view.messages) select.append(el("option", { value: type, text: type }));
  const fill = () => {
    const schema = schemaFor(view.schemas, select.value);
    $("send-body").value = JSON.stringify(schema ? skeleton(schema) : {}, null, 2);
  };
  select.onchange = fill;
  fill();
  const list = clear($("agent-schemas"));
  for (const type of view.messages) {
    const schema = schemaFor(view.schemas, type);
    list.append(
      el("details", { class: "schema", dataset: { type } },
        el("summary", { text: type }),
        el("pre", { text: JSON.stringify(schema, null, 2) })),
    );
  }
  $("send-result").textContent = "";
  formFor = view.name;
}

export function setUpSendForm() {
  $("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = $("send-result");
    const type = $("send-type").value;
    let body;
    try {
      body = JSON.parse($("send-body").value || "{}");
    } catch (error) {
      result.textContent = `not JSON: ${error.message}`;
      result.dataset.outcome = "invalid";
      return;
    }
    result.textContent = "sending…";
    result.dataset.outcome = "pending";
    try {
      const reply = await ask(shown, type, body);
      result.textContent = reply === null ? "204 No Content" : JSON.stringify(reply, null, 2);
      result.dataset.outcome = "ok";
    } catch (error) {
      const problem = error instanceof ApiError ? error.problem : null;
      result.textContent = problem ? JSON.stringify(problem, null, 2) : String(error.message || error);
      result.dataset.outcome = "error";
    }
  });
}

function record(view) {
  const list = samples.get(view.name) || [];
  const now = Date.now();
  list.push({ t: now, depth: view.mailbox_size, rate: view.rate });
  while (list.length && now - list[0].t > WINDOW_MS) list.shift();
  samples.set(view.name, list);
  return list;
}

function seconds(value) {
  if (value === null || value === undefined) return "—";
  if (value === Infinity) return "> largest bucket";
  return value < 1 ? `≤ ${(value * 1000).toFixed(value < 0.001 ? 2 : 1)} ms` : `≤ ${value} s`;
}

export function openAgent(name) {
  shown = name;
  formFor = null;
  $("agent-name").textContent = name;
  for (const id of ["agent-failure", "agent-stack", "agent-metrics", "send-result"]) $(id).textContent = "";
}

export async function refreshAgent() {
  const name = shown;
  if (!name) return;
  const view = await api(`/v1/agents/${encodeURIComponent(name)}`);
  if (name !== shown) return;
  const status = view.status === "running" && view.impaired ? "impaired" : view.status === "running" && view.degraded ? "degraded" : view.status;
  const badge = $("agent-status");
  badge.textContent = status;
  badge.className = `badge status-${status}`;
  facts($("agent-facts"), [
    ["kind", view.kind], ["class", view.agent], ["placement", view.placement],
    ["incarnation", view.incarnation], ["restarts", view.restarts],
    ["mailbox depth", view.mailbox_size], ["handled", view.handled],
    ["messages/s", view.rate.toFixed(2)], ["degraded", view.degraded], ["impaired", view.impaired],
  ]);
  drawChart($("agent-chart"), record(view), WINDOW_MS);
  if (formFor !== name) drawForm(view);
  $("agent-failure").textContent = view.last_failure
    ? `${time(view.last_failure_at)} ${view.last_failure}\n\n${view.last_traceback || ""}`
    : "none";
  const [text, system] = await Promise.all([metricsText(), api("/v1/system")]);
  if (name !== shown) return;
  const lines = agentLines(text, name);
  $("agent-metrics").textContent = lines.join("\n");
  const p = percentiles(lines);
  facts($("agent-durations"), [["p50", seconds(p.p50)], ["p90", seconds(p.p90)], ["p99", seconds(p.p99)], ["messages timed", p.count]]);
  const hung = system.escalations.filter((e) => e.agent === name && e.stack).pop();
  $("agent-stack").textContent = hung ? `${time(hung.at)} ${hung.reason}\n${hung.stack}` : "none";
}
