// Exitpool dashboard: polls data.json and redraws. Vanilla JS, no external assets.
//
// The server sends one snapshot (server/dashboard/data.py); this file only
// formats and draws it. Polling survives a server restart: a failed poll shows
// a "reconnecting" banner and retries with a capped backoff; a redirect to
// the login page means the session is gone, and the banner says so.
(function () {
  "use strict";

  const root = document.getElementById("dashboard");
  const DATA_URL = root.dataset.dataUrl;
  const LOGIN_URL = root.dataset.loginUrl;
  const POLL_MS = Number(root.dataset.pollMs) || 2000;
  const RETRY_FIRST_MS = 1000;
  const RETRY_MAX_MS = 8000;
  const SIGNED_OUT_RETRY_MS = 10000;
  const FETCH_TIMEOUT_MS = 10000;
  const RPM_MINUTES = 5;

  const CAUSES = {
    "no-agent": "no agent online",
    "agent-busy": "every agent busy",
    "agent-paused": "agent paused",
    "agent-lost": "agent lost mid-stream",
    "agent-timeout": "agent did not answer",
    "target-refused": "target refused",
    "target-unreachable": "target unreachable",
    "target-timeout": "target timed out",
    "dns-failed": "name did not resolve",
    "forbidden": "refused by the owner's rules",
    "auth-required": "no credentials",
    "auth-failed": "wrong credentials",
    "too-many-streams": "user's stream limit",
    "quota-exceeded": "user's monthly quota",
    "bad-request": "malformed request",
    "header-timeout": "request head too slow",
    "header-too-large": "request head too large",
  };

  // ---------------------------------------------------------------- formatting

  const UNITS = ["B", "KB", "MB", "GB", "TB"];

  function unitFor(value) {
    let i = 0;
    while (i < UNITS.length - 1 && Math.abs(value) >= 1000 ** (i + 1)) i++;
    return i;
  }

  function scaled(value, i) {
    const v = value / 1000 ** i;
    if (i === 0) return String(Math.round(v));
    return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function bytes(value) {
    const i = unitFor(value || 0);
    return scaled(value || 0, i) + " " + UNITS[i];
  }

  function rate(value) {
    return bytes(value) + "/s";
  }

  function count(value) {
    return Math.round(value || 0).toLocaleString("en-US");
  }

  function span(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min";
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    return Math.floor(h / 24) + " days";
  }

  function ago(epoch, now) {
    if (epoch == null) return "never";
    const s = now - epoch;
    if (s < 5) return "just now";
    return span(s) + " ago";
  }

  function clock(epoch) {
    const d = new Date(epoch * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  // ---------------------------------------------------------------- DOM helper

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value == null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "data") Object.assign(node.dataset, value);
      else node.setAttribute(key, value);
    }
    for (const child of children.flat()) {
      if (child == null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function setText(id, ...children) {
    document.getElementById(id).replaceChildren(
      ...children.map((c) => (c instanceof Node ? c : document.createTextNode(String(c))))
    );
  }

  // ---------------------------------------------------------------- headline cards

  function renderCards(data) {
    const c = data.counts;
    const enrolled = c.online + c.paused + c.offline;
    setText("stat-online", String(c.online), h("small", {}, " of " + enrolled));
    setText(
      "stat-agents",
      h("span", { class: c.paused ? "paused" : "" }, c.paused + " paused"),
      " · " + c.offline + " offline"
    );
    setText("stat-rate", rate(data.rate.down + data.rate.up));
    setText(
      "stat-rate-split",
      h("span", { class: "down" }, "↓ " + rate(data.rate.down)),
      "  ",
      h("span", { class: "up" }, "↑ " + rate(data.rate.up))
    );
    // The last point is the minute in progress: average the complete minutes before it.
    const complete = data.traffic.requests.slice(-1 - RPM_MINUTES, -1);
    const perMinute = complete.reduce((a, b) => a + b, 0) / Math.max(1, complete.length);
    setText("stat-rpm", perMinute && perMinute < 10 ? perMinute.toFixed(1) : count(perMinute), h("small", {}, " / min"));
    setText("stat-requests", count(data.last_hour.requests) + " in the last hour");
    const hour = data.last_hour;
    if (hour.requests) {
      const pct = (100 * hour.errors) / hour.requests;
      setText(
        "stat-errors",
        h("span", { class: pct >= 5 ? "bad" : pct === 0 ? "good" : "" }, pct < 10 ? pct.toFixed(1) + " %" : Math.round(pct) + " %")
      );
      setText("stat-errors-sub", count(hour.errors) + " of " + count(hour.requests) + " failed");
    } else {
      setText("stat-errors", "–");
      setText("stat-errors-sub", "no requests in the last hour");
    }
  }

  // ---------------------------------------------------------------- agents

  const seenAgents = new Set();
  let firstRender = true;

  function stateCell(agent, now) {
    const label = { online: "Online", paused: "Paused", offline: "Offline" }[agent.state];
    const by = agent.paused_by.length ? "paused by " + agent.paused_by.join(" & ") : "";
    let since;
    if (agent.state === "offline") {
      since = by || (agent.last_seen ? "" : "never connected");
    } else {
      const duration = agent.since ? "for " + span(now - agent.since) : "";
      since = [by.replace("paused ", ""), duration].filter(Boolean).join(", ");
    }
    return h("td", { class: "cell-state", "data-label": "State" },
      h("span", { class: "pill " + agent.state }, label),
      since ? h("span", { class: "since" }, since) : null
    );
  }

  function agentRow(agent, now) {
    const name = agent.admin_url
      ? h("a", { class: "agent-name", href: agent.admin_url, title: "Open in the admin" }, agent.name)
      : h("span", { class: "agent-name" }, agent.name);
    const online = agent.state !== "offline";
    const streams = online
      ? count(agent.open_streams) + (agent.max_streams ? " / " + count(agent.max_streams) : "")
      : "–";
    const idle = !agent.rate_down && !agent.rate_up;
    const rateCell = !online ? "–" : idle ? h("span", { class: "muted" }, "idle") : [h("span", { class: "down" }, "↓ " + rate(agent.rate_down)), h("span", { class: "sep" }, "·"), h("span", { class: "up" }, "↑ " + rate(agent.rate_up))];
    const system = [agent.os || "", agent.agent_version ? h("span", { class: "ver" }, (agent.os ? " · " : "") + "v" + agent.agent_version) : null];
    const row = h("tr", { data: { agent: agent.name, state: agent.state } },
      h("td", { class: "cell-name", "data-label": "Agent" }, name, agent.label ? h("span", { class: "agent-label", title: agent.label }, agent.label) : null),
      stateCell(agent, now),
      h("td", { class: "ip", "data-label": "Exit IP" }, agent.exit_ip || "–"),
      h("td", { class: "num", "data-label": "Streams" }, streams),
      h("td", { class: "num rate", "data-label": "Rate" }, rateCell),
      h("td", { class: "num", "data-label": "Today" }, bytes(agent.today_down + agent.today_up)),
      h("td", { class: "system", "data-label": "System" }, agent.os || agent.agent_version ? system : "–"),
      h("td", { "data-label": "Last seen" }, online ? "now" : ago(agent.last_seen, now))
    );
    const key = agent.id + ":" + agent.state;
    if (!firstRender && !seenAgents.has(key)) row.classList.add("fresh");
    return row;
  }

  function renderAgents(data) {
    const now = data.server_time;
    const rows = data.agents.map((agent) => agentRow(agent, now));
    document.getElementById("agents-body").replaceChildren(...rows);
    document.getElementById("agents-empty").hidden = data.agents.length > 0;
    document.getElementById("agents").hidden = data.agents.length === 0;
    seenAgents.clear();
    for (const agent of data.agents) seenAgents.add(agent.id + ":" + agent.state);
    firstRender = false;
    const ips = new Set(data.agents.filter((a) => a.state === "online").map((a) => a.exit_ip));
    setText("agents-summary", data.agents.length ? ips.size + " exit IP" + (ips.size === 1 ? "" : "s") + " available" : "");
  }

  // ---------------------------------------------------------------- charts

  // A "nice" axis: the smallest step of 1, 2, 2.5 or 5 × 10^k giving at most `ticks` steps.
  function niceAxis(max, ticks) {
    if (!(max > 0)) max = 1;
    const raw = max / ticks;
    const magnitude = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
    return { step, top: Math.ceil(max / step - 1e-9) * step };
  }

  // Decimals needed to write every multiple of `step` exactly (0.25 → 2, 0.5 → 1, 20 → 0).
  function decimals(step) {
    for (let d = 0; d < 3; d++) {
      if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-6) return d;
    }
    return 3;
  }

  class Chart {
    constructor(element, draw, tip) {
      this.element = element;
      this.canvas = element.querySelector("canvas");
      this.tipNode = element.querySelector(".tip");
      this.drawFn = draw;
      this.tipFn = tip;
      this.data = null;
      this.hover = null;
      this.layout = null;
      new ResizeObserver(() => this.draw()).observe(element);
      this.canvas.addEventListener("mousemove", (event) => this.move(event.offsetX));
      this.canvas.addEventListener("mouseleave", () => { this.hover = null; this.draw(); });
      this.canvas.addEventListener("touchstart", (event) => {
        const box = this.canvas.getBoundingClientRect();
        this.move(event.touches[0].clientX - box.left);
      }, { passive: true });
    }

    update(data) {
      this.data = data;
      this.draw();
    }

    move(x) {
      if (!this.layout) return;
      const { left, width, n } = this.layout;
      const i = Math.round(((x - left) / width) * (n - 1));
      this.hover = i >= 0 && i < n ? i : null;
      this.draw();
    }

    draw() {
      const box = this.element.getBoundingClientRect();
      if (!this.data || box.width === 0) return;
      const ratio = window.devicePixelRatio || 1;
      this.canvas.width = Math.round(box.width * ratio);
      this.canvas.height = Math.round(box.height * ratio);
      const ctx = this.canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, box.width, box.height);
      ctx.font = "11px system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
      this.layout = this.drawFn(ctx, box.width, box.height, this.data, this.hover);
      if (this.hover == null) {
        this.tipNode.hidden = true;
        return;
      }
      this.tipNode.replaceChildren(...this.tipFn(this.data, this.hover));
      this.tipNode.hidden = false;
      const x = this.layout.left + (this.hover / (this.layout.n - 1)) * this.layout.width;
      const tipWidth = this.tipNode.offsetWidth;
      const place = x + 12 + tipWidth > box.width ? x - 12 - tipWidth : x + 12;
      this.tipNode.style.left = Math.max(0, place) + "px";
    }
  }

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  // Axes and grid shared by both charts; returns the plot area.
  function frame(ctx, w, h, traffic, top, step, label) {
    const n = traffic.n;
    let labelWidth = 0;
    for (let v = 0; v <= top + 1e-9; v += step) labelWidth = Math.max(labelWidth, ctx.measureText(label(v)).width);
    const left = Math.ceil(labelWidth) + 10;
    const right = 6;
    const plotTop = 8;
    const bottom = h - 22;
    const width = w - left - right;
    const height = bottom - plotTop;
    const y = (v) => bottom - (v / top) * height;
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (let v = 0; v <= top + 1e-9; v += step) {
      ctx.strokeStyle = v === 0 ? css("--line") : css("--grid");
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y(v)) + 0.5);
      ctx.lineTo(left + width, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillStyle = css("--muted");
      ctx.fillText(label(v), left - 8, y(v));
    }
    ctx.textBaseline = "top";
    ctx.textAlign = "center";
    const minLabelGap = 46;
    const every = [5, 10, 15, 20, 30].find((m) => (width / (n - 1)) * m >= minLabelGap) || 30;
    for (let i = 0; i < n; i++) {
      const t = traffic.start + i * traffic.step;
      if (Math.round(t / 60) % every !== 0) continue;
      const x = left + (i / (n - 1)) * width;
      ctx.fillStyle = css("--muted");
      ctx.fillText(clock(t), Math.min(Math.max(x, left + 14), left + width - 14), bottom + 6);
    }
    return { left, width, n, y, bottom, plotTop, height };
  }

  // Bytes per second, one point a minute; the minute in progress is the live rate, if known.
  function throughputSeries(data) {
    const t = data.traffic;
    const up = t.bytes_up.map((b) => b / t.step);
    const down = t.bytes_down.map((b) => b / t.step);
    if (data.live) {
      up[up.length - 1] = data.rate.up;
      down[down.length - 1] = data.rate.down;
    }
    return { ...t, up, down, live: data.live };
  }

  function drawThroughput(ctx, w, h, traffic, hover) {
    const { up, down } = traffic;
    const max = Math.max(...up, ...down);
    const unit = unitFor(max || 1000);
    const { step, top } = niceAxis((max || 1000) / 1000 ** unit, 4);
    const topBytes = top * 1000 ** unit;
    const stepBytes = step * 1000 ** unit;
    const digits = decimals(step);
    const label = (v) => (v ? (v / 1000 ** unit).toFixed(digits) : "0") + " " + UNITS[unit] + "/s";
    const area = frame(ctx, w, h, { ...traffic, n: up.length }, topBytes, stepBytes, label);
    const x = (i) => area.left + (i / (area.n - 1)) * area.width;
    for (const [series, color] of [[down, css("--down")], [up, css("--up")]]) {
      const gradient = ctx.createLinearGradient(0, area.plotTop, 0, area.bottom);
      gradient.addColorStop(0, color + "38");
      gradient.addColorStop(1, color + "00");
      ctx.beginPath();
      series.forEach((v, i) => (i ? ctx.lineTo(x(i), area.y(v)) : ctx.moveTo(x(i), area.y(v))));
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.lineJoin = "round";
      ctx.stroke();
      ctx.lineTo(x(series.length - 1), area.bottom);
      ctx.lineTo(x(0), area.bottom);
      ctx.closePath();
      ctx.fillStyle = gradient;
      ctx.fill();
    }
    if (hover != null) {
      ctx.strokeStyle = css("--faint");
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(Math.round(x(hover)) + 0.5, area.plotTop);
      ctx.lineTo(Math.round(x(hover)) + 0.5, area.bottom);
      ctx.stroke();
      for (const [series, color] of [[down, css("--down")], [up, css("--up")]]) {
        ctx.fillStyle = "#fff";
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(x(hover), area.y(series[hover]), 3.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      }
    }
    return area;
  }

  function throughputTip(traffic, i) {
    const last = i === traffic.up.length - 1;
    const when = last && traffic.live ? "now" : clock(traffic.start + i * traffic.step) + " (average)";
    return [
      h("b", {}, when), h("br"),
      h("span", { class: "swatch", style: "background:" + css("--down") }), "Down " + rate(traffic.down[i]), h("br"),
      h("span", { class: "swatch", style: "background:" + css("--up") }), "Up " + rate(traffic.up[i]),
    ];
  }

  function drawRequests(ctx, w, h, traffic, hover) {
    const req = traffic.requests;
    const { step, top } = niceAxis(Math.max(4, ...req), 4);
    const area = frame(ctx, w, h, { ...traffic, n: req.length }, top, step, (v) => count(v));
    const slot = area.width / (area.n - 1);
    const barWidth = Math.max(1, slot * 0.7);
    for (let i = 0; i < area.n; i++) {
      const cx = area.left + i * slot;
      const x0 = Math.min(Math.max(cx - barWidth / 2, area.left), area.left + area.width - barWidth);
      const total = area.bottom - area.y(req[i]);
      const failed = area.bottom - area.y(Math.min(traffic.errors[i], req[i]));
      const partial = i === area.n - 1;
      ctx.globalAlpha = (hover == null || hover === i ? 1 : 0.55) * (partial ? 0.45 : 1);
      ctx.fillStyle = css("--req");
      ctx.fillRect(x0, area.bottom - total, barWidth, total);
      ctx.fillStyle = css("--err");
      ctx.fillRect(x0, area.bottom - failed, barWidth, failed);
    }
    ctx.globalAlpha = 1;
    return area;
  }

  function requestsTip(traffic, i) {
    const t = traffic.start + i * traffic.step;
    const partial = i === traffic.requests.length - 1;
    return [
      h("b", {}, clock(t) + (partial ? " (so far)" : "")), h("br"),
      h("span", { class: "swatch", style: "background:" + css("--req") }), count(traffic.requests[i]) + " requests", h("br"),
      h("span", { class: "swatch", style: "background:" + css("--err") }), count(traffic.errors[i]) + " errors",
    ];
  }

  const throughputChart = new Chart(document.getElementById("throughput-chart"), drawThroughput, throughputTip);
  const requestsChart = new Chart(document.getElementById("requests-chart"), drawRequests, requestsTip);

  // ---------------------------------------------------------------- top lists

  function topList(id, items, empty, render) {
    const list = document.getElementById(id);
    if (!items.length) {
      list.replaceChildren(h("li", { class: "none" }, empty));
      return;
    }
    const max = Math.max(...items.map((item) => item.weight), 1);
    list.replaceChildren(...items.map((item) => {
      const { what, value } = render(item);
      return h("li", {},
        h("div", { class: "row" }, h("span", { class: "what" }, what), h("span", { class: "value" }, value)),
        h("div", { class: "bar" }, h("span", { style: "width:" + ((100 * item.weight) / max).toFixed(1) + "%" }))
      );
    }));
  }

  function renderLists(data) {
    topList("errors-list", data.errors.map((e) => ({ ...e, weight: e.count })), "No errors in the last hour.", (e) => ({
      what: [h("code", {}, e.cause), CAUSES[e.cause] ? h("span", { class: "note" }, CAUSES[e.cause]) : null],
      value: count(e.count),
    }));
    topList("destinations-list", data.top_destinations.map((d) => ({ ...d, weight: d.bytes_up + d.bytes_down })), "No traffic in the last hour.", (d) => ({
      what: h("code", { title: d.host + ":" + d.port }, d.host + ":" + d.port),
      value: [bytes(d.bytes_up + d.bytes_down), h("small", {}, count(d.requests) + " req")],
    }));
    topList("users-list", data.top_users.map((u) => ({ ...u, weight: u.bytes_up + u.bytes_down })), "No users in the last hour.", (u) => ({
      what: [u.name || h("span", { class: "muted" }, "(not signed in)"), u.errors ? h("span", { class: "note" }, count(u.errors) + " failed") : null],
      value: [bytes(u.bytes_up + u.bytes_down), h("small", {}, count(u.requests) + " req")],
    }));
  }

  // ---------------------------------------------------------------- status and polling

  let lastData = null;
  let lastUpdate = 0;

  function render(data) {
    lastData = data;
    lastUpdate = Date.now();
    renderCards(data);
    renderAgents(data);
    throughputChart.update(throughputSeries(data));
    requestsChart.update(data.traffic);
    renderLists(data);
    renderFoot();
  }

  function renderFoot() {
    if (!lastData) return;
    const age = Math.round((Date.now() - lastUpdate) / 1000);
    const when = age < 3 ? "just now" : span(age) + " ago";
    setText("foot", "Updated " + when + " · server time " + clock(lastData.server_time) +
      (lastData.live ? "" : " · the proxy is not running in this process"));
  }

  function setStatus(state, text, banner) {
    const status = document.getElementById("status");
    status.dataset.state = state;
    setText("status-text", text);
    const node = document.getElementById("banner");
    root.classList.toggle("stale", state !== "live");
    if (!banner) {
      node.hidden = true;
      node.replaceChildren();
      return;
    }
    node.replaceChildren(banner);
    node.hidden = false;
  }

  function reconnecting(delay) {
    setStatus("reconnecting", "Reconnecting…",
      h("div", {}, h("span", { class: "spinner" }),
        h("span", {}, "Lost contact with the server. Retrying in " + Math.round(delay / 1000) + " s — the numbers below are from " +
          (lastUpdate ? span((Date.now() - lastUpdate) / 1000) + " ago." : "the page load."))));
  }

  function signedOut() {
    setStatus("signed-out", "Signed out",
      h("div", { class: "signed-out" },
        h("span", {}, "Your session has ended. ", h("a", { href: LOGIN_URL }, "Log in again"), " to see live numbers.")));
  }

  let failures = 0;

  async function poll() {
    let delay = POLL_MS;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), FETCH_TIMEOUT_MS);
    try {
      const response = await fetch(DATA_URL, {
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual",
        headers: { Accept: "application/json" },
        signal: abort.signal,
      });
      if (response.type === "opaqueredirect" || response.status === 401 || response.status === 403) {
        signedOut();
        delay = SIGNED_OUT_RETRY_MS;
      } else if (!response.ok) {
        throw new Error("HTTP " + response.status);
      } else {
        const data = await response.json();
        failures = 0;
        setStatus("live", "Live", null);
        render(data);
      }
    } catch (error) {
      failures += 1;
      delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1));
      reconnecting(delay);
    } finally {
      clearTimeout(timer);
    }
    setTimeout(poll, delay);
  }

  render(JSON.parse(document.getElementById("dashboard-initial").textContent));
  setInterval(renderFoot, 1000);
  setTimeout(poll, POLL_MS);
})();
