// The live dashboard: one server-sent event stream, each message a full snapshot plus the
// status changes since the previous one. Everything is rendered with textContent (no HTML
// from data). window.ttsqDashboard exposes counters that tests and benchmarks read.
"use strict";

(() => {
  const STATUSES = ["scheduled", "queued", "processing", "calling", "retrying", "completed", "failed", "canceled"];
  const QUEUES = ["normal", "priority", "results", "retry", "hold", "dead"];
  const TERMINAL = new Set(["completed", "failed", "canceled"]);
  const MAX_LATENCIES = 50000;
  const MAX_CURRENT_SHOWN = 3;

  const hook = (window.ttsqDashboard = { messages: 0, latencies: [], lastRenderAt: 0, lastSnapshot: null });
  const state = {
    lang: pickLanguage(),
    snapshot: null,
    filter: { status: "", priority: "" },
    source: null,
    chart: null,
    chartKey: "",
    detailId: null,
    detailTimer: null,
    detailAudio: null,
    knownJobs: new Set(),
  };
  const $ = (id) => document.getElementById(id);

  // Language ---------------------------------------------------------------------------------
  function pickLanguage() {
    const saved = window.localStorage.getItem("ttsq-lang");
    if (saved === "en" || saved === "es") return saved;
    return (navigator.language || "es").toLowerCase().startsWith("en") ? "en" : "es";
  }

  function t(key, vars) {
    const table = window.TTSQ_I18N[state.lang] || window.TTSQ_I18N.en;
    let text = table[key] ?? window.TTSQ_I18N.en[key] ?? key;
    for (const [name, value] of Object.entries(vars || {})) text = text.replace(`{${name}}`, String(value));
    return text;
  }
  window.ttsqT = t;

  function applyLanguage() {
    document.documentElement.lang = state.lang;
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
    const text = $("f-text");
    if (!text.dataset.touched) text.value = t("f_default_text");
    fillFilters();
    state.chartKey = "";
    if (state.snapshot) render(state.snapshot);
    if (state.detailId) loadDetail();
  }

  // Small helpers ----------------------------------------------------------------------------
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
    return node;
  }
  const fmt = (n, digits = 0) =>
    n === null || n === undefined ? "–" : new Intl.NumberFormat(state.lang, { maximumFractionDigits: digits }).format(n);
  const pct = (x) => (x === null || x === undefined ? "–" : `${fmt(x * 100, 1)} %`);
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString(state.lang, { hour12: false }) : "–");
  const outcome = (name) => (name ? t(`o_${name}`) : "");
  const badge = (status) => el("span", { className: `st st-${status}`, textContent: t(`s_${status}`) });

  // Stream -----------------------------------------------------------------------------------
  function connect() {
    if (state.source) state.source.close();
    const query = new URLSearchParams();
    if (state.filter.status) query.set("status", state.filter.status);
    if (state.filter.priority) query.set("priority", state.filter.priority);
    const qs = query.toString();
    const source = new EventSource(qs ? `/events?${qs}` : "/events");
    source.addEventListener("snapshot", (event) => onSnapshot(JSON.parse(event.data)));
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(source.readyState === EventSource.OPEN);
    state.source = source;
  }

  function setLive(live) {
    $("live").dataset.state = live ? "live" : "down";
    $("live-text").textContent = t(live ? "live" : "connecting");
    $("banner-stream").hidden = live;
  }

  function onSnapshot(snapshot) {
    setLive(true);
    state.snapshot = snapshot;
    render(snapshot);
    const events = snapshot.events || [];
    if (state.detailId && events.some((e) => e.job_id === state.detailId)) scheduleDetail();
    window.requestAnimationFrame(() => {
      const now = Date.now();
      for (const event of events) {
        const at = Date.parse(event.at);
        if (!Number.isNaN(at)) hook.latencies.push(now - at);
      }
      if (hook.latencies.length > MAX_LATENCIES) hook.latencies.splice(0, hook.latencies.length - MAX_LATENCIES);
      hook.messages += 1;
      hook.lastRenderAt = now;
      hook.lastSnapshot = snapshot.at;
    });
  }

  // Rendering --------------------------------------------------------------------------------
  function render(s) {
    renderBanners(s);
    renderKpis(s);
    renderQueues(s);
    renderChart(s);
    renderStatusChips(s);
    if (s.recent) renderRecent(s.recent);
    renderWorkers(s);
    // Other views (campaigns.js) render from the same snapshot.
    window.dispatchEvent(new CustomEvent("ttsq:snapshot", { detail: s }));
  }

  function renderBanners(s) {
    const redisDown = s.health.redis !== "up";
    const banner = $("banner-redis");
    banner.hidden = !redisDown;
    banner.textContent = s.stale_since ? t("banner_redis_since", { time: clock(s.stale_since) }) : t("banner_redis");
    $("banner-rabbitmq").hidden = s.health.rabbitmq === "up";
    $("banner-simulator").hidden = !s.dialer.simulated;
    const dialer = $("dialer");
    dialer.hidden = false;
    dialer.textContent = `${t("dialer")}: ${s.dialer.name}`;
    dialer.classList.toggle("sim", s.dialer.simulated);
  }

  function renderKpis(s) {
    const st = s.statistics;
    if (!st) return;
    $("kpi-total").textContent = fmt(st.jobs.total);
    $("kpi-success").textContent = pct(st.metrics.success_rate);
    $("kpi-avg").textContent = `${fmt(st.metrics.avg_processing_ms)} ms`;
    $("kpi-calls").textContent = fmt(st.calls.active);
    $("kpi-calls-limit").textContent = t("of_limit", { limit: fmt(st.calls.limit) });
    const ratio = st.calls.limit ? Math.min(1, st.calls.active / st.calls.limit) : 0;
    const bar = $("kpi-calls-bar");
    bar.style.width = `${ratio * 100}%`;
    bar.classList.toggle("full", ratio >= 1);
    // Each Asterisk server: its live calls of its limit, and whether workers reach it.
    const servers = st.calls.servers || [];
    $("kpi-servers").replaceChildren(
      ...servers.map((srv) => {
        const down = srv.state === "disconnected";
        const label = `${srv.name}${down ? ` (${t("server_down")})` : ""}`;
        return el(
          "li",
          { className: down ? "down" : "", title: srv.state },
          el("span", { textContent: label }),
          el("b", { textContent: `${fmt(srv.active)} / ${fmt(srv.limit)}` }),
        );
      }),
    );
    const waiting = st.calls.waiting || { high: 0, normal: 0 };
    $("kpi-waiting").textContent = t("line_waiting", { high: fmt(waiting.high), normal: fmt(waiting.normal) });
    const byOutcome = Object.entries(st.calls.by_outcome || {}).filter(([, n]) => n > 0);
    byOutcome.sort((a, b) => b[1] - a[1]);
    $("kpi-outcomes").replaceChildren(
      ...(byOutcome.length
        ? byOutcome.map(([name, n]) => el("li", {}, el("span", { textContent: outcome(name) }), el("b", { textContent: fmt(n) })))
        : [el("li", { textContent: "–" })]),
    );
    $("kpi-cache").textContent = pct(st.tts_cache.hit_rate);
    $("kpi-throughput").textContent = fmt(st.metrics.throughput_per_min, 1);
    const r = s.rates || {};
    $("kpi-rates").textContent = `${fmt(r.submitted_per_s, 1)} / ${fmt(r.finished_per_s, 1)}`;
  }

  function renderQueues(s) {
    const managed = Boolean(s.management && s.management.available);
    // A cell of a queue RabbitMQ reported; unacked counts and rates are null without the
    // management API: shown as unavailable, never guessed.
    const cell = (className, q, value, digits = 0) => {
      const unknown = q !== null && (value === null || value === undefined);
      return el("td", {
        className: `num ${className}${unknown ? " na" : ""}`,
        textContent: q === null ? "–" : unknown ? t("na") : fmt(value, digits),
        title: unknown ? t("na_title") : "",
      });
    };
    const rows = QUEUES.map((label) => {
      const q = (s.queues && s.queues[label]) || null;
      const rates = (q && q.rates) || {};
      const row = el(
        "tr",
        {},
        el("td", { textContent: t(`q_${label}`) }),
        cell("ready", q, q && q.ready),
        cell("unacked", q, q && q.unacked),
        cell("consumers", q, q && q.consumers),
        ...["publish", "deliver", "ack"].map((name) => cell(`rate-${name}`, q, rates[name], 1)),
      );
      row.dataset.queue = label;
      return row;
    });
    $("queues-body").replaceChildren(...rows);
    const url = (s.management && s.management.url) || "";
    $("queues-note").textContent = t(managed ? "queues_note" : "queues_note_na", { n: fmt(s.in_flight), url });
  }

  function renderChart(s) {
    if (!window.Chart || !s.throughput) return;
    const key = `${state.lang}|${JSON.stringify(s.throughput)}`;
    if (key === state.chartKey) return;
    state.chartKey = key;
    const labels = s.throughput.map(([ms]) =>
      new Date(ms).toLocaleTimeString(state.lang, { hour: "2-digit", minute: "2-digit", hour12: false }),
    );
    const data = s.throughput.map(([, n]) => n);
    if (!state.chart) {
      state.chart = new window.Chart($("throughput-chart"), {
        type: "bar",
        data: { labels, datasets: [{ label: t("finished_jobs"), data, backgroundColor: "#2563eb" }] },
        options: {
          animation: false,
          maintainAspectRatio: false,
          plugins: { legend: { display: false } },
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
      return;
    }
    state.chart.data.labels = labels;
    state.chart.data.datasets[0].data = data;
    state.chart.data.datasets[0].label = t("finished_jobs");
    state.chart.update("none");
  }

  function renderStatusChips(s) {
    if (!s.statistics) return;
    const counts = s.statistics.jobs.by_status;
    const chips = STATUSES.map((status) => {
      const chip = el("button", { type: "button", className: "chip" }, badge(status), el("b", { textContent: fmt(counts[status]) }));
      chip.dataset.status = status;
      chip.setAttribute("aria-pressed", String(state.filter.status === status));
      chip.addEventListener("click", () => setFilter("status", state.filter.status === status ? "" : status));
      return chip;
    });
    $("status-chips").replaceChildren(...chips);
  }

  function renderRecent(jobs) {
    if (!jobs.length) {
      $("recent-body").replaceChildren(el("tr", {}, el("td", { colSpan: 7, className: "empty", textContent: t("no_jobs") })));
      return;
    }
    const first = state.knownJobs.size === 0;
    const rows = jobs.map((job) => {
      const row = el(
        "tr",
        { className: "job" },
        el("td", {}, el("code", { textContent: job.job_id.slice(0, 8), title: job.job_id })),
        el("td", {}, badge(job.status)),
        el("td", { className: `pr-${job.priority}`, textContent: t(`p_${job.priority}`) }),
        el("td", { textContent: job.phone_number }),
        el("td", { className: "num", textContent: fmt(job.attempts) }),
        el("td", { textContent: outcome(job.outcome) }),
        el("td", { textContent: clock(job.updated_at) }),
      );
      row.dataset.jobId = job.job_id;
      row.dataset.status = job.status;
      if (!first && !state.knownJobs.has(job.job_id)) row.classList.add("fresh");
      row.addEventListener("click", () => openDetail(job.job_id));
      return row;
    });
    for (const job of jobs) state.knownJobs.add(job.job_id);
    if (state.knownJobs.size > 5000) state.knownJobs = new Set(jobs.map((job) => job.job_id));
    $("recent-body").replaceChildren(...rows);
  }

  function renderWorkers(s) {
    if (!s.statistics) return;
    const w = s.statistics.workers;
    $("workers-summary").textContent = t("workers_summary", { total: w.total, active: w.active, idle: w.idle });
    if (!w.list.length) {
      $("workers-body").replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "empty", textContent: t("no_workers") })));
      return;
    }
    const now = Date.parse(s.at);
    const rows = w.list.map((worker) => {
      const age = worker.last_heartbeat ? Math.max(0, Math.round((now - Date.parse(worker.last_heartbeat)) / 1000)) : null;
      const current = el("td", { className: "current" });
      for (const id of worker.current_jobs.slice(0, MAX_CURRENT_SHOWN)) {
        const link = el("a", { href: "#", textContent: id.slice(0, 8), title: id });
        link.addEventListener("click", (event) => {
          event.preventDefault();
          openDetail(id);
        });
        current.append(link, " ");
      }
      const more = worker.current_jobs.length - MAX_CURRENT_SHOWN;
      if (more > 0) current.append(`+${more}`);
      return el(
        "tr",
        {},
        el("td", { className: "worker-id", textContent: worker.worker_id, title: worker.worker_id }),
        el("td", {}, el("span", { className: `st st-${worker.status}`, textContent: t(worker.status) })),
        el("td", { className: "num", textContent: fmt(worker.processed) }),
        el("td", { className: "num", textContent: fmt(worker.failed) }),
        current,
        el("td", { className: "heartbeat", textContent: age === null ? "–" : t("ago", { n: age }) }),
      );
    });
    $("workers-body").replaceChildren(...rows);
  }

  // Filters ----------------------------------------------------------------------------------
  function fillFilters() {
    const status = $("filter-status");
    status.replaceChildren(
      el("option", { value: "", textContent: t("all_statuses") }),
      ...STATUSES.map((s) => el("option", { value: s, textContent: t(`s_${s}`) })),
    );
    status.value = state.filter.status;
    const priority = $("filter-priority");
    priority.replaceChildren(
      el("option", { value: "", textContent: t("all_priorities") }),
      el("option", { value: "normal", textContent: t("p_normal") }),
      el("option", { value: "high", textContent: t("p_high") }),
    );
    priority.value = state.filter.priority;
  }

  function setFilter(name, value) {
    state.filter[name] = value;
    fillFilters();
    connect();
  }

  // Job detail -------------------------------------------------------------------------------
  function openDetail(jobId) {
    if (state.detailId !== jobId) state.detailAudio = null;
    state.detailId = jobId;
    $("detail").hidden = false;
    $("detail-id").textContent = jobId;
    loadDetail();
  }

  function scheduleDetail() {
    if (state.detailTimer) return;
    state.detailTimer = window.setTimeout(() => {
      state.detailTimer = null;
      loadDetail();
    }, 100);
  }

  async function loadDetail() {
    const jobId = state.detailId;
    if (!jobId) return;
    let body;
    try {
      const reply = await fetch(`/api/jobs/${encodeURIComponent(jobId)}`, { headers: { Accept: "application/json" } });
      body = await reply.json();
      if (!reply.ok) throw new Error(body.error || reply.statusText);
    } catch (error) {
      $("detail-fields").replaceChildren(el("dt", { textContent: "!" }), el("dd", { textContent: String(error.message || error) }));
      return;
    }
    if (jobId !== state.detailId) return;
    renderDetail(body);
  }

  function renderDetail(job) {
    const call = job.call || {};
    const pairs = [
      ["d_status", badge(job.status)],
      ["d_outcome", call.outcome ? `${outcome(call.outcome)}${call.simulated ? ` (${t("d_simulated")})` : ""}` : "–"],
      ["d_reason", call.reason || job.error || "–"],
      ...(job.confirm
        ? [["d_keys", `${call.dtmf || "–"}${call.confirmed === null || call.confirmed === undefined ? "" : ` (${t(call.confirmed ? "d_confirmed" : "d_not_confirmed")})`}`]]
        : []),
      ...(call.amd
        ? [["d_amd", `${call.amd.status}${call.amd.cause ? ` · ${call.amd.cause}` : ""}${call.amd.detect_ms === null ? "" : ` · ${fmt(call.amd.detect_ms)} ms`}`]]
        : []),
      ["d_attempts", fmt(job.attempts)],
      ["d_number", `${job.phone_number} (${job.e164})`],
      ["d_priority", t(`p_${job.priority}`)],
      ["d_language", `${job.language} · ${job.engine}`],
      ["d_worker", job.worker_id || "–"],
      ["d_created", clock(job.created_at)],
      ["d_duration", job.duration_ms === null ? "–" : `${fmt(job.duration_ms)} ms`],
      ["d_text", job.text],
    ];
    $("detail-fields").replaceChildren(...pairs.flatMap(([key, value]) => [el("dt", { textContent: t(key) }), el("dd", {}, value)]));
    $("detail-fields").dataset.status = job.status;
    renderAudio(job);
    const steps = job.history.map((entry) =>
      el(
        "li",
        { className: TERMINAL.has(entry.status) ? "end" : "" },
        badge(entry.status),
        el("time", { dateTime: entry.at, textContent: clock(entry.at) }),
        entry.detail ? el("span", { className: "detail-text", textContent: entry.detail }) : "",
      ),
    );
    $("detail-timeline").replaceChildren(...steps);
  }

  function renderAudio(job) {
    const box = $("detail-audio");
    const url = job.audio && job.audio.url;
    if (!url) {
      state.detailAudio = null;
      box.replaceChildren(el("p", { className: "note-small", textContent: t("d_no_audio") }));
      return;
    }
    if (state.detailAudio === url && box.querySelector("audio")) return;
    state.detailAudio = url;
    const player = el("audio", { controls: true, preload: "metadata" });
    player.append(el("source", { src: url, type: "audio/wav" }));
    box.replaceChildren(player);
  }

  // Test call --------------------------------------------------------------------------------
  async function placeCall(event) {
    event.preventDefault();
    const form = event.target;
    const result = $("f-result");
    const button = $("f-submit");
    button.disabled = true;
    result.className = "form-result";
    result.textContent = "…";
    const body = Object.fromEntries(new FormData(form).entries());
    try {
      const reply = await fetch("/api/calls", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
      const answer = await reply.json();
      if (!reply.ok || !answer.success) throw new Error(answer.error || reply.statusText);
      result.classList.add("ok");
      result.textContent = t("f_sent", { id: answer.job_id });
      openDetail(answer.job_id);
    } catch (error) {
      result.classList.add("err");
      result.textContent = t("f_error", { error: error.message || error });
    } finally {
      button.disabled = false;
    }
  }

  // Start ------------------------------------------------------------------------------------
  function start() {
    $("lang").addEventListener("click", () => {
      state.lang = state.lang === "es" ? "en" : "es";
      window.localStorage.setItem("ttsq-lang", state.lang);
      applyLanguage();
    });
    $("filter-status").addEventListener("change", (e) => setFilter("status", e.target.value));
    $("filter-priority").addEventListener("change", (e) => setFilter("priority", e.target.value));
    $("detail-close").addEventListener("click", () => {
      state.detailId = null;
      state.detailAudio = null;
      $("detail").hidden = true;
      $("detail-audio").replaceChildren();
    });
    $("f-text").addEventListener("input", (e) => (e.target.dataset.touched = "1"));
    $("call-form").addEventListener("submit", placeCall);
    applyLanguage();
    connect();
  }

  start();
})();
