// The instructor's grid, kept current by server-sent events: every cell's state and
// the time it last changed; reset a seat; allow or forbid "Run it for me". Below it the
// room's report (a fragment the server renders from its database), fetched again a
// moment after the grid changes, and every half minute for the "since" times.
"use strict";

(function () {
  const link = document.getElementById("link");
  const labels = { "not-yet": "not yet", done: "done", failing: "failing", "no-checks": "–" };

  function time(epoch) {
    return epoch ? new Date(epoch * 1000).toLocaleTimeString([], { hour12: false }) : "";
  }

  function paint(seat, step, cell) {
    const td = document.querySelector(`tr[data-seat="${seat}"] td[data-step="${step}"]`);
    if (!td) return;
    td.className = "cell " + cell.state;
    td.dataset.state = cell.state;
    td.textContent = labels[cell.state] || cell.state;
    if (cell.changed) {
      const when = document.createElement("small");
      when.textContent = time(cell.changed);
      td.appendChild(when);
    }
    td.title = cell.detail || "";
  }

  function paintRow(row) {
    const tr = document.querySelector(`tr[data-seat="${row.seat}"]`);
    if (!tr) return;
    tr.dataset.machine = row.machine;
    tr.querySelector(".machine").textContent = row.machine === "ready" ? "" : row.machine;
    for (const [step, cell] of Object.entries(row.cells)) paint(row.seat, step, cell);
  }

  const toggle = document.getElementById("run-for-me");
  toggle.addEventListener("change", () => {
    fetch("run-for-me", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ enabled: toggle.checked }),
    });
  });

  document.querySelectorAll("button.reset").forEach((button) => {
    button.addEventListener("click", () => {
      const seat = button.closest("tr").dataset.seat;
      if (!window.confirm(`Destroy ${seat}'s machine and bring it up fresh?`)) return;
      fetch(`seats/${seat}/reset`, { method: "POST" });
    });
  });

  const report = document.getElementById("report");
  let reportTimer = null;
  function refreshReport(delay) {
    if (reportTimer) return; // one fetch for a burst of cell events
    reportTimer = setTimeout(() => {
      reportTimer = null;
      fetch("report", { cache: "no-store" })
        .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
        .then((html) => { report.innerHTML = html; }) // our own server's escaped HTML
        .catch(() => {});
    }, delay);
  }
  refreshReport(0);
  setInterval(() => refreshReport(0), 30000);

  function connect() {
    const events = new EventSource("events");
    events.onopen = () => { link.textContent = "live"; link.className = "link up"; };
    events.onerror = () => { link.textContent = "reconnecting…"; link.className = "link down"; };
    events.onmessage = (message) => {
      const event = JSON.parse(message.data);
      if (event.type === "grid") {
        toggle.checked = event.run_for_me;
        event.rows.forEach(paintRow);
      } else if (event.type === "cell") {
        paint(event.seat, event.step, event);
        refreshReport(1000);
      } else if (event.type === "row") {
        paintRow(event.row);
        refreshReport(1000);
      } else if (event.type === "settings") {
        toggle.checked = event.run_for_me;
      }
    };
  }
  connect();
})();
