// Live progress for the job page: polls the job's progress.json every ~2 s (as the original design's
// useJobMonitor hook does) and stops once the job is finalized.
(function () {
  "use strict";
  var card = document.getElementById("progress-card");
  if (!card || card.dataset.finalized === "true") return;
  var url = card.dataset.progressUrl;
  var interval = 2000;

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function number(n) { return (n || 0).toLocaleString(); }

  function render(job) {
    var percent = job.progress_percent || 0;
    text("percent", percent.toFixed(1) + "%");
    var bar = document.getElementById("bar");
    if (bar) {
      bar.firstElementChild.style.width = percent + "%";
      bar.setAttribute("aria-valuenow", percent.toFixed(1));
      if (job.is_finalized) bar.classList.add("done");
    }
    text("processed", number(job.items_processed));
    text("failed", number(job.items_failed));
    text("skipped", number(job.items_skipped));
    text("done-count", number(job.items_processed + job.items_failed + job.items_skipped));
    text("throughput", job.throughput_per_second ? number(Math.round(job.throughput_per_second)) + " items/s" : "\u2014");
    text("eta", job.estimated_completion_time ? new Date(job.estimated_completion_time).toLocaleTimeString() : "\u2014");
    var status = document.getElementById("status");
    if (status && job.status_html) {
      // The server-rendered badge (icon + text), copied into the element that keeps its id.
      var fresh = document.createElement("div");
      fresh.innerHTML = job.status_html;
      if (fresh.firstElementChild) {
        status.className = fresh.firstElementChild.className;
        status.innerHTML = fresh.firstElementChild.innerHTML;
      }
    }
    if (job.error_message !== undefined) text("error-message", job.error_message);
    if (job.batch_counts) {
      Object.keys(job.batch_counts).forEach(function (key) { text("batches-" + key, number(job.batch_counts[key])); });
    }
    if (job.can_cancel === false) {
      // Cancelled, completed or failed: no Cancel, even while running batches still stop.
      document.querySelectorAll("[data-hide-when-final]").forEach(function (el) { el.hidden = true; });
    }
    if (job.is_finalized) {
      card.dataset.finalized = "true";
      var note = document.getElementById("finished-note");
      if (note) note.hidden = false;
    }
  }

  // The chart, summary, failures and batch tables, and the action buttons, are
  // server-rendered: swap in a fresh copy of those parts every few polls and once more when
  // the job is final (that is when Retry can appear).
  var polls = 0;
  function refreshDetails() {
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        ["details", "job-actions"].forEach(function (id) {
          var current = document.getElementById(id);
          var fresh = doc.getElementById(id);
          if (current && fresh) current.replaceWith(document.importNode(fresh, true));
        });
      })
      .catch(function () {});
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (job) {
        render(job);
        polls += 1;
        var actions = document.getElementById("job-actions");
        var retryChanged = actions && String(job.can_retry) !== actions.dataset.canRetry;
        if (job.is_finalized || retryChanged || polls % 5 === 0) refreshDetails();
        if (!job.is_finalized) setTimeout(poll, interval);
      })
      .catch(function () { setTimeout(poll, interval * 2); });
  }
  setTimeout(poll, interval);
})();

// Confirmation for destructive buttons (forms with data-confirm).
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) event.preventDefault();
});
