// evalsuite leaderboard: table sorting and the sample filter. Moves existing DOM nodes only; never
// builds HTML from strings, so nothing from the results is ever parsed as markup here.
(function () {
  "use strict";

  function cellKey(row, idx, numeric) {
    var cell = row.cells[idx];
    if (!cell) { return numeric ? null : ""; }
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (!numeric) { return raw.trim().toLowerCase(); }
    var v = parseFloat(raw);
    return isNaN(v) ? null : v;
  }

  function sortTable(table, idx, th) {
    var numeric = th.getAttribute("data-type") === "num";
    var current = th.getAttribute("aria-sort");
    // numbers start high-to-low (best first for scores), text starts A-Z
    var dir = current ? (current === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (r, pos) { return { row: r, key: cellKey(r, idx, numeric), pos: pos }; });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) { return a.pos - b.pos; }
      if (a.key === null) { return 1; }   // missing values always last
      if (b.key === null) { return -1; }
      if (a.key < b.key) { return -dir; }
      if (a.key > b.key) { return dir; }
      return a.pos - b.pos;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  function init() {
    var tables = document.querySelectorAll("table.sortable");
    Array.prototype.forEach.call(tables, function (table) {
      if (!table.tHead || !table.tBodies.length) { return; }
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, idx) {
        th.setAttribute("tabindex", "0");
        th.addEventListener("click", function (ev) {
          if (ev.target && ev.target.tagName === "A") { return; }
          sortTable(table, idx, th);
        });
        th.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); sortTable(table, idx, th); }
        });
      });
    });
    var only = document.getElementById("only-failed");
    if (only) {
      only.addEventListener("change", function () { document.body.classList.toggle("only-failed", only.checked); });
    }
    document.documentElement.setAttribute("data-site-ready", "1");
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
}());
