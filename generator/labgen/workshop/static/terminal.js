// A terminal on a seat's machine: xterm.js (vendored) speaking to the server over a
// websocket. The server relays an SSH pty: its output arrives as binary frames; keys
// and the terminal's size go back as JSON ({"input": ...}, {"cols": C, "rows": R}).
// A page marked data-readonly only watches: it sends nothing, and the server would
// drop it anyway. The connection comes back by itself after a reset or a network blip.
"use strict";

(function () {
  const box = document.getElementById("terminal");
  const link = document.getElementById("link");
  const readOnly = box.dataset.readonly === "1";
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
  term.open(box);
  fit.fit();
  window.labTerminal = term; // for the steps' buttons (and tests)

  let socket = null;
  let retry = 500;

  function status(text, ok) {
    link.textContent = text;
    link.className = "link " + (ok ? "up" : "down");
  }

  function send(message) {
    if (!readOnly && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    }
  }

  function connect() {
    const url = new URL(box.dataset.url, window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => {
      retry = 500;
      status(readOnly ? "watching" : "connected", true);
      term.reset();
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
      status("reconnecting…", false);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
  }

  term.onData((data) => send({ input: data }));
  term.onResize(({ cols, rows }) => send({ cols, rows }));
  window.addEventListener("resize", () => fit.fit());
  window.labTerminalType = (text) => send({ input: text });
  connect();
  term.focus();
})();
