// DOM helpers. Text from the system (agent names, messages, errors) only ever goes in as
// text (textContent, attributes): never parsed as HTML.

export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function facts(node, pairs) {
  clear(node);
  for (const [key, value] of pairs) {
    node.append(el("dt", { text: key }), el("dd", { text: value ?? "—", dataset: { fact: key } }));
  }
}

export function time(seconds) {
  if (!seconds) return "—";
  return new Date(seconds * 1000).toLocaleTimeString();
}

export function row(...cells) {
  return el("tr", {}, ...cells.map((cell) => (cell instanceof Node ? el("td", {}, cell) : el("td", { text: cell ?? "" }))));
}

export function agentLink(name) {
  return el("a", { href: `#/agent/${encodeURIComponent(name)}`, text: name });
}

export function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}
