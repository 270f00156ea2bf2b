// The attendee's steps: copy a command, check a step, run it, and the step states the
// server pushes (server-sent events: this seat's row of the instructor's grid).
"use strict";

(function () {
  const labels = { "not-yet": "not yet", done: "done", failing: "failing", "no-checks": "" };

  function post(url) {
    return fetch(url, { method: "POST" }).then((r) =>
      r.json().then((body) => ({ ok: r.ok, body }))
    );
  }

  function busy(article, on) {
    article.querySelector(".busy").hidden = !on;
    article.querySelectorAll("button.check, button.run").forEach((b) => (b.disabled = on));
  }

  function showState(article, state) {
    const badge = article.querySelector(".state");
    badge.dataset.state = state;
    badge.textContent = labels[state] || "";
  }

  function showVerdict(article, body) {
    const list = article.querySelector(".verdicts");
    list.replaceChildren();
    const rows = body.error
      ? [{ outcome: "error", title: body.error, message: "" }]
      : body.problems.map((p) => ({ outcome: "error", title: "the checks could not run", message: p }))
          .concat(body.results);
    if (!rows.length) rows.push({ outcome: "error", title: "no check ran", message: "" });
    for (const r of rows) {
      const li = document.createElement("li");
      li.className = r.outcome === "passed" ? "passed" : "failed";
      li.textContent = (r.outcome === "passed" ? "✔ " : "✘ ") + r.title;
      if (r.message) {
        const why = document.createElement("pre");
        why.textContent = r.message;
        li.appendChild(why);
      }
      list.appendChild(li);
    }
    if (body.cell) showState(article, body.cell);
  }

  document.querySelectorAll("article.step").forEach((article) => {
    const step = article.dataset.step;
    const code = article.querySelector(".command code").textContent;
    article.querySelector("button.copy").addEventListener("click", (event) => {
      const done = () => { event.target.textContent = "Copied"; setTimeout(() => (event.target.textContent = "Copy"), 1500); };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(code).then(done, () => window.labTerminalType(code));
      } else {
        // Over plain http to another host the clipboard API is off: type it instead.
        window.labTerminalType(code);
        done();
      }
    });
    const check = article.querySelector("button.check");
    if (check) {
      check.addEventListener("click", () => {
        busy(article, true);
        post("check/" + step)
          .then(({ body }) => showVerdict(article, body))
          .finally(() => busy(article, false));
      });
    }
    article.querySelector("button.run").addEventListener("click", () => {
      busy(article, true);
      const output = article.querySelector(".output");
      post("run/" + step)
        .then(({ body }) => {
          output.hidden = false;
          output.className = "output " + (body.exit_code === 0 ? "ok" : "bad");
          output.textContent = body.error
            ? body.error
            : body.output + "\n[exit " + body.exit_code + ", " + body.seconds + " s]";
        })
        .finally(() => busy(article, false));
    });
  });

  function applySettings(runForMe) {
    document.querySelectorAll("button.run").forEach((b) => {
      b.hidden = !runForMe;
    });
  }

  const events = new EventSource("events");
  events.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.type === "grid") {
      applySettings(event.run_for_me);
      for (const row of event.rows) {
        for (const [step, cell] of Object.entries(row.cells)) {
          const article = document.getElementById("step-" + step);
          if (article) showState(article, cell.state);
        }
      }
    } else if (event.type === "cell") {
      const article = document.getElementById("step-" + event.step);
      if (article) showState(article, event.state);
    } else if (event.type === "row") {
      for (const [step, cell] of Object.entries(event.row.cells)) {
        const article = document.getElementById("step-" + step);
        if (article) showState(article, cell.state);
      }
    } else if (event.type === "settings") {
      applySettings(event.run_for_me);
    }
  };
})();
