// The dashboard's equity curve, drawn by the vendored lightweight-charts from the points the page
// carries in <script id="equity-points" type="application/json">. No data, no chart: the page says so.
(function () {
  "use strict";
  function draw() {
    var box = document.getElementById("equity-chart");
    var data = document.getElementById("equity-points");
    if (!box || !data || !window.LightweightCharts) return;
    var points = JSON.parse(data.textContent);
    var charts = window.LightweightCharts;
    var chart = charts.createChart(box, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#5d6b6a", fontFamily: "system-ui, sans-serif" },
      grid: { vertLines: { color: "#eef2f2" }, horzLines: { color: "#eef2f2" } },
      rightPriceScale: { borderColor: "#dde3e2" },
      timeScale: { borderColor: "#dde3e2", timeVisible: true, secondsVisible: false },
      localization: { priceFormatter: function (price) { return price.toLocaleString("en-US", { maximumFractionDigits: 2 }); } },
    });
    var series = chart.addSeries(charts.AreaSeries, {
      lineColor: "#0b6e70", topColor: "rgba(11, 110, 112, 0.28)", bottomColor: "rgba(11, 110, 112, 0.02)", lineWidth: 2,
    });
    series.setData(points);
    chart.timeScale().fitContent();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
