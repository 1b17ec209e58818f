// The bench page: the board's console, its MQTT messages, its status and the echo loop, fed
// live by the server's event stream (/api/events) or, for a finished run, by one test's
// timeline (/api/runs/TEST/events) played back. Both feed the same handle(event), so live and
// after the fact look the same. Every text from the board is set with textContent: never markup.
//
// What the rig decides, the page does not work out again: a console line that is one of the
// firmware's @rig lines comes with its event's name (event.rig_event, from rig/events.py), and a
// message or injection of the echo loop with its lane's facts (event.echo: lane, colour, count,
// period, rate, stale_after; from rig/report/echo_lanes.py, the rules of the report's plot too).
// The plot here only places marks: it has no palette and no lane rule of its own.
"use strict";

(function () {
  // Bounds, so that a page left open for a day stays fast.
  const MAX_CONSOLE = 3000;
  const MAX_MESSAGES = 2000;
  const MAX_LOG = 50;
  // A console line can be kilobytes of raw-REPL traffic; its start says what it was.
  const MAX_LINE = 2000;
  // Arrival times kept per lane for its marks (its count, from the rig, goes on).
  const MAX_ARRIVALS = 5000;
  // The echo plot's time axis: the last PLOT_WINDOW seconds (a replayed test shorter than that:
  // all of it, so that its loop is not squeezed against the right edge).
  const PLOT_WINDOW = 60;
  const MIN_WINDOW = 1;
  const PLOT_W = 600;
  const PLOT_H = 22;
  const SVG = "http://www.w3.org/2000/svg";
  // Control characters (tab and newline aside) are invisible: they are shown as \xNN.
  const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;
  const HAS_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

  const $ = (id) => document.getElementById(id);

  const state = {
    info: {},
    echoTopic: "",
    // Server time minus this browser's, from /api/info: the plot's "now" is the rig's clock.
    skew: 0,
    // The rig's lane number -> lane, in order of first appearance.
    lanes: new Map(),
    // Lanes the rig follows but does not have drawn (past its limit of lanes).
    undrawn: 0,
    pending: [],
    flushTimer: null,
    stream: null,
    replay: null,
  };

  // -- small helpers ------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function visible(text) {
    return String(text).replace(CONTROLS, (c) => "\\x" + c.charCodeAt(0).toString(16).padStart(2, "0"));
  }

  function clock(t) {
    const d = new Date(t * 1000);
    const two = (n) => String(n).padStart(2, "0");
    const ms = String(d.getMilliseconds()).padStart(3, "0");
    return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${ms}`;
  }

  function spacedHex(hex) {
    return (hex || "").replace(/(..)(?!$)/g, "$1 ");
  }

  function textOfHex(hex) {
    try {
      const bytes = new Uint8Array((hex.match(/../g) || []).map((h) => parseInt(h, 16)));
      const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
      return HAS_CONTROL.test(text) ? null : text;
    } catch (e) {
      return null; // not UTF-8
    }
  }

  // A payload as a person reads it: its text when it is printable, else its hex.
  function payloadLabel(payload, hex) {
    if (typeof payload === "string" && !HAS_CONTROL.test(payload)) return { text: payload, hex: false };
    return { text: spacedHex(hex), hex: true };
  }

  function atBottom(node) {
    return node.scrollHeight - node.scrollTop - node.clientHeight < 40;
  }

  function trim(node, keep, skip) {
    while (node.children.length - skip > keep) node.removeChild(node.children[skip]);
  }

  function now() {
    if (state.replay) return state.replay.clock;
    return Date.now() / 1000 + state.skew;
  }

  function plotWindow() {
    const r = state.replay;
    return r ? Math.min(PLOT_WINDOW, Math.max(MIN_WINDOW, r.end - r.start)) : PLOT_WINDOW;
  }

  // -- the panes ----------------------------------------------------------------------------

  function receive(event) {
    state.pending.push(event);
    if (state.flushTimer === null) state.flushTimer = setTimeout(flush, 40);
  }

  // Events arrive in bursts (the history, a flood): draw once per burst, not once per event.
  function flush() {
    state.flushTimer = null;
    const console_ = $("console");
    const messages = $("messages");
    const stick = [atBottom(console_), atBottom(messages)];
    for (const event of state.pending.splice(0)) handle(event);
    trim(console_, MAX_CONSOLE, 0);
    trim(messages, MAX_MESSAGES, 1);
    countHidden();
    if (stick[0]) console_.scrollTop = console_.scrollHeight;
    if (stick[1]) messages.scrollTop = messages.scrollHeight;
    drawPlot();
  }

  function handle(event) {
    switch (event.kind) {
      case "console":
        return addConsole(event);
      case "mqtt":
        return addMessage(event);
      case "status":
        return setStatus(event);
      case "action":
        return addAction(event);
    }
  }

  function addConsole(event) {
    const text = String(event.text ?? "");
    const line = el("div", "line");
    if (event.src === "rig" || text.startsWith("[rig]")) line.classList.add("rig");
    if (event.rig_event) {
      // One of the firmware's @rig lines: hidden unless "@rig lines" is ticked (showEvents).
      line.classList.add("ev");
      line.dataset.event = String(event.rig_event);
    }
    if (/^Traceback|Error\b|Exception\b/.test(text)) line.classList.add("bad");
    const shown =
      text.length > MAX_LINE ? `${text.slice(0, MAX_LINE)}… [${text.length - MAX_LINE} more characters]` : text;
    line.append(el("span", "t", clock(event.t)), el("span", "text", visible(shown)));
    $("console").append(line);
  }

  function addMessage(event) {
    const topic = String(event.topic ?? "");
    const shown = payloadLabel(event.payload, event.hex);
    const row = el("div", "msg");
    row.dataset.topic = topic;
    if (event.echo?.role === "arrival") row.classList.add("echo");
    if (topic === state.info.status_topic || topic.endsWith("/status")) row.classList.add("status-topic");
    const payload = el("span", shown.hex ? "payload hex" : "payload", visible(shown.text.slice(0, 300)));
    if (shown.text.length > 300) payload.title = visible(shown.text.slice(0, 4000));
    row.append(
      el("span", "t", clock(event.t)),
      el("span", "topic", visible(topic)),
      payload,
      el("span", "qos", `q${event.qos ?? 0}`),
      el("span", "retain", event.retain ? "retained" : ""),
    );
    $("messages").append(row);
    const one = event.echo?.role === "arrival" ? lane(event.echo, event.hex || "", event.payload) : null;
    if (one) {
      one.arrivals.push(Number(event.t));
      if (one.arrivals.length > MAX_ARRIVALS) one.arrivals.splice(0, one.arrivals.length - MAX_ARRIVALS);
    }
  }

  function setStatus(event) {
    const value = visible(event.value ?? "unknown");
    showStatus(value);
    const item = el("li");
    item.dataset.status = value;
    item.append(el("span", "t", clock(event.t)), el("span", "value", value));
    $("status-log").append(item);
    trim($("status-log"), MAX_LOG, 0);
  }

  function addAction(event) {
    const item = el("li", event.ok ? "ok" : "failed");
    item.dataset.name = String(event.name ?? "");
    item.append(
      el("span", "t", clock(event.t)),
      el("span", "name", String(event.name ?? "")),
      el("span", "detail", visible(event.detail ?? "")),
    );
    $("action-log").append(item);
    trim($("action-log"), MAX_LOG, 0);
    if (event.echo?.role === "injection") {
      const one = lane(event.echo, String(event.hex ?? ""), null);
      if (one) one.injections.push(Number(event.t));
    }
  }

  function clearPanes() {
    state.pending.length = 0;
    $("console").replaceChildren();
    const messages = $("messages");
    while (messages.children.length > 1) messages.removeChild(messages.lastChild);
    $("status-log").replaceChildren();
    $("action-log").replaceChildren();
    showStatus("unknown");
    state.lanes.clear();
    state.undrawn = 0;
    countHidden();
    $("plot").replaceChildren(el("p", "empty", "no message on the echo topic yet"));
  }

  function showStatus(value) {
    const badge = $("status");
    badge.textContent = value;
    badge.dataset.status = value;
    badge.className = `status status-${/^[a-z]+$/.test(value) ? value : "other"}`;
  }

  // -- the echo plot: a row per payload, a tick per arrival on the last minute ---------------

  // The lane the rig put this message in (facts: its event's ``echo``), made on its first
  // message; null for a lane the rig follows but does not have drawn.
  function lane(facts, hex, payload) {
    if (!facts.drawn) {
      state.undrawn = Math.max(state.undrawn, facts.lane + 1);
      return null;
    }
    let found = state.lanes.get(facts.lane);
    if (!found) {
      const text = typeof payload === "string" && !HAS_CONTROL.test(payload) ? payload : textOfHex(hex);
      found = { hex, label: text ?? spacedHex(hex), isText: text !== null, facts, arrivals: [], injections: [], row: null };
      state.lanes.set(facts.lane, found);
    }
    found.facts = facts;
    return found;
  }

  function drawPlot() {
    const plot = $("plot");
    if (!state.lanes.size) return;
    const end = now();
    const span = plotWindow();
    const x = (t) => ((t - (end - span)) / span) * PLOT_W;
    if (plot.querySelector(".empty")) plot.replaceChildren();
    const ordered = [...state.lanes.entries()].sort((a, b) => a[0] - b[0]).map((entry) => entry[1]);
    for (const one of ordered) {
      const facts = one.facts;
      const colour = facts.colour;
      if (!one.row) one.row = newLaneRow(one, colour);
      // Stopped: nothing came back by the moment the rig named (a few of its own periods).
      const circulating = facts.stale_after !== null && end <= facts.stale_after;
      const row = one.row;
      row.dataset.count = String(facts.count);
      row.classList.toggle("stalled", !circulating);
      row.querySelector(".count").textContent = `${facts.count}×`;
      row.querySelector(".stats").textContent =
        (facts.period !== null ? `every ${facts.period.toFixed(2)} s · ` : "") +
        `${facts.rate.toFixed(2)}/s` +
        (circulating ? "" : " · stopped");
      const marks = row.querySelector("svg.marks");
      const ticks = [];
      // One tick per unit of width at most: a flood draws a solid bar, not thousands of lines.
      const drawn = new Set();
      for (const t of one.arrivals) {
        if (t < end - span || t > end || drawn.has(Math.round(x(t)))) continue;
        drawn.add(Math.round(x(t)));
        ticks.push(mark(x(t), 3, PLOT_H - 3, { stroke: colour, "stroke-width": 2 }));
      }
      for (const t of one.injections.slice(-MAX_ARRIVALS)) {
        if (t < end - span || t > end) continue;
        // An injection: taller and dashed; like the report's triangle, where a payload began.
        const style = { class: "injection", stroke: "#222", "stroke-width": 3, "stroke-dasharray": "3 2" };
        ticks.push(mark(x(t), 0, PLOT_H, style));
      }
      const mid = PLOT_H / 2;
      const baseline = svg("line", { class: "baseline", x1: 0, x2: PLOT_W, y1: mid, y2: mid, "vector-effect": "non-scaling-stroke" });
      marks.replaceChildren(baseline, ...ticks);
      if (row.parentNode !== plot) plot.append(row);
    }
    if (state.undrawn > state.lanes.size && !plot.querySelector(".more")) {
      plot.append(el("p", "more", `more payloads than ${state.lanes.size}: see the messages pane`));
    }
    drawAxis(plot, span);
  }

  // A vertical line at x; the plot is stretched to its pane's width, the line's width is not.
  function mark(x, y1, y2, attrs) {
    return svg("line", { x1: x, x2: x, y1, y2, "vector-effect": "non-scaling-stroke", ...attrs });
  }

  function newLaneRow(one, colour) {
    const row = el("div", "lane");
    row.dataset.payload = one.label;
    row.dataset.hex = one.hex;
    const label = el("span", one.isText ? "label" : "label hex", visible(one.label || "(empty)"));
    label.title = `payload ${visible(one.label) || "(empty)"}  hex ${one.hex || "-"}`;
    const swatch = el("span", "swatch");
    swatch.append(svg("svg", { viewBox: "0 0 10 10", width: 10, height: 10 }));
    swatch.firstChild.append(svg("rect", { width: 10, height: 10, fill: colour }));
    const marks = svg("svg", { class: "marks", viewBox: `0 0 ${PLOT_W} ${PLOT_H}`, preserveAspectRatio: "none" });
    row.append(swatch, label, el("span", "count", "0×"), marks, el("span", "stats", ""));
    return row;
  }

  function drawAxis(plot, span) {
    let axis = plot.querySelector(".axis");
    if (!axis || axis.dataset.span !== String(span)) {
      if (axis) axis.remove();
      axis = el("div", "axis");
      axis.dataset.span = String(span);
      axis.append(el("span"), el("span"), el("span"));
      const scale = el("span", "scale");
      const digits = span >= 4 ? 0 : span >= 0.4 ? 2 : 3;
      for (const part of [1, 0.75, 0.5, 0.25]) scale.append(el("span", "", `−${(span * part).toFixed(digits)} s`));
      scale.append(el("span", "", state.replay ? "replay clock" : "now"));
      axis.append(scale, el("span"));
      $("plot-window").textContent = String(Number(span.toFixed(3)));
    }
    plot.append(axis); // last, below every lane
  }

  // -- the console's @rig lines: hidden unless asked for ------------------------------------------

  // The firmware's @rig lines are for the rig: two per message, they drown the tutorial's own
  // print. Hidden by a class on the pane (no line is rebuilt); the count says what is hidden.
  function showEvents(shown) {
    $("console").classList.toggle("hide-events", !shown);
    countHidden();
  }

  function countHidden() {
    const hidden = $("console").classList.contains("hide-events");
    const count = hidden ? $("console").querySelectorAll(".line.ev").length : 0;
    $("hidden-events").textContent = count ? `${count} hidden` : "";
    $("hidden-events").dataset.count = String(count);
  }

  // -- the header, the inject box and the buttons ---------------------------------------------

  function showInfo(info) {
    state.info = info;
    state.echoTopic = info.echo_topic ?? info.topics?.echo ?? "";
    if (typeof info.now === "number") state.skew = info.now - Date.now() / 1000;
    $("board").textContent = info.board ?? "bench";
    $("mode").textContent = info.mode === "replay" ? "replay" : "live";
    $("mode").dataset.mode = info.mode ?? "live";
    document.title = `${info.board ?? "bench"} · rig ${info.mode === "replay" ? "replay" : "bench"}`;
    const facts = [
      ["mqtt", info.mqtt ?? info.broker?.mqtt],
      ["websocket", info.websocket ?? info.broker?.ws],
      ["echo topic", state.echoTopic],
      ["status topic", info.status_topic ?? info.topics?.status],
      ["loop period", typeof info.loop_period === "number" ? `${info.loop_period} s` : null],
      ["artifacts", info.artifacts],
    ];
    const dl = $("facts");
    dl.replaceChildren();
    for (const [name, value] of facts) {
      if (value === null || value === undefined || value === "") continue;
      dl.append(el("dt", "", name), el("dd", "mono", String(value)));
    }
    if (state.echoTopic && !$("inject-topic").value) $("inject-topic").value = state.echoTopic;
    const unavailable = info.unavailable ?? {};
    const described = info.actions ?? {};
    for (const name of ["soft_reset", "interrupt", "power_cut"]) {
      const button = $(`action-${name}`);
      const why = unavailable[name] ?? (info.mode === "replay" ? "a finished run" : null);
      button.disabled = why !== null;
      button.title = why !== null ? `unavailable: ${why}` : (described[name] ?? name);
      // A disabled button gets no mouse events in some browsers: its wrapper carries the tooltip too.
      button.parentNode.title = button.title;
    }
    const injectWhy = unavailable.inject ?? (info.mode === "replay" ? "a finished run" : null);
    for (const id of ["inject-topic", "inject-payload", "inject-qos", "inject-retain", "inject-button"]) {
      $(id).disabled = injectWhy !== null;
      $(id).title = injectWhy !== null ? `unavailable: ${injectWhy}` : "";
    }
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer;
    try {
      answer = await response.json();
    } catch (e) {
      answer = { ok: false, error: `${response.status} ${response.statusText}` };
    }
    return { status: response.status, ...answer };
  }

  function showResult(node, answer) {
    node.textContent = answer.ok ? answer.detail ?? "done" : answer.error ?? "failed";
    node.className = `result ${answer.ok ? "ok" : "failed"}`;
    node.dataset.status = String(answer.status ?? "");
  }

  async function inject(submit) {
    submit.preventDefault();
    const button = $("inject-button");
    button.disabled = true;
    $("inject-result").textContent = "publishing…";
    $("inject-result").className = "result";
    try {
      const answer = await post("/api/inject", {
        topic: $("inject-topic").value,
        payload: $("inject-payload").value,
        qos: Number($("inject-qos").value),
        retain: $("inject-retain").checked,
      });
      showResult($("inject-result"), answer);
    } catch (e) {
      showResult($("inject-result"), { ok: false, error: `the page's server did not answer: ${e}` });
    } finally {
      button.disabled = false;
    }
  }

  async function action(name) {
    const button = $(`action-${name}`);
    button.disabled = true;
    $("action-result").textContent = `${button.textContent}…`;
    $("action-result").className = "result";
    try {
      showResult($("action-result"), await post(`/api/action/${name}`, {}));
    } catch (e) {
      showResult($("action-result"), { ok: false, error: `the page's server did not answer: ${e}` });
    } finally {
      button.disabled = false;
    }
  }

  // -- live ---------------------------------------------------------------------------------

  function setConnection(stateName, text) {
    $("connection").dataset.state = stateName;
    $("connection").textContent = text;
  }

  function connect() {
    const stream = new EventSource("/api/events");
    state.stream = stream;
    // Each (re)connection starts with the history: start from a clean page, not a doubled one.
    stream.onopen = () => {
      clearPanes();
      setConnection("live", "live");
    };
    stream.onmessage = (message) => receive(JSON.parse(message.data));
    stream.addEventListener("end", () => {
      stream.close();
      setConnection("ended", "the bench stopped");
    });
    // The page fell too far behind the bench: the server ended its stream; the browser
    // reconnects by itself, and the history that comes first rebuilds the panes.
    stream.addEventListener("behind", (message) => {
      setConnection("reconnecting", JSON.parse(message.data).detail ?? "fell behind: reconnecting…");
    });
    stream.onerror = () => {
      if (stream.readyState === EventSource.CLOSED) setConnection("lost", "disconnected");
      else setConnection("reconnecting", "reconnecting…");
    };
    // The plot's time axis moves even when nothing arrives.
    setInterval(drawPlot, 1000);
  }

  // -- replay -------------------------------------------------------------------------------

  async function setupReplay() {
    $("replay-bar").hidden = false;
    setConnection("replay", "replay of a finished run");
    // What the rig could not read of the run (a broken run.json, naming the file and the key).
    const problems = state.info.problems ?? [];
    if (problems.length) {
      $("replay-note").textContent = problems.map((p) => `could not read: ${p}`).join("\n");
      $("replay-note").dataset.outcome = "problem";
    }
    const answer = await (await fetch("/api/runs")).json();
    const select = $("replay-test");
    for (const test of answer.tests) {
      const option = el("option", "", `${test.nodeid}${test.outcome ? ` · ${test.outcome}` : ""}`);
      option.value = test.id;
      option.dataset.outcome = test.outcome;
      select.append(option);
    }
    select.addEventListener("change", () => select.value && loadTest(select.value));
    $("replay-play").addEventListener("click", () => (state.replay && state.replay.timer ? pause() : play()));
    $("replay-speed").addEventListener("change", () => {
      if (!state.replay) return;
      if ($("replay-speed").value === "all") seek(state.replay.end);
      else if (!state.replay.timer && state.replay.index < state.replay.events.length) play();
    });
    $("replay-seek").addEventListener("input", () => {
      if (!state.replay) return;
      const r = state.replay;
      seek(r.start + (Number($("replay-seek").value) / 1000) * (r.end - r.start));
    });
  }

  async function loadTest(id) {
    pause();
    $("replay-bar").dataset.state = "loading";
    const response = await fetch(`/api/runs/${encodeURIComponent(id)}/events`);
    const answer = await response.json();
    if (!response.ok) {
      $("replay-note").textContent = answer.error ?? `${response.status}`;
      $("replay-bar").dataset.state = "failed";
      return;
    }
    const events = answer.events;
    const start = events.length ? events[0].t : 0;
    const end = events.length ? events[events.length - 1].t : 0;
    state.replay = { id, events, index: 0, start, end, clock: start, timer: null, last: 0 };
    $("replay-note").textContent = answer.message ? answer.message.split("\n").slice(0, 3).join("\n") : "";
    $("replay-note").dataset.outcome = answer.outcome ?? "";
    $("replay-play").disabled = false;
    $("replay-seek").disabled = false;
    clearPanes();
    if ($("replay-speed").value === "all") seek(end);
    else play();
  }

  // Feed every event up to the replay clock, then draw.
  function feed() {
    const r = state.replay;
    while (r.index < r.events.length && r.events[r.index].t <= r.clock) receive(r.events[r.index++]);
    if (state.flushTimer !== null) {
      clearTimeout(state.flushTimer);
    }
    flush();
    const span = r.end - r.start;
    $("replay-seek").value = String(span > 0 ? Math.round(((r.clock - r.start) / span) * 1000) : 1000);
    $("replay-clock").textContent = `+${(r.clock - r.start).toFixed(3)} s / ${span.toFixed(3)} s`;
    if (r.index >= r.events.length) {
      pause();
      $("replay-bar").dataset.state = "ended";
    }
  }

  function tick() {
    const r = state.replay;
    const speed = Number($("replay-speed").value) || 1;
    const t = performance.now();
    r.clock = Math.min(r.end, r.clock + ((t - r.last) / 1000) * speed);
    r.last = t;
    feed();
  }

  function play() {
    const r = state.replay;
    if (!r || r.timer) return;
    if (r.index >= r.events.length) seek(r.start); // played to the end: from the start again
    r.last = performance.now();
    r.timer = setInterval(tick, 50);
    $("replay-play").textContent = "Pause";
    $("replay-bar").dataset.state = "playing";
    tick();
  }

  function pause() {
    const r = state.replay;
    if (r && r.timer) {
      clearInterval(r.timer);
      r.timer = null;
    }
    $("replay-play").textContent = "Play";
    if (r) $("replay-bar").dataset.state = "paused";
  }

  // Jump: the panes are rebuilt from the start of the test up to ``t``.
  function seek(t) {
    const r = state.replay;
    clearPanes();
    r.index = 0;
    r.clock = Math.max(r.start, Math.min(r.end, t));
    feed();
  }

  // -- start --------------------------------------------------------------------------------

  async function start() {
    $("inject").addEventListener("submit", inject);
    $("show-events").addEventListener("change", () => showEvents($("show-events").checked));
    showEvents($("show-events").checked);
    for (const name of ["soft_reset", "interrupt", "power_cut"]) {
      $(`action-${name}`).addEventListener("click", () => action(name));
    }
    $("plot-window").textContent = String(PLOT_WINDOW);
    let info;
    try {
      const response = await fetch("/api/info");
      info = await response.json();
      // Refused (no token, or another run's): the server says how to get in.
      if (!response.ok) {
        setConnection("lost", info.error ?? `${response.status} ${response.statusText}`);
        return;
      }
    } catch (e) {
      setConnection("lost", `the page's server did not answer: ${e}`);
      return;
    }
    showInfo(info);
    if (info.mode === "replay") await setupReplay();
    else connect();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
