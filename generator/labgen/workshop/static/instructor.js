// The instructor's grid, kept current by server-sent events: every cell's state and
// the time it last changed; reset a seat; allow or forbid "Run it for me". Below it the
// room's report (a fragment the server renders from its database), fetched again a
// moment after the grid changes, and every half minute for the "since" times. Each row
// says who sits there, whether their page is open now and when they last did something;
// the instructor assigns, frees and re-issues seats and opens or closes the join page.
// Names are people's: they go into the page as text only.
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

  function paintPresence(who) {
    const tr = document.querySelector(`tr[data-seat="${who.seat}"]`);
    if (!tr) return;
    tr.dataset.attendee = who.attendee || "";
    tr.dataset.connected = who.connected > 0 ? "yes" : "no";
    tr.dataset.active = who.active || 0;
    tr.querySelector(".attendee-name").textContent = who.attendee || "";
    tr.querySelector(".connected").textContent =
      who.connected > 0 ? (who.connected > 1 ? `connected (${who.connected} pages)` : "connected") : "not connected";
    tr.querySelector(".active").textContent = who.active ? `· active ${time(who.active)}` : "";
  }

  function paintRow(row) {
    const tr = document.querySelector(`tr[data-seat="${row.seat}"]`);
    if (!tr) return;
    tr.dataset.machine = row.machine;
    tr.querySelector(".machine").textContent = row.machine === "ready" ? "" : row.machine;
    for (const [step, cell] of Object.entries(row.cells)) paint(row.seat, step, cell);
    paintPresence(row);
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

  const said = document.getElementById("seat-link");
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then((response) => response.json().then((data) => ({ ok: response.ok, data })));
  }
  // A seat's link is never written on this page (it may be on a projector): its card is.
  function tell(text, seat) {
    said.textContent = text;
    if (seat) {
      const card = document.createElement("a");
      card.href = `sheet#card-${seat}`;
      card.target = "_blank";
      card.rel = "noopener";
      card.textContent = `${seat}'s card`;
      said.append(" ", card);
    }
  }

  const joinOpen = document.getElementById("join-open");
  joinOpen.addEventListener("change", () => {
    post("join", { open: joinOpen.checked }).then(({ data }) => { joinOpen.checked = data.open; });
  });

  document.querySelectorAll("button.assign").forEach((button) => {
    button.addEventListener("click", () => {
      const seat = button.closest("tr").dataset.seat;
      const name = window.prompt(`Keep ${seat} for whom? (the join page will not give it away)`);
      if (!name) return;
      post(`seats/${seat}/assign`, { attendee: name }).then(({ ok, data }) => {
        if (ok) tell(`${seat} is kept for ${data.attendee}: hand them`, seat);
        else tell(data.hint ? `${data.error} (${data.hint})` : data.error);
      });
    });
  });
  document.querySelectorAll("button.free").forEach((button) => {
    button.addEventListener("click", () => {
      const seat = button.closest("tr").dataset.seat;
      if (!window.confirm(`Free ${seat}? Its attendee's link stops working (reset the machine too, for a clean seat).`)) return;
      post(`seats/${seat}/free`).then(({ ok, data }) => { tell(ok ? `${seat} is free` : data.error); });
    });
  });
  document.querySelectorAll("button.reissue").forEach((button) => {
    button.addEventListener("click", () => {
      const seat = button.closest("tr").dataset.seat;
      if (!window.confirm(`Give ${seat} a new link? The old link stops working at once.`)) return;
      post(`seats/${seat}/reissue`).then(({ ok, data }) => {
        if (ok) tell(`${seat} has a new link (the old one opens nothing now): hand over`, seat);
        else tell(data.error);
      });
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
      } else if (event.type === "presence") {
        paintPresence(event);
      } else if (event.type === "settings") {
        toggle.checked = event.run_for_me;
      }
    };
  }
  connect();
})();
