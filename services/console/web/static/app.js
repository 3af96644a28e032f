// The live sync log: new events arrive over server-sent events and are put
// at the top of the table. Everything else in the console works without JS.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var table = document.getElementById("log");
    if (!table || !window.EventSource) return;
    var body = table.tBodies[0];
    var es = new EventSource(table.dataset.stream);
    es.onmessage = function (m) {
      var e = JSON.parse(m.data);
      var tr = document.createElement("tr");
      tr.className = "new";
      [["time", e.when], ["", e.tenant], ["code", e.kind], ["", e.summary]].forEach(function (c, i) {
        var td = document.createElement("td");
        var el = td;
        if (c[0]) { el = document.createElement(c[0]); td.appendChild(el); }
        if (c[0] === "time") el.setAttribute("datetime", e.iso);
        if (i === 3) td.className = "ev";
        el.textContent = c[1];
        tr.appendChild(td);
      });
      body.insertBefore(tr, body.firstChild);
      while (body.rows.length > 500) body.deleteRow(body.rows.length - 1);
      var empty = document.getElementById("log-empty");
      if (empty) empty.remove();
    };
  });
})();
