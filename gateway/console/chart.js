// A small SVG line chart of samples over a time window, and the Prometheus text format read
// for one agent's series (handler duration percentiles from the histogram's buckets).

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

// samples: [{t: ms, depth, rate}]; draws both series over the last `windowMs`.
export function drawChart(target, samples, windowMs) {
  const width = 600, height = 120, pad = 4;
  const now = Date.now();
  target.replaceChildren(svg("rect", { x: 0, y: 0, width, height, class: "chart-bg" }));
  const recent = samples.filter((s) => now - s.t <= windowMs);
  for (const [key, cls] of [["depth", "depth"], ["rate", "rate"]]) {
    const top = Math.max(1, ...recent.map((s) => s[key]));
    const points = recent.map((s) => {
      const x = width - ((now - s.t) / windowMs) * width;
      const y = height - pad - (s[key] / top) * (height - 2 * pad);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    if (points.length) target.append(svg("polyline", { points: points.join(" "), class: `line ${cls}` }));
    const label = svg("text", { x: 4, y: key === "depth" ? 14 : 28, class: `label ${cls}` });
    label.textContent = `${key === "depth" ? "depth" : "rate"} max ${top.toFixed(key === "rate" ? 2 : 0)}`;
    target.append(label);
  }
}

function labels(text) {
  const out = {};
  for (const match of text.matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[match[1]] = match[2];
  return out;
}

// The lines of the exposition that carry agent="name".
export function agentLines(text, name) {
  const needle = `agent="${name.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
  return text.split("\n").filter((line) => !line.startsWith("#") && line.includes(needle));
}

// {p50, p90, p99, count} in seconds from vibe_message_duration_seconds_bucket (upper bounds).
export function percentiles(lines) {
  const buckets = [];
  let count = 0;
  for (const line of lines) {
    const space = line.lastIndexOf(" ");
    const value = Number(line.slice(space + 1));
    if (line.startsWith("vibe_message_duration_seconds_bucket{")) {
      const le = labels(line).le;
      buckets.push([le === "+Inf" ? Infinity : Number(le), value]);
    } else if (line.startsWith("vibe_message_duration_seconds_count{")) {
      count = value;
    }
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const at = (q) => {
    if (!count) return null;
    const wanted = q * count;
    const found = buckets.find(([, cumulative]) => cumulative >= wanted);
    return found ? found[0] : null;
  };
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), count };
}
