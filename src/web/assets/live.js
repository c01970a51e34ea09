// smartproxy dashboard, live pages: a page with a #live marker (the overview; a session that
// is still running) fetches itself again every 5 s while the tab is visible and, when its
// <main> changed, swaps it in place (figures, newest rows, charts redrawn): no reload, one
// renderer (the server's), no markup built here. A page whose fresh copy has no marker (the
// session ended) is swapped in once more and polling stops.
"use strict";
(function () {
  var EVERY = 5000;
  var timer = null, last = null, busy = false;

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function mark(text) {
    var m = document.getElementById("live");
    if (!m) return;
    var now = new Date();
    m.textContent = text + " · updated " + pad(now.getHours()) + ":" + pad(now.getMinutes()) + ":" + pad(now.getSeconds());
  }
  function schedule() {
    clearTimeout(timer);
    if (!document.hidden) timer = setTimeout(poll, EVERY);
  }
  function swap(main) {
    var here = document.querySelector("main");
    if (!here) return;
    here.innerHTML = "";
    while (main.firstChild) here.appendChild(document.adoptNode(main.firstChild));
    if (window.smartproxyCharts) window.smartproxyCharts.draw();
  }
  function poll() {
    if (busy) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", cache: "no-store", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        var main = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        if (!main) throw new Error("no page");
        var text = main.innerHTML, still = !!main.querySelector("#live");
        if (text !== last) {
          last = text;
          swap(main);
        }
        busy = false;
        if (still) {
          mark("live");
          schedule();
        }
      })
      .catch(function (e) {
        busy = false;
        mark("live · paused (" + e.message + ")");
        schedule();
      });
  }
  function start() {
    var here = document.querySelector("main");
    if (!document.getElementById("live") || !here) return;
    last = here.innerHTML;
    mark("live");
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) clearTimeout(timer);
      else poll();
    });
    schedule();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
