// Terminals on a seat's machine: xterm.js (vendored), one per tab, each speaking to the
// server over a websocket of its own. The server relays an SSH pty running a tmux client
// attached to that tab's shell, which lives in a tmux session on the machine: a closed
// page, a dropped network or a restarted server only detach the client, and the next
// connection finds the same shell, whose screen tmux draws again. Output arrives as
// binary frames; keys and the terminal's size go back as JSON ({"input": ...},
// {"cols": C, "rows": R}); which shell, and its size at first, ride in the socket's URL
// (?n=2&cols=C&rows=R) so tmux draws the screen at this page's size from the start.
// A page marked data-readonly only watches: it sends nothing, and the server would drop
// it anyway. Connections come back by themselves after a reset or a network blip.
"use strict";

(function () {
  const box = document.getElementById("terminal");
  const link = document.getElementById("link");
  const readOnly = box.dataset.readonly === "1";
  const tabs = Array.from(document.querySelectorAll("[data-terminal-tab]"));
  // The attendee's page holds a host per tab; the watch page is one host, whose shell
  // its own URL names (watch?n=2), the first by default.
  const hosts = Array.from(box.querySelectorAll("[data-terminal]"));
  if (!hosts.length) {
    box.dataset.terminal = new URLSearchParams(window.location.search).get("n") || "1";
    hosts.push(box);
  }
  const shells = {}; // number -> a shell, made when its tab is first shown
  let active = null;

  function showStatus() {
    if (!active) return;
    const up = active.up;
    link.textContent = up ? (readOnly ? "watching" : "connected") : "reconnecting…";
    link.className = "link " + (up ? "up" : "down");
  }

  function makeShell(host) {
    const number = host.dataset.terminal;
    const term = new Terminal({
      cursorBlink: !readOnly,
      disableStdin: readOnly,
      fontFamily: "'DejaVu Sans Mono', 'Liberation Mono', monospace",
      fontSize: 14,
      scrollback: 5000,
      theme: { background: "#1e1f24", foreground: "#e6e6e6" },
    });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(host);
    fit.fit();
    const shell = { number, term, fit, up: false, socket: null, retry: 500 };

    function send(message) {
      if (!readOnly && shell.socket && shell.socket.readyState === WebSocket.OPEN) {
        shell.socket.send(JSON.stringify(message));
      }
    }
    shell.send = send;

    function connect() {
      const url = new URL(box.dataset.url, window.location.href);
      url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
      url.search = new URLSearchParams({ n: number, cols: term.cols, rows: term.rows });
      const socket = new WebSocket(url);
      shell.socket = socket;
      socket.binaryType = "arraybuffer";
      socket.onopen = () => {
        shell.retry = 500;
        shell.up = true;
        if (shell === active) showStatus();
        term.reset(); // tmux draws the whole screen on attach
        send({ cols: term.cols, rows: term.rows });
      };
      socket.onmessage = (event) => {
        if (typeof event.data === "string") {
          const message = JSON.parse(event.data);
          if (message.error) term.write("\r\n\x1b[31m" + message.error + "\x1b[0m\r\n");
          return;
        }
        term.write(new Uint8Array(event.data));
      };
      socket.onclose = () => {
        shell.up = false;
        if (shell === active) showStatus();
        setTimeout(connect, shell.retry);
        // soon enough to be back within a second or two of a restarted server
        shell.retry = Math.min(shell.retry * 2, 2000);
      };
    }

    term.onData((data) => send({ input: data }));
    term.onResize(({ cols, rows }) => send({ cols, rows }));
    connect();
    return shell;
  }

  function show(number) {
    for (const host of hosts) host.hidden = host.dataset.terminal !== number;
    for (const tab of tabs) {
      tab.setAttribute("aria-selected", tab.dataset.terminalTab === number ? "true" : "false");
    }
    const host = hosts.find((h) => h.dataset.terminal === number) || hosts[0];
    // Made once shown: xterm.js measures its host, which has no size while hidden.
    active = shells[number] || (shells[number] = makeShell(host));
    active.fit.fit();
    window.labTerminal = active.term; // for the steps' buttons (and tests)
    showStatus();
    active.term.focus();
  }

  for (const tab of tabs) tab.addEventListener("click", () => show(tab.dataset.terminalTab));
  window.addEventListener("resize", () => active && active.fit.fit());
  window.labTerminalType = (text) => active && active.send({ input: text });
  show(hosts[0].dataset.terminal);
})();
