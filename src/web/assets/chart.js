// smartproxy dashboard charts: a bar chart (spend per day) and a scatter plot (tokens against
// response time, one colour per model), drawn as SVG from JSON embedded in the page.
// No dependencies, no inline code: the Content-Security-Policy allows this file only.
"use strict";
(function () {
  var NS = "http://www.w3.org/2000/svg";
  // style.css's .s0-.s11, in order; series 12 and on change the marker's shape as well.
  var COLOURS = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#0c8599", "#c92a2a", "#5c940d", "#868e96",
    "#f59f00", "#845218", "#e64980", "#212529"];
  var SHAPES = 4;
  var W = 900, H = 280, L = 64, R = 16, T = 12, B = 40;

  function el(name, attrs, parent) {
    var node = document.createElementNS(NS, name);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }
  function text(parent, x, y, s, anchor) {
    var t = el("text", { x: x, y: y, "text-anchor": anchor || "middle" }, parent);
    t.textContent = s;
    return t;
  }
  function title(parent, s) {
    el("title", {}, parent).textContent = s;
  }
  // Round tick steps (1, 2, 5 times a power of ten) from 0 to the first tick at or above max.
  function ticks(max, n) {
    if (!(max > 0)) max = 1;
    var raw = max / n, p = Math.pow(10, Math.floor(Math.log10(raw))), step = p;
    [1, 2, 5, 10].some(function (m) { step = m * p; return m * p >= raw; });
    var count = Math.ceil(max / step - 1e-9), out = [];
    for (var i = 0; i <= count; i++) out.push(+(i * step).toPrecision(12));
    return out;
  }
  function svg(container) {
    var s = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", preserveAspectRatio: "xMidYMid meet" });
    container.appendChild(s);
    return s;
  }
  function yAxis(s, top, fmt) {
    ticks(top, 4).forEach(function (v) {
      var y = T + (H - T - B) * (1 - v / top);
      el("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }, s);
      text(s, L - 6, y + 4, fmt(v), "end");
    });
  }
  function money(v) {
    if (v === 0) return "$0";
    if (v >= 100) return "$" + v.toFixed(0);
    if (v >= 1) return "$" + v.toFixed(2);
    return "$" + v.toPrecision(2);
  }

  function count(v) {
    if (v >= 1e6) return +(v / 1e6).toPrecision(3) + "M";
    if (v >= 1e3) return +(v / 1e3).toPrecision(3) + "k";
    return String(v);
  }
  function ms(v) { return v >= 1000 ? +(v / 1000).toPrecision(3) + " s" : v + " ms"; }
  var FORMATS = { money: money, count: count, ms: ms };

  // Bars of d.value, with d.over (failures, p50) drawn inside each when given.
  function bars(container, data) {
    if (!data.length) return;
    var s = svg(container), fmt = FORMATS[container.getAttribute("data-format")] || money;
    var max = Math.max.apply(null, data.map(function (d) { return Math.max(d.value, d.over || 0); }));
    var top = ticks(max, 4).slice(-1)[0] || 1;
    yAxis(s, top, fmt);
    var slot = (W - L - R) / data.length, width = Math.max(1, slot * 0.7);
    data.forEach(function (d, i) {
      var h = (H - T - B) * (d.value / top), x = L + i * slot + (slot - width) / 2;
      var r = el("rect", { x: x, y: H - B - h, width: width, height: Math.max(h, 0.5), class: "bar" }, s);
      title(r, d.label + ": " + d.text);
      if (d.over != null && d.over > 0) {
        var ho = (H - T - B) * (d.over / top);
        title(el("rect", { x: x, y: H - B - ho, width: width, height: ho, class: "bar over" }, s), d.label + ": " + d.text);
      }
      if (data.length <= 10 || i % Math.ceil(data.length / 10) === 0 || i === data.length - 1)
        text(s, x + width / 2, H - B + 16, d.label.length > 7 ? d.label.slice(5) : d.label);
    });
    s.setAttribute("data-drawn", String(data.length));
  }

  function shape(series) {
    return Math.floor(series / COLOURS.length) % SHAPES;
  }
  // A point: circle, square, diamond or triangle, centred on (x, y).
  function marker(parent, kind, x, y) {
    var r = 4;
    if (kind === 0) return el("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: r }, parent);
    if (kind === 1) return el("rect", { x: (x - r).toFixed(1), y: (y - r).toFixed(1), width: 2 * r, height: 2 * r }, parent);
    var pts = kind === 2
      ? [[x, y - r - 1], [x + r + 1, y], [x, y + r + 1], [x - r - 1, y]]
      : [[x, y - r - 1], [x + r + 1, y + r], [x - r - 1, y + r]];
    return el("polygon", { points: pts.map(function (q) { return q[0].toFixed(1) + "," + q[1].toFixed(1); }).join(" ") }, parent);
  }

  function scatter(container, data) {
    var pts = data.points || [];
    if (!pts.length) return;
    var s = svg(container);
    var maxX = Math.max.apply(null, pts.map(function (p) { return p.x; })) || 1;
    var maxY = Math.max.apply(null, pts.map(function (p) { return p.y; })) || 1;
    var topX = ticks(maxX, 6).slice(-1)[0], topY = ticks(maxY, 4).slice(-1)[0];
    yAxis(s, topY, function (v) { return v >= 1000 ? (v / 1000) + " s" : v + " ms"; });
    ticks(topX, 6).forEach(function (v) {
      var x = L + (W - L - R) * (v / topX);
      el("line", { x1: x, x2: x, y1: T, y2: H - B, class: "axis" }, s);
      text(s, x, H - B + 16, String(v));
    });
    text(s, (L + W - R) / 2, H - 4, "tokens (in + out)");
    pts.forEach(function (p) {
      var colour = COLOURS[p.s % COLOURS.length];
      var a = el("a", { href: "/request/" + encodeURIComponent(p.id) }, s);
      var x = L + (W - L - R) * (p.x / topX), y = T + (H - T - B) * (1 - p.y / topY);
      var c = marker(a, shape(p.s), x, y);
      var paint = { fill: p.bad ? "none" : colour, stroke: colour, "stroke-width": 1.5, "fill-opacity": 0.7, class: "point" };
      for (var k in paint) c.setAttribute(k, paint[k]);
      title(c, (data.series[p.s] || "") + ": " + p.x + " tokens, " + Math.round(p.y) + " ms" + (p.bad ? " (failed)" : ""));
    });
    var legend = document.createElement("div");
    legend.className = "legend";
    (data.series || []).forEach(function (name, i) {
      var item = document.createElement("span"), sw = document.createElement("span");
      sw.className = "swatch s" + (i % COLOURS.length) + " m" + shape(i);
      item.appendChild(sw);
      item.appendChild(document.createTextNode(name));
      legend.appendChild(item);
    });
    container.appendChild(legend);
    s.setAttribute("data-drawn", String(pts.length));
  }

  function draw() {
    var charts = document.querySelectorAll(".chart[data-source]");
    Array.prototype.forEach.call(charts, function (container) {
      if (container.querySelector("svg")) return;
      var source = document.getElementById(container.getAttribute("data-source"));
      if (!source) return;
      var data;
      try { data = JSON.parse(source.textContent); } catch (e) { return; }
      if (container.getAttribute("data-kind") === "bars") bars(container, data);
      else scatter(container, data);
    });
  }
  // Marks each table wrapper wider inside than out (`data-overflow`), for the shadow that says
  // so and for the tests that check no table is cut at 1280-1400 px.
  function overflow() {
    Array.prototype.forEach.call(document.querySelectorAll(".scroll"), function (w) {
      w.setAttribute("data-overflow", String(w.scrollWidth > w.clientWidth));
    });
  }
  function redraw() {
    draw();
    overflow();
  }
  function start() {
    redraw();
    window.addEventListener("resize", overflow);
  }
  // live.js redraws after it swapped a page's content in.
  window.smartproxyCharts = { draw: redraw };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
