// The other views: dead letters, topics (with a live tail), ledger, jobs and schedules, system.

import { api, ask, base, follow } from "./api.js";
import { $, agentLink, clear, el, facts, row, time } from "./dom.js";

const KEEP = 200;

// -- dead letters ---------------------------------------------------------------------------

let deadCounts = {};

function drawCounts() {
  const body = clear($("dead-counts").tBodies[0]);
  let total = 0;
  for (const [reason, count] of Object.entries(deadCounts)) {
    total += count;
    if (count) body.append(el("tr", { dataset: { reason } }, el("td", { text: reason }), el("td", { class: "count", text: count })));
  }
  $("dead-total").textContent = String(total);
}

function deadRow(letter) {
  return el("tr", { dataset: { reason: letter.reason, target: letter.recipient } },
    el("td", { text: time(letter.at) }), el("td", { text: letter.reason }),
    el("td", {}, agentLink(letter.recipient)), el("td", { text: letter.message_type }));
}

export async function refreshDeadLetters() {
  const report = await api("/v1/dead-letters");
  deadCounts = report.counts;
  drawCounts();
  const body = clear($("dead-list").tBodies[0]);
  for (const letter of report.recent.slice().reverse()) body.append(deadRow(letter));
}

// A DeadLettered runtime event: counted and listed at once, without asking again.
export function deadLettered(event) {
  deadCounts[event.reason] = (deadCounts[event.reason] || 0) + 1;
  drawCounts();
  const body = $("dead-list").tBodies[0];
  body.prepend(deadRow({ ...event, recipient: event.agent }));
  while (body.rows.length > KEEP) body.deleteRow(-1);
}

// -- topics ---------------------------------------------------------------------------------

let tailing = null;

export async function refreshTopics() {
  const reply = await ask("pubsub", "Topics");
  const body = clear($("topic-list").tBodies[0]);
  for (const topic of reply.topics) {
    const button = el("button", { type: "button", text: "Tail", onclick: () => startTail(topic.topic) });
    body.append(row(topic.topic, topic.subscribers, topic.listeners, topic.seq, button));
  }
}

export function startTail(topic) {
  stopTail();
  $("tail-topic").value = topic;
  const list = clear($("tail"));
  list.dataset.topic = topic;
  const controller = new AbortController();
  tailing = controller;
  follow(`/v1/topics/${encodeURIComponent(topic)}/events`, controller.signal, (event) => {
    let text = event.data;
    if (event.event === "message") {
      const data = JSON.parse(event.data);
      text = `#${data.seq} ${time(data.published_at)} ${JSON.stringify(data.data)}`;
    } else {
      text = `${event.event}: ${event.data}`;
    }
    list.prepend(el("li", { class: `tail-${event.event}`, text }));
    while (list.children.length > KEEP) list.lastChild.remove();
  }, (state) => { list.dataset.state = state; });
}

export function stopTail() {
  if (tailing) tailing.abort();
  tailing = null;
}

// -- ledger ---------------------------------------------------------------------------------

let ledgerStream = null;

export async function refreshLedger() {
  const reply = await ask("ledger", "Streams");
  const body = clear($("ledger-streams").tBodies[0]);
  for (const stream of reply.streams) {
    const open = el("button", { type: "button", text: "Records", onclick: () => openStream(stream.stream) });
    body.append(row(stream.stream, stream.count, stream.head, open));
  }
  if (ledgerStream) await drawRecords();
}

async function openStream(stream) {
  ledgerStream = stream;
  $("ledger-stream-title").textContent = `Stream ${stream}: the last 50 records`;
  $("ledger-verify").hidden = false;
  $("ledger-verified").textContent = "";
  await drawRecords();
}

async function drawRecords() {
  const reply = await ask("ledger", "Tail", { stream: ledgerStream, limit: 50 });
  const body = clear($("ledger-records").tBodies[0]);
  for (const record of reply.records.slice().reverse()) body.append(row(record.seq, time(record.ts), JSON.stringify(record.data)));
}

export function setUpLedger() {
  $("ledger-verify").addEventListener("click", async () => {
    const out = $("ledger-verified");
    out.textContent = "verifying…";
    const result = await ask("ledger", "Verify", { stream: ledgerStream });
    out.dataset.ok = String(result.ok);
    out.textContent = result.ok
      ? `ok: ${result.count} records, head ${result.head}`
      : `BROKEN at ${result.broken_at}: ${result.reason}`;
  });
}

// -- jobs and schedules ---------------------------------------------------------------------

export async function refreshJobs() {
  const [jobs, schedules] = await Promise.all([ask("jobs", "List", { limit: 100 }), ask("scheduler", "List")]);
  const body = clear($("job-list").tBodies[0]);
  for (const job of jobs.jobs) body.append(row(job.job_id, job.kind, job.state, job.attempts, job.error));
  const next = clear($("schedule-list").tBodies[0]);
  for (const item of schedules.items) next.append(row(item.name, item.target, item.message_type, time(item.next_at), item.every ? `${item.every}s` : "once"));
}

// -- system ---------------------------------------------------------------------------------

export async function refreshSystem() {
  const view = await api("/v1/system");
  facts($("system-facts"), [
    ["uptime", `${Math.round(view.uptime_seconds)} s`], ["running", String(view.running)],
    ["failure", view.failure], ["agents", view.agents],
    ["store", view.store.backend === "sqlite" ? `sqlite in ${view.store.data_dir}` : view.store.location],
    ["auth", view.auth ? "bearer tokens" : "off"], ["chaos", view.chaos ? "ON" : "off"],
  ]);
  $("link-metrics").href = `${base}/metrics`;
  $("link-openapi").href = `${base}/v1/openapi.json`;
  const reloads = clear($("system-reloads"));
  for (const r of view.reloads.slice().reverse()) {
    const what = r.outcome === "rejected"
      ? `rejected: ${r.problems.join("; ")}`
      : `${r.outcome}: added [${r.added}] removed [${r.removed}] changed [${r.changed}] failed [${r.failed}]`;
    reloads.append(el("li", { text: `${time(r.at)} ${what}` }));
  }
  const escalations = clear($("system-escalations"));
  for (const e of view.escalations.slice().reverse()) {
    escalations.append(el("li", { text: `${time(e.at)} ${e.kind} ${e.agent}: ${e.reason}` }));
  }
}
