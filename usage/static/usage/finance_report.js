// The finance report's charts, drawn by the vendored Chart.js from the data the page embeds (report-data).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var palette = ["#26415f", "#e07a2f", "#3c8d5a", "#b8463c", "#7d5ba6", "#2d8bb5", "#c5a22c", "#8c6d52", "#999999"];
  // Money as on the rest of the page (usage/money.py): cents, "<$0.01" for a nonzero amount under half a cent.
  var money = function (v) {
    v = Number(v);
    var sign = v < 0 ? "-" : "";
    if (v !== 0 && Math.abs(v) < 0.005) return sign + "<$0.01";
    return sign + "$" + Math.abs(v).toLocaleString("en-US", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  };
  // An axis under a cent keeps its scale readable: a few significant digits, never exponent notation.
  var tick = function (v) {
    return v !== 0 && Math.abs(v) < 0.01 ? "$" + Number(v).toLocaleString("en-US", {maximumSignificantDigits: 3}) : money(v);
  };
  var common = {responsive: true, maintainAspectRatio: false, animation: false,
                interaction: {mode: "index", intersect: false}};
  window.financeCharts = {};

  window.financeCharts.spend = new Chart(document.getElementById("chart-spend"), {
    type: "bar",
    data: {labels: data.days, datasets: data.spend.map(function (s, i) {
      return {label: s.label, data: s.data, backgroundColor: palette[i % palette.length], stack: "spend"};
    })},
    options: Object.assign({}, common, {
      plugins: {title: {display: true, text: "Spend per day (USD)"},
                tooltip: {callbacks: {label: function (c) { return c.dataset.label + ": " + money(c.raw); }}}},
      scales: {x: {stacked: true}, y: {stacked: true, ticks: {callback: tick}}}
    })
  });

  var d = data.daily;
  window.financeCharts.tokens = new Chart(document.getElementById("chart-tokens"), {
    type: "bar",
    data: {labels: data.days, datasets: [
      {label: "input", data: d.input_tokens, backgroundColor: palette[0]},
      {label: "cache read", data: d.cache_read_tokens, backgroundColor: palette[5]},
      {label: "cache write", data: d.cache_write_tokens, backgroundColor: palette[6]},
      {label: "output", data: d.output_tokens, backgroundColor: palette[1]}
    ]},
    options: Object.assign({}, common, {plugins: {title: {display: true, text: "Tokens per day"}},
                                        scales: {x: {stacked: true}, y: {stacked: true}}})
  });

  window.financeCharts.requests = new Chart(document.getElementById("chart-requests"), {
    type: "bar",
    data: {labels: data.days, datasets: [
      {type: "line", label: "errors", data: d.errors, borderColor: palette[3], backgroundColor: palette[3],
       yAxisID: "y"},
      {label: "requests", data: d.requests, backgroundColor: palette[2], yAxisID: "y"}
    ]},
    options: Object.assign({}, common, {plugins: {title: {display: true, text: "Requests and errors per day"}}})
  });
})();
