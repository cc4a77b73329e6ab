// Live progress bars on the dashboard: one request for all active jobs every ~3 s.
(function () {
  "use strict";
  var table = document.getElementById("active-jobs");
  if (!table) return;
  var url = table.dataset.url;
  function poll() {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        data.jobs.forEach(function (job) {
          var row = document.getElementById("job-" + job.id);
          if (!row) return;
          row.querySelector(".bar > span").style.width = job.progress_percent + "%";
          row.querySelector(".pct").textContent = job.progress_percent.toFixed(1) + "%";
          var status = row.querySelector(".status");
          status.className = "status status-" + job.status;
          status.lastChild.textContent = job.status;
        });
        setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 6000); });
  }
  setTimeout(poll, 3000);
})();
