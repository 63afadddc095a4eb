// Charts of the dashboard, analytics, account and replay pages, drawn by the vendored lightweight-charts. Each
// chart is an element with data-chart="area" or "histogram" and data-points naming the <script
// type="application/json"> (Django's json_script) that holds its points: {time, value}, time in Unix
// seconds or a "YYYY-MM-DD" day; or data-chart="lines" and data-points naming several, space-separated,
// one line each (data-names: their names, "|"-separated, for the legend the page prints beside).
// No data, no element: the page says so in words instead.
(function () {
  "use strict";
  var INK = "#5d6b6a", LINE = "#eef2f2", BORDER = "#dde3e2", BRAND = "#0b6e70", GAIN = "#2f9e5b", LOSS = "#c43d3d";
  var LINES = [INK, BRAND, "#c27c0e"]; // reality, recorded, changed: also the legend's colours (ui.css .legend)

  function money(value) {
    return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  }

  function chartIn(box, charts) {
    return charts.createChart(box, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: INK, fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: LINE }, horzLines: { color: LINE } },
      rightPriceScale: { borderColor: BORDER },
      timeScale: { borderColor: BORDER, timeVisible: box.dataset.chart !== "histogram", secondsVisible: false },
      localization: { priceFormatter: money },
    });
  }

  function drawLines(box, charts) {
    var ids = box.dataset.points.split(" ");
    var chart = chartIn(box, charts);
    for (var i = 0; i < ids.length; i++) {
      var source = document.getElementById(ids[i]);
      if (!source) continue;
      var series = chart.addSeries(charts.LineSeries, { color: LINES[i % LINES.length], lineWidth: 2, priceLineVisible: false });
      series.setData(JSON.parse(source.textContent));
    }
    chart.timeScale().fitContent();
  }

  function draw(box, charts) {
    if (box.dataset.chart === "lines") return drawLines(box, charts);
    var source = document.getElementById(box.dataset.points);
    if (!source) return;
    var points = JSON.parse(source.textContent);
    var chart = chartIn(box, charts);
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
