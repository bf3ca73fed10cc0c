// The leaders' weekly review (/board): sortable tables, the 12-week chart, a print button.
// The page works without it: the tables are in server order, the trend's numbers in a table.
(function () {
  "use strict";

  var NUMERIC = { count: true, percent: true };
  var COLLATOR = new Intl.Collator("vi", { numeric: true, sensitivity: "base" });

  function sortKey(cell, numeric) {
    var raw = cell ? cell.getAttribute("data-value") : "";
    if (raw === null || raw === "") return null; // nothing to measure: always last
    return numeric ? parseFloat(raw) : raw;
  }

  function compare(a, b, numeric) {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return numeric ? a - b : COLLATOR.compare(a, b);
  }

  function sortBy(table, header, index) {
    var numeric = NUMERIC[header.getAttribute("data-kind")] === true;
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (left, right) {
      var a = sortKey(left.cells[index], numeric);
      var b = sortKey(right.cells[index], numeric);
      if (a === null || b === null) return compare(a, b, numeric); // empty last either way
      var order = compare(a, b, numeric);
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (other) {
      other.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
  }

  function makeSortable(table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      while (header.firstChild) button.appendChild(header.firstChild);
      button.title = "Sắp xếp theo cột này";
      button.addEventListener("click", function () { sortBy(table, header, index); });
      header.appendChild(button);
    });
  }

  var COLOURS = ["#0b5cab", "#1e7a3c", "#b35c00", "#7b3fa0"];
  var POINTS = ["circle", "rect", "triangle", "rectRot"];

  function percentText(value) {
    return value === null || value === undefined
      ? "—"
      : value.toLocaleString("vi-VN", { minimumFractionDigits: 1, maximumFractionDigits: 1 }) + "%";
  }

  function drawTrend() {
    var canvas = document.getElementById("trend-chart");
    var source = document.getElementById("trend-data");
    if (!canvas || !source || typeof window.Chart === "undefined") return;
    var trend = JSON.parse(source.textContent);
    var datasets = trend.series.map(function (series, index) {
      return {
        label: series.label,
        data: series.data,
        borderColor: COLOURS[index % COLOURS.length],
        backgroundColor: COLOURS[index % COLOURS.length],
        pointStyle: POINTS[index % POINTS.length],
        pointRadius: 4,
        borderWidth: 2,
        spanGaps: true,
      };
    });
    new window.Chart(canvas, {
      type: "line",
      data: { labels: trend.labels, datasets: datasets },
      options: {
        animation: false,
        locale: "vi-VN",
        aspectRatio: 1.6,
        interaction: { mode: "index", intersect: false },
        scales: {
          y: {
            min: 0,
            max: 100,
            ticks: { callback: function (value) { return value + "%"; } },
          },
        },
        plugins: {
          legend: { labels: { usePointStyle: true } },
          tooltip: {
            callbacks: {
              label: function (context) {
                return context.dataset.label + ": " + percentText(context.parsed.y);
              },
            },
          },
        },
      },
    });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), makeSortable);
    var print = document.querySelector("button.print");
    if (print) {
      print.hidden = false;
      print.addEventListener("click", function () { window.print(); });
    }
    drawTrend();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
