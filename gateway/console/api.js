// The console's only way to the system: the gateway's public HTTP API (/v1/..., /metrics),
// with the bearer token when the gateway asks for one. Streams are read with a streaming
// fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = "vibe-console-token";

// The gateway may be mounted under a prefix (root_path): the API is beside /ui/.
export const base = location.pathname.replace(/\/ui(\/.*)?$/, "");

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? `${status}: ${problem.detail}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

const authListeners = [];

export function onUnauthorized(listener) {
  authListeners.push(listener);
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const bearer = token();
  if (bearer) out.Authorization = `Bearer ${bearer}`;
  return out;
}

async function failed(response) {
  if (response.status === 401) {
    for (const listener of authListeners) listener();
    throw new Unauthorized("a valid bearer token is required");
  }
  let problem = null;
  try {
    problem = await response.json();
  } catch (_) {
    problem = null;
  }
  throw new ApiError(response.status, problem);
}

// GET (or POST with a JSON body) an API path; the decoded JSON (null for 204).
export async function api(path, body) {
  const init = { headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.method = "POST";
    init.headers = headers({ "Content-Type": "application/json" });
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(base + path, init);
  if (!response.ok) await failed(response);
  if (response.status === 204) return null;
  return response.json();
}

// Ask an agent: POST /v1/agents/{name}/{type}.
export function ask(agent, type, body) {
  return api(`/v1/agents/${encodeURIComponent(agent)}/${encodeURIComponent(type)}`, body ?? {});
}

export async function metricsText() {
  const response = await fetch(base + "/metrics", { cache: "no-store" });
  if (!response.ok) await failed(response);
  return response.text();
}

// Follow an SSE stream until `signal` aborts: onEvent({event, id, data}) per event, and
// onState("live" | "reconnecting") as the connection comes and goes. Reconnects with
// Last-Event-ID after the delay the stream asked for (retry:).
export async function follow(path, signal, onEvent, onState) {
  let lastId = null;
  let retry = 3000;
  while (!signal.aborted) {
    try {
      const extra = { Accept: "text/event-stream" };
      if (lastId !== null) extra["Last-Event-ID"] = lastId;
      const response = await fetch(base + path, { headers: headers(extra), signal, cache: "no-store" });
      if (!response.ok) await failed(response);
      onState("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const parsed = parseBlock(block);
          if (parsed.retry) retry = parsed.retry;
          if (parsed.id !== null) lastId = parsed.id;
          if (parsed.data !== null) onEvent(parsed);
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof Unauthorized) {
        onState("unauthorized");
        return;
      }
    }
    if (signal.aborted) return;
    onState("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, retry));
  }
}

function parseBlock(block) {
  const out = { event: "message", id: null, data: null, retry: 0 };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") out.event = value;
    else if (field === "id") out.id = value;
    else if (field === "data") data.push(value);
    else if (field === "retry") out.retry = Number(value) || 0;
  }
  if (data.length) out.data = data.join("\n");
  return out;
}
