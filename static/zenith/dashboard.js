// Live progress bars on the dashboard: one request every ~3 s for the jobs shown. The rows
// are named in ?ids= so a job that finishes (and leaves the unfinished set) is still
// returned, and its row shows the final status, icon and bar instead of freezing.
(function () {
  "use strict";
  var table = document.getElementById("active-jobs");
  if (!table) return;
  var url = table.dataset.url;

  function setStatus(el, html) {
    // Copy the server-rendered badge (icon + text) into the existing element.
    var fresh = document.createElement("div");
    fresh.innerHTML = html;
    var badge = fresh.firstElementChild;
    if (!el || !badge) return;
    el.className = badge.className;
    el.innerHTML = badge.innerHTML;
  }

  function pendingRows() {
    return Array.prototype.filter.call(table.querySelectorAll("tbody tr[id^='job-']"), function (row) {
      return row.dataset.final !== "true";
    });
  }

  function poll() {
    var rows = pendingRows();
    if (!rows.length) return;  // every row shows its final state
    var ids = rows.map(function (row) { return row.id.slice(4); });
    fetch(url + "?ids=" + encodeURIComponent(ids.join(",")), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        data.jobs.forEach(function (job) {
          var row = document.getElementById("job-" + job.id);
          if (!row) return;
          var percent = job.progress_percent || 0;
          var bar = row.querySelector(".bar");
          bar.firstElementChild.style.width = percent + "%";
          bar.setAttribute("aria-valuenow", percent.toFixed(1));
          row.querySelector(".pct").textContent = percent.toFixed(1) + "%";
          setStatus(row.querySelector(".status"), job.status_html);
          if (job.is_finalized) {
            bar.classList.add("done");
            row.dataset.final = "true";
          }
        });
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 6000); });
  }
  setTimeout(poll, 3000);
})();
