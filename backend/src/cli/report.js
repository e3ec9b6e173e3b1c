// Draws a meshlog run report from the JSON embedded in the page (no network, no libraries).
// Every text from the run goes in through textContent, never as markup.
"use strict";
const R = JSON.parse(document.getElementById("report-data").textContent);
const SVG = "http://www.w3.org/2000/svg";
const KIND_COLOURS = { EVENT: "#1f77b4", SUMMARY: "#2ca02c", DIGEST: "#9467bd", FILTER: "#ff7f0e", SKETCH: "#8c564b" };
const STATE_COLOURS = { up: "#cfe8cf", offline: "#d9d9d9", crashed: "#f4b6b6" };

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}
function tip(node, text) { node.appendChild(svg("title", {}, text)); return node; }
function secs(us) { return (us / 1e6).toFixed(us % 1e6 === 0 ? 0 : 3) + "s"; }
function section(id, title) {
  const s = el("section", { id });
  s.appendChild(el("h2", {}, title));
  document.getElementById("report").appendChild(s);
  return s;
}

function header() {
  const s = section("summary", "Result");
  s.appendChild(el("p", { class: R.passed ? "pass" : "fail" }, R.passed ? "PASS" : `FAIL (${R.failures.length} checks failed)`));
  const facts = [`virtual time ${secs(R.virtual_time_us)}`, `${R.events} events appended`,
    R.heal_at_us === null ? "no heal" : `healed at ${secs(R.heal_at_us)}`, `digest ${R.digest}`];
  s.appendChild(el("p", { class: "facts" }, facts.join(" · ")));
  if (R.failures.length) {
    const ul = s.appendChild(el("ul", { class: "failures" }));
    for (const f of R.failures) ul.appendChild(el("li", {}, f));
  }
}

