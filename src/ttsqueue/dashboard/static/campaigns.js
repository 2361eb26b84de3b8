// The Campaigns view: check a CSV (preview and refused rows), start it, and follow every
// campaign live from the dashboard's snapshots (progress bar, counts, pause/resume/cancel,
// results download). Everything is rendered with textContent (no HTML from data).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const t = (key, vars) => (window.ttsqT ? window.ttsqT(key, vars) : key);
  const MAX_ERRORS_SHOWN = 200;
  const ACTIONS = { running: ["pause", "cancel"], paused: ["resume", "cancel"] };
  const hook = (window.ttsqCampaigns = { renders: 0 });
  let last = null;
  // The message under the form, kept as a key so that it follows a change of language.
  let said = null;

  function say(kind, key, vars) {
    said = { kind, key, vars };
    const result = $("c-result");
    result.className = `form-result${kind ? ` ${kind}` : ""}`;
    result.textContent = key ? t(key, vars) : "…";
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
    return node;
  }

  function formData(dryRun) {
    const file = $("c-file").files[0];
    const template = $("c-template").value.trim();
    if (!file || !template) return null;
    const data = new FormData();
    data.append("file", file, file.name);
    data.append("template", template);
    data.append("name", $("c-name").value.trim() || file.name.replace(/\.[^.]*$/, "") || "campaign");
    for (const id of ["c-cpm", "c-concurrent"]) {
      const input = $(id);
      if (input.value) data.append(input.name, input.value);
    }
    if ($("c-confirm").checked) data.append("confirm", JSON.stringify({ digits: "1" }));
    if ($("c-amd").value !== "off") data.append("machine_detection", $("c-amd").value);
    if (dryRun) data.append("dry_run", "true");
    return data;
  }

  function showReport(body) {
    $("c-report").hidden = false;
    const unit = (row) => (row.line !== undefined ? row.line : row.index);
    // A created campaign's answer has no preview: the one from the check stays.
    if (body.preview) {
      $("c-preview-body").replaceChildren(
        ...body.preview.map((row) =>
          el("tr", {}, el("td", { textContent: unit(row) }), el("td", { textContent: row.phone_number }), el("td", { textContent: row.text })),
        ),
      );
    }
    const errors = body.errors || body.details || [];
    const rows = errors.slice(0, MAX_ERRORS_SHOWN).map((e) =>
      el(
        "tr",
        { className: "c-error" },
        el("td", { textContent: unit(e) ?? (e.loc ? e.loc[e.loc.length - 1] : "") }),
        el("td", { textContent: e.field }),
        el("td", { textContent: e.message }),
      ),
    );
    if (errors.length > MAX_ERRORS_SHOWN) {
      rows.push(el("tr", {}, el("td", { colSpan: 3, textContent: t("c_more_errors", { n: errors.length - MAX_ERRORS_SHOWN }) })));
    }
    $("c-errors-body").replaceChildren(...rows);
  }

  async function send(dryRun) {
    const data = formData(dryRun);
    if (!data) {
      say("err", "c_pick_file");
      return;
    }
    say("", null);
    for (const id of ["c-check", "c-start"]) $(id).disabled = true;
    try {
      const reply = await fetch("/api/campaigns", { method: "POST", body: data, headers: { Accept: "application/json" } });
      const body = await reply.json();
      if (body.details && !body.success) showReport(body);
      if (!reply.ok || !body.success) throw new Error(body.error || reply.statusText);
      showReport(body);
      say("ok", dryRun ? "c_checked" : "c_created", { valid: body.valid, invalid: body.invalid });
      if (!dryRun && body.campaign) render([body.campaign, ...(last || []).filter((c) => c.campaign_id !== body.campaign.campaign_id)]);
    } catch (error) {
      say("err", "c_refused", { error: error.message || error });
    } finally {
      for (const id of ["c-check", "c-start"]) $(id).disabled = false;
    }
  }

  async function act(campaignId, verb) {
    const reply = await fetch(`/api/campaigns/${encodeURIComponent(campaignId)}/${verb}`, { method: "POST" });
    const body = await reply.json();
    if (!reply.ok) {
      say("err", "c_refused", { error: body.error || reply.statusText });
      return;
    }
    render((last || []).map((c) => (c.campaign_id === campaignId ? body : c)));
  }

  function countsText(campaign) {
    const counts = campaign.counts || {};
    const statuses = Object.entries(counts.by_status || {}).map(([k, v]) => `${t(`s_${k}`)} ${v}`);
    const outcomes = Object.entries(counts.by_outcome || {}).map(([k, v]) => `${t(`o_${k}`)} ${v}`);
    return [statuses.join(" · "), outcomes.join(" · ")].filter(Boolean).join(" | ");
  }

  function row(campaign) {
    const progress = campaign.progress || { done: 0, total: 0, percent: 0 };
    const bar = el("div", { className: "cbar", title: `${progress.percent} %` }, el("div"));
    bar.firstChild.style.width = `${progress.percent}%`;
    const actions = el("td", { className: "actions" });
    for (const verb of ACTIONS[campaign.status] || []) {
      const button = el("button", { type: "button", className: `c-${verb}`, textContent: t(`c_${verb}`) });
      button.addEventListener("click", () => act(campaign.campaign_id, verb));
      actions.append(button);
    }
    actions.append(el("a", { className: "c-results", href: `/api/campaigns/${campaign.campaign_id}/results.csv`, textContent: t("c_results"), download: "" }));
    const tr = el(
      "tr",
      { className: "campaign" },
      el("td", {}, el("b", { textContent: campaign.name }), " ", el("code", { textContent: campaign.campaign_id.slice(0, 8), title: campaign.campaign_id })),
      el("td", {}, el("span", { className: `st cs-${campaign.status}`, textContent: t(`cs_${campaign.status}`) })),
      el("td", {}, bar, el("small", { className: "c-done", textContent: `${progress.done} / ${progress.total}` })),
      el("td", { className: "counts", textContent: countsText(campaign) }),
      el("td", { className: "num", textContent: campaign.eta_s === null || campaign.eta_s === undefined ? "–" : t("c_eta", { n: Math.round(campaign.eta_s) }) }),
      actions,
    );
    tr.dataset.campaignId = campaign.campaign_id;
    tr.dataset.status = campaign.status;
    tr.dataset.done = String(progress.done);
    return tr;
  }

  function render(campaigns) {
    if (!campaigns) return;
    last = campaigns;
    const body = $("campaigns-body");
    if (!campaigns.length) {
      body.replaceChildren(el("tr", {}, el("td", { colSpan: 6, className: "empty", textContent: t("c_none") })));
    } else {
      body.replaceChildren(...campaigns.map(row));
    }
    hook.renders += 1;
  }

  window.addEventListener("ttsq:snapshot", (event) => {
    render(event.detail.campaigns || last);
    if (said && said.key) say(said.kind, said.key, said.vars);
  });
  window.addEventListener("DOMContentLoaded", () => {
    $("c-check").addEventListener("click", () => send(true));
    $("campaign-form").addEventListener("submit", (event) => {
      event.preventDefault();
      send(false);
    });
  });
})();
