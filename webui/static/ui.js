// Small page behaviours without a build step: chart legends that show and hide their
// series, and tables sorted by a click on a heading.
(function () {
  "use strict";

  // A legend entry toggles every element of its series (data-toggle = data-series).
  function toggle(item) {
    var svg = item.closest("svg"), key = item.getAttribute("data-toggle");
    var on = item.getAttribute("aria-pressed") !== "false";
    item.setAttribute("aria-pressed", on ? "false" : "true");
    svg.querySelectorAll('[data-series="' + key + '"]').forEach(function (g) { g.classList.toggle("off", on); });
  }
  document.addEventListener("click", function (ev) {
    var item = ev.target.closest && ev.target.closest(".legend-item");
    if (item) toggle(item);
  });
  document.addEventListener("keydown", function (ev) {
    var item = ev.target.closest && ev.target.closest(".legend-item");
    if (item && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); toggle(item); }
  });

  // table.sortable: a heading click sorts by the cells' data-sort (numbers) or text.
  function value(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    var number = raw === "" ? NaN : Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortBy(table, column, header) {
    var body = table.tBodies[0];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a.cells[column]), y = value(b.cells[column]);
      if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
      return (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    });
    rows.forEach(function (row) { body.appendChild(row); });
    table.querySelectorAll("th").forEach(function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.tHead.querySelectorAll("th").forEach(function (th, column) {
        th.tabIndex = 0;
        th.classList.add("sort");
        th.title = "sort by " + th.textContent.trim();
        th.addEventListener("click", function () { sortBy(table, column, th); });
        th.addEventListener("keydown", function (ev) { if (ev.key === "Enter") sortBy(table, column, th); });
      });
    });
  });
})();
