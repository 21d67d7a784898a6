// evalsuite leaderboard: table sorting, and the sample browser, which loads a page's samples on demand.
// Never builds HTML from strings: rows are made with createElement and textContent, so nothing from the
// results is ever parsed as markup here. No eval, no inline script, no fetch (it does not work from
// file://): a chunk of samples is a script file beside the page (script-src 'self') that hands its
// payload, base64 of zlib-compressed JSON, to evalsuiteSamples(); DecompressionStream inflates it.
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
    var samples = document.getElementById("samples");
    if (samples && samples.hasAttribute("data-chunks")) { sampleBrowser(samples); }
    document.documentElement.setAttribute("data-site-ready", "1");
  }

  // -- sample browser ----------------------------------------------------------------------------------
  var FORMAT = 1;
  var waiting = {};   // chunk number -> {resolve, reject} while its script loads

  // called by each chunk file: evalsuiteSamples(n, "<base64>")
  window.evalsuiteSamples = function (n, payload) {
    var w = waiting[n];
    if (w && typeof payload === "string") { delete waiting[n]; w.resolve(payload); }
  };

  function inflate(b64) {
    var bin = atob(b64);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { bytes[i] = bin.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
    return new Response(stream).text().then(function (text) {
      var doc = JSON.parse(text);
      if (!doc || doc.v !== FORMAT || !Array.isArray(doc.items)) { throw new Error("unknown sample data format"); }
      return doc.items;
    });
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function folded(cls, summary, text) {
    var d = el("details", cls);
    d.appendChild(el("summary", null, summary));
    d.appendChild(el("pre", null, text));
    return d;
  }

  function sampleRow(s) {
    var tr = el("tr", s.x ? "sample failed" : "sample");
    tr.id = "s-" + s.i;
    var c = el("td", null, s.i);
    c.appendChild(el("br"));
    c.appendChild(el("code", "id", s.id));
    tr.appendChild(c);
    c = el("td");
    (s.m || []).forEach(function (m) { c.appendChild(el("div", null, m[0] + ": " + m[1])); });
    (s.f || []).forEach(function (f) { c.appendChild(el("span", "flag", f)); c.appendChild(document.createTextNode(" ")); });
    if (s.fr) { c.appendChild(el("div", "muted", "finish: " + s.fr)); }
    tr.appendChild(c);
    c = el("td");
    if (s.e) { c.appendChild(el("div", "error", s.e)); }
    if (s.t) { c.appendChild(folded("think", "think (" + Array.from(String(s.t)).length + " chars)", s.t)); }
    c.appendChild(el("pre", "output", s.o || ""));
    tr.appendChild(c);
    c = el("td");
    (s.r || []).forEach(function (r) { c.appendChild(el("pre", "ref", r)); });
    tr.appendChild(c);
    c = el("td");
    var h = el("code", "hash", s.h ? String(s.h).slice(0, 12) : "–");
    h.title = s.h || "";
    c.appendChild(h);
    var counts = [];
    if (s.pt) { counts.push(s.pt + " tok"); }
    if (s.pc) { counts.push(s.pc + " chars"); }
    c.appendChild(el("div", "muted", counts.join(" · ")));
    if (s.pv !== undefined) { c.appendChild(folded("preview", "preview", s.pv)); }
    if (s.md) { c.appendChild(folded("meta", "metadata", JSON.stringify(s.md, null, 2))); }
    tr.appendChild(c);
    return tr;
  }

  function sampleBrowser(table) {
    var nChunks = parseInt(table.getAttribute("data-chunks"), 10) || 0;
    var size = parseInt(table.getAttribute("data-chunk-size"), 10) || 250;
    var total = parseInt(table.getAttribute("data-n"), 10) || 0;
    var base = table.getAttribute("data-base") || "";
    var status = document.getElementById("samples-status");
    var navs = [document.getElementById("sample-pages"), document.getElementById("sample-pages-end")];
    var only = document.getElementById("only-failed");
    var body = table.tBodies[0];
    var loaded = {};
    var shown = 0;
    var root = document.documentElement;

    function say(text) { if (status) { status.textContent = text; } }

    function chunk(n) {
      if (!loaded[n]) {
        loaded[n] = new Promise(function (resolve, reject) {
          var s = document.createElement("script");
          s.src = base + "." + n + ".js";
          waiting[n] = { resolve: resolve, reject: reject };
          s.onload = function () {
            if (waiting[n]) { delete waiting[n]; reject(new Error(s.src + " holds no samples")); }
          };
          s.onerror = function () { delete waiting[n]; reject(new Error("cannot load " + s.src)); };
          document.head.appendChild(s);
        }).then(inflate);
        loaded[n].catch(function () { delete loaded[n]; });  // a later attempt tries again
      }
      return loaded[n];
    }

    function all() {
      var parts = [];
      for (var n = 1; n <= nChunks; n++) { parts.push(chunk(n)); }
      return Promise.all(parts).then(function (lists) { return [].concat.apply([], lists); });
    }

    function pageOf(hash) {
      var m = /^#p(\d+)$/.exec(hash || "");
      return m ? parseInt(m[1], 10) : 1;
    }

    function pager(pages, current) {
      navs.forEach(function (nav) {
        if (!nav) { return; }
        while (nav.firstChild) { nav.removeChild(nav.firstChild); }
        if (pages < 2) { return; }
        for (var p = 1; p <= pages; p++) {
          var a = p === current ? el("strong", null, p) : el("a", null, p);
          if (p !== current) { a.href = "#p" + p; }
          nav.appendChild(a);
          nav.appendChild(document.createTextNode(" "));
        }
      });
    }

    function show(page, then) {
      var me = ++shown;
      var filtered = !!(only && only.checked);
      if (!nChunks) { say("No samples."); root.setAttribute("data-samples-ready", "0"); return; }
      if (typeof DecompressionStream === "undefined") {
        say("This browser cannot unpack the samples (it lacks DecompressionStream: use Chromium 80+, Firefox 113+ or Safari 16.4+).");
        root.setAttribute("data-samples-error", "no DecompressionStream");
        return;
      }
      say("Loading samples…");
      var work;
      if (filtered) {
        work = all().then(function (items) {
          var failed = items.filter(function (s) { return s.x; });
          var pages = Math.max(1, Math.ceil(failed.length / size));
          var p = Math.min(Math.max(1, page), pages);
          return { items: failed.slice((p - 1) * size, p * size), pages: pages, page: p, count: failed.length };
        });
      } else {
        var p = Math.min(Math.max(1, page), nChunks);
        work = chunk(p).then(function (items) { return { items: items, pages: nChunks, page: p, count: total }; });
      }
      work.then(function (v) {
        if (me !== shown) { return; }
        var frag = document.createDocumentFragment();
        v.items.forEach(function (s) { frag.appendChild(sampleRow(s)); });
        while (body.firstChild) { body.removeChild(body.firstChild); }
        body.appendChild(frag);
        pager(v.pages, v.page);
        var first = (v.page - 1) * size;
        var what = filtered ? " below the maximum or with an error" : "";
        say(v.count ? "Samples " + (first + 1) + "–" + (first + v.items.length) + " of " + v.count + what + "."
                    : (filtered ? "No sample below the maximum or with an error." : "No samples."));
        root.setAttribute("data-samples-ready", String(v.page));
        if (then) { then(); }
      }, function (err) {
        if (me !== shown) { return; }
        say("Cannot show the samples: " + err.message);
        root.setAttribute("data-samples-error", err.message);
      });
    }

    // #s-<index>: the page holding that sample, scrolled to it
    function jump(raw) {
      var index = raw;
      try { index = decodeURIComponent(raw); } catch (e) { /* a malformed escape: taken as written */ }
      all().then(function (items) {
        var pos = -1;
        for (var i = 0; i < items.length; i++) { if (String(items[i].i) === index) { pos = i; break; } }
        show(pos < 0 ? 1 : Math.floor(pos / size) + 1, function () {
          var row = document.getElementById("s-" + index);
          if (row) { row.scrollIntoView(); }
        });
      }, function () { show(1); });
    }

    window.addEventListener("hashchange", function () {
      var m = /^#s-(.+)$/.exec(location.hash);
      if (m) { if (only) { only.checked = false; } jump(m[1]); return; }
      show(pageOf(location.hash), function () { table.scrollIntoView(); });  // a page link at the bottom
    });
    if (only) {
      only.addEventListener("change", function () {
        if (location.hash && location.hash !== "#p1") { location.hash = "#p1"; }  // a link to page N is not kept
        show(1);
      });
    }
    var m = /^#s-(.+)$/.exec(location.hash);
    if (m) { jump(m[1]); } else { show(pageOf(location.hash)); }
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
}());