// Faults, each device's state and event count over virtual time, and when it converged.
function timeline() {
  const s = section("timeline", "Timeline: faults, device state, events held, convergence");
  const W = 1160, left = 90, right = 20, laneH = 46, top = 34;
  const H = top + R.devices.length * laneH + 30;
  const end = Math.max(R.virtual_time_us, 1);
  const x = (us) => left + (W - left - right) * Math.min(us, end) / end;
  const root = s.appendChild(svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart" }));
  const maxEvents = Math.max(1, ...R.devices.map((d) => d.events.length ? d.events[d.events.length - 1][1] : 0));
  R.devices.forEach((d, i) => {
    const y = top + i * laneH;
    const lane = root.appendChild(svg("g", { class: "lane", "data-device": d.name }));
    lane.appendChild(svg("text", { x: 4, y: y + laneH / 2 + 4, class: "label" }, d.name));
    const states = [[0, "up"], ...d.states, [end, null]];
    for (let k = 0; k + 1 < states.length; k++) {
      const [from, state] = states[k];
      const to = states[k + 1][0];
      tip(lane.appendChild(svg("rect", { x: x(from), y: y + 4, width: Math.max(0.5, x(to) - x(from)), height: laneH - 8,
        fill: STATE_COLOURS[state], class: `state state-${state}` })), `${d.name} ${state} from ${secs(from)}`);
    }
    const pts = d.events.map(([t, n]) => [x(t), y + laneH - 6 - (laneH - 12) * n / maxEvents]);
    let path = "";
    pts.forEach(([px, py], k) => { path += k === 0 ? `M${px},${py}` : `H${px}V${py}`; });
    if (pts.length) path += `H${x(end)}`;
    const last = d.events.length ? d.events[d.events.length - 1][1] : 0;
    tip(lane.appendChild(svg("path", { d: path, class: "events" })), `${d.name}: ${last} events held at the end`);
    if (d.converged_at_us !== null) {
      const cx = x(d.converged_at_us), cy = y + laneH / 2;
      tip(lane.appendChild(svg("path", { d: `M${cx},${cy - 7}l7,7l-7,7l-7,-7z`, class: "converged" })),
        `${d.name} converged at ${secs(d.converged_at_us)}`);
    }
  });
  const axis = root.appendChild(svg("g", { class: "axis" }));
  for (let k = 0; k <= 10; k++) {
    const t = end * k / 10;
    axis.appendChild(svg("text", { x: x(t), y: H - 8, "text-anchor": "middle" }, secs(Math.round(t))));
  }
  R.faults.forEach((f, k) => {
    const g = root.appendChild(svg("g", { class: "fault-mark" }));
    g.appendChild(svg("line", { x1: x(f.at_us), x2: x(f.at_us), y1: 12, y2: H - 22 }));
    g.appendChild(svg("text", { x: x(f.at_us) + 2, y: 12 + (k % 2) * 11 }, f.text.replace(/^at = "[^"]*"; /, "").slice(0, 40)));
    tip(g, `${secs(f.at_us)} ${f.text}`);
  });
  if (R.heal_at_us !== null) {
    const g = root.appendChild(svg("g", { class: "heal-mark" }));
    g.appendChild(svg("line", { x1: x(R.heal_at_us), x2: x(R.heal_at_us), y1: 12, y2: H - 22 }));
    tip(g, `heal (end of workload) at ${secs(R.heal_at_us)}`);
  }
  s.appendChild(el("p", { class: "legend" }, "Lanes: green up, grey offline, red crashed; the line is events held " +
    `(top = ${maxEvents}); ◆ converged; dashed: faults; blue: the heal.`));
}

// Packets by kind on every directed link.
function links() {
  const s = section("links", "Packets by kind per link");
  const table = s.appendChild(el("table", { class: "links" }));
  const head = table.appendChild(el("tr"));
  for (const h of ["link", "kind", "sent", "delivered", "dropped (by cause)"]) head.appendChild(el("th", {}, h));
  for (const row of R.links) {
    const tr = table.appendChild(el("tr", { class: "link-row" }));
    tr.appendChild(el("td", {}, `${row.from} → ${row.to}`));
    tr.appendChild(el("td", { style: `color:${KIND_COLOURS[row.kind] || "#333"}` }, row.kind));
    tr.appendChild(el("td", { class: "num" }, `${row.sent_packets} (${row.sent_bytes} B)`));
    tr.appendChild(el("td", { class: "num" }, `${row.delivered_packets} (${row.delivered_bytes} B)`));
    tr.appendChild(el("td", {}, Object.entries(row.dropped).map(([c, n]) => `${c} ${n}`).join(", ")));
  }
  s.appendChild(el("p", { class: "legend" }, "Sent counts what nodes transmitted; delivered also counts replays and " +
    "hostile and forged packets; a receiver's drops (rx_*) are booked on the link that brought the datagram."));
}

// The ids a failed run lacks, who holds them, and the last packets that named them.
function missing() {
  if (!R.missing.length) return;
  const s = section("missing", "Missing events");
  for (const m of R.missing) {
    s.appendChild(el("h3", {}, `${m.device} lacks ${m.count} events` + (m.count > m.ids.length ? ` (first ${m.ids.length} listed)` : "")));
    const table = s.appendChild(el("table", { class: "missing" }));
    const head = table.appendChild(el("tr"));
    for (const h of ["id", "author", "appended", "held by", "last packets that named it"]) head.appendChild(el("th", {}, h));
    for (const id of m.ids) {
      const tr = table.appendChild(el("tr", { class: "missing-id" }));
      tr.appendChild(el("td", { class: "id" }, id.id));
      tr.appendChild(el("td", {}, id.author));
      tr.appendChild(el("td", {}, secs(id.appended_at_us)));
      tr.appendChild(el("td", {}, id.held_by.join(", ") || "nobody"));
      tr.appendChild(el("td", {}, id.carriers.map((c) => `${secs(c.at_us)} ${c.from}→${c.to} (${c.fate})`).join("; ") ||
        "none named it (a packet names its first three ids)"));
    }
  }
}

// Packets between devices in the window: time runs down, one lifeline per device.
function sequence() {
  const q = R.sequence;
  const s = section("sequence", `Sequence diagram, ${secs(q.start_us)} to ${secs(q.end_us)}`);
  const sampled = q.stride > 1 ? `; sampled: 1 in ${q.stride} is drawn (${q.arrows.length})` : "";
  const marked = q.marks_stride > 1 ? `, 1 in ${q.marks_stride} marked` : "";
  s.appendChild(el("p", { class: "legend" }, `${q.total} datagrams put on the wire or lost in the window${sampled}. ` +
    `× lost on the way; ● ${q.marks_total} refused by the receiver${marked}. Idle stretches are squeezed ` +
    "(grey line: more than a second); hover an arrow for its packet."));
  const key = s.appendChild(el("p", { class: "legend kinds" }));
  for (const [kind, colour] of Object.entries(KIND_COLOURS)) key.appendChild(el("span", { style: `color:${colour}` }, `■ ${kind} `));
  // Time runs down, but idle stretches are squeezed to GAP_US so that a 10 ms flight is
  // visible in a minute-long window; the axis labels say the real times.
  const GAP_US = 100000;
  const instants = new Set();
  for (const a of q.arrows) { instants.add(a.at_us); if (a.arrives_us !== null) instants.add(a.arrives_us); }
  for (const m of q.marks) instants.add(m.at_us);
  const times = [...instants].sort((a, b) => a - b);
  const pos = new Map();
  let acc = 0;
  times.forEach((t, k) => { if (k > 0) acc += Math.min(t - times[k - 1], GAP_US) + 1000; pos.set(t, acc); });
  const n = R.devices.length, W = 1160, top = 30;
  const H = Math.min(2400, Math.max(300, times.length * 3));
  const col = (i) => 60 + (W - 120) * (n === 1 ? 0.5 : i / (n - 1));
  const y = (us) => top + (H - top - 10) * (pos.get(us) || 0) / Math.max(acc, 1);
  const root = s.appendChild(svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "chart" }));
  R.devices.forEach((d, i) => {
    root.appendChild(svg("text", { x: col(i), y: 16, "text-anchor": "middle", class: "label" }, d.name));
    root.appendChild(svg("line", { x1: col(i), x2: col(i), y1: top, y2: H - 10, class: "lifeline" }));
  });
  let labelled = -Infinity;
  times.forEach((t, k) => {
    const squeezed = k > 0 && t - times[k - 1] > 10 * GAP_US;
    if (squeezed) root.appendChild(svg("line", { x1: 50, x2: W - 10, y1: y(t) - 2, y2: y(t) - 2, class: "gap" }));
    if (squeezed || y(t) - labelled >= 40) {
      root.appendChild(svg("text", { x: 2, y: y(t) + 4, class: "tick" }, secs(t)));
      labelled = y(t);
    }
  });
  for (const a of q.arrows) {
    const x1 = col(a.from), x2 = col(a.to), y1 = y(a.at_us);
    const lost = a.arrives_us === null;
    const x2e = lost ? (x1 + x2) / 2 : x2, y2 = lost ? y1 + 6 : y(a.arrives_us);
    const g = root.appendChild(svg("g", { class: `arrow ${lost ? "lost" : "sent"}` }));
    g.appendChild(svg("line", { x1, y1, x2: x2e, y2, stroke: KIND_COLOURS[a.kind] || "#333" }));
    if (lost) g.appendChild(svg("text", { x: x2e - 4, y: y2 + 4, class: "x" }, "×"));
    tip(g, `${secs(a.at_us)} ${R.devices[a.from].name}→${R.devices[a.to].name} ${a.kind} ${a.bytes} B ` +
      `${lost ? "lost: " + a.fate : "arrives " + secs(a.arrives_us) + (a.fate === "node" ? "" : " (" + a.fate + ")")}` +
      (a.note ? ` · ${a.note}` : ""));
  }
  for (const m of q.marks) {
    tip(root.appendChild(svg("circle", { cx: col(m.device), cy: y(m.at_us), r: 3, class: "mark" })),
      `${secs(m.at_us)} ${R.devices[m.device].name} refused: ${m.code}`);
  }
}

header();
timeline();
links();
missing();
sequence();
document.body.setAttribute("data-rendered", "yes");
