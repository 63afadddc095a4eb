// Charts of the dashboard, analytics and account pages, drawn by the vendored lightweight-charts. Each chart is
// an element with data-chart="area" or "histogram" and data-points naming the <script
// type="application/json"> (Django's json_script) that holds its points: {time, value}, time in Unix
// seconds or a "YYYY-MM-DD" day. No data, no element: the page says so in words instead.
(function () {
  "use strict";
  var INK = "#5d6b6a", LINE = "#eef2f2", BORDER = "#dde3e2", BRAND = "#0b6e70", GAIN = "#2f9e5b", LOSS = "#c43d3d";

  function money(value) {
    return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  function draw(box, charts) {
    var source = document.getElementById(box.dataset.points);
    if (!source) return;
    var points = JSON.parse(source.textContent);
    var chart = charts.createChart(box, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: INK, fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: LINE }, horzLines: { color: LINE } },
      rightPriceScale: { borderColor: BORDER },
      timeScale: { borderColor: BORDER, timeVisible: box.dataset.chart === "area", secondsVisible: false },
      localization: { priceFormatter: money },
    });
    var series;
    if (box.dataset.chart === "histogram") {
      series = chart.addSeries(charts.HistogramSeries, { priceLineVisible: false });
      points = points.map(function (point) {
        return { time: point.time, value: point.value, color: point.value < 0 ? LOSS : GAIN };
      });
    } else {
      series = chart.addSeries(charts.AreaSeries, {
        lineColor: BRAND, topColor: "rgba(11, 110, 112, 0.28)", bottomColor: "rgba(11, 110, 112, 0.02)", lineWidth: 2,
      });
    }
    series.setData(points);
    chart.timeScale().fitContent();
  }

  function drawAll() {
    if (!window.LightweightCharts) return;
    var boxes = document.querySelectorAll("[data-chart]");
    for (var i = 0; i < boxes.length; i++) draw(boxes[i], window.LightweightCharts);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
