// Warden results UI: the jobs list and a job's status follow
// /ui/events (server-sent events); the analysis report's frame fits its
// content. Everything is built with textContent: no markup from data.
"use strict";

function statusCell(td, status) {
  td.textContent = status;
  td.className = "status st-" + status;
}

function fillRow(tr, job) {
  tr.id = "job-" + job.id;
  tr.dataset.created = job.created;
  tr.replaceChildren();
  const cell = () => tr.appendChild(document.createElement("td"));
  const a = document.createElement("a");
  a.href = job.url;
  const code = document.createElement("code");
  code.textContent = job.id;
  a.appendChild(code);
  cell().appendChild(a);
  cell().textContent = job.kind;
  statusCell(cell(), job.status);
  const p = cell();
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = job.progress;
  const pct = document.createElement("span");
  pct.className = "pct";
  pct.textContent = job.progress + "%";
  p.append(bar, " ", pct);
  const stage = cell();
  stage.className = "stage";
  stage.textContent = job.stage;
  const t = document.createElement("time");
  t.textContent = job.created;
  cell().appendChild(t);
  tr.classList.remove("changed");
  void tr.offsetWidth; // restart the highlight
  tr.classList.add("changed");
}

function upsert(tbody, job) {
  let tr = document.getElementById("job-" + job.id);
  if (!tr) {
    tr = document.createElement("tr");
    let before = null;
    for (const row of tbody.rows) {
      if (row.dataset.created < job.created || (row.dataset.created === job.created && row.id < "job-" + job.id)) {
        before = row;
        break;
      }
    }
    tbody.insertBefore(tr, before);
  }
  fillRow(tr, job);
}

function follow(url, handlers, badge) {
  const es = new EventSource(url);
  const state = (s, text) => {
    if (badge) {
      badge.dataset.state = s;
      badge.textContent = text;
    }
  };
  es.onopen = () => state("live", "live");
  es.onerror = () => state("offline", "reconnecting…");
  for (const [name, fn] of Object.entries(handlers)) {
    es.addEventListener(name, (ev) => fn(JSON.parse(ev.data)));
  }
  es.addEventListener("signed-out", () => {
    es.close();
    window.location.assign("/ui/login");
  });
  return es;
}

function jobsPage(table) {
  const tbody = table.tBodies[0];
  const empty = document.getElementById("empty");
  follow(table.dataset.events, {
    job: (job) => {
      upsert(tbody, job);
      if (empty) empty.hidden = true;
    },
    remove: (m) => {
      const tr = document.getElementById("job-" + m.id);
      if (tr) tr.remove();
    },
  }, document.getElementById("live"));
}

function jobPage(table) {
  const id = table.dataset.job;
  const initial = table.dataset.status;
  const finished = ["completed", "failed", "cancelled"];
  if (finished.includes(initial)) return;
  const es = follow(table.dataset.events, {
    job: (job) => {
      if (job.id !== id) return;
      statusCell(document.getElementById("status"), job.status);
      const bar = table.querySelector("progress");
      if (bar) bar.value = job.progress;
      const pct = table.querySelector(".pct");
      if (pct) pct.textContent = job.progress + "%";
      const stage = table.querySelector(".stage");
      if (stage) stage.textContent = job.stage;
      if (finished.includes(job.status)) {
        es.close();
        window.location.reload(); // the result
      }
    },
  }, null);
}

function fitReport(frame) {
  const fit = () => {
    try {
      const doc = frame.contentDocument;
      if (doc && doc.documentElement) frame.style.height = doc.documentElement.scrollHeight + 24 + "px";
    } catch (e) {
      // not readable: keep the CSS height
    }
  };
  frame.addEventListener("load", fit);
  fit();
}

document.addEventListener("DOMContentLoaded", () => {
  const jobs = document.getElementById("jobs");
  if (jobs) jobsPage(jobs);
  const status = document.getElementById("job-status");
  if (status) jobPage(status);
  const report = document.getElementById("report");
  if (report) fitReport(report);
});
