// Logs page: the live stream (Server-Sent Events) puts new entries at the top of the table.
(function () {
  "use strict";
  var button = document.getElementById("live-toggle");
  var state = document.getElementById("live-state");
  var rows = document.getElementById("log-rows");
  if (!button || !rows) { return; }
  var source = null;
  var FIELDS = ["time", "level", "component", "message", "details"];

  function addRow(entry) {
    var tr = document.createElement("tr");
    tr.className = "fresh level-" + (entry.level || "");
    FIELDS.forEach(function (key) {
      var td = document.createElement("td");
      td.textContent = entry[key] === undefined || entry[key] === null ? "" : String(entry[key]);
      tr.appendChild(td);
    });
    rows.insertBefore(tr, rows.firstChild);
  }

  function stop() {
    if (source) { source.close(); source = null; }
    button.textContent = "Start live stream";
    state.textContent = "live stream off";
  }

  function start() {
    source = new EventSource(button.getAttribute("data-stream"));
    button.textContent = "Stop live stream";
    state.textContent = "live stream connecting...";
    source.onopen = function () { state.textContent = "live stream on: new entries appear at the top"; };
    source.onmessage = function (ev) {
      try { addRow(JSON.parse(ev.data)); } catch (e) { /* not an entry */ }
    };
    source.onerror = function () {
      state.textContent = source && source.readyState === EventSource.CLOSED
        ? "live stream ended (log in again?)" : "live stream reconnecting...";
    };
  }

  button.addEventListener("click", function () { if (source) { stop(); } else { start(); } });
})();
