/* filtviz atlas: the layer page (grid, search, method switch) and the view of one filter.
 * Plain JavaScript, no framework, no network: it reads window.FILTVIZ_LAYER, set by data/<layer>.js.
 * URLs: <layer>.html (the grid), <layer>.html#117 (filter 117), #117/fourier (with another method). */
(function () {
  "use strict";
  if (window.performance && performance.mark) { performance.mark("filtviz-start"); }

  var D = window.FILTVIZ_LAYER;
  if (!D || document.body.getAttribute("data-page") !== "layer") { return; }

  var units = D.units || [];
  var byFilter = {};
  units.forEach(function (u) { byFilter[u.filter] = u; });
  var methods = [];
  units.forEach(function (u) {
    Object.keys(u.methods || {}).forEach(function (m) { if (methods.indexOf(m) < 0) { methods.push(m); } });
  });
  var first = D.default_method || "pixel";  /* the best measured method of the site (manifest.PREFERENCE) */
  methods.sort(function (a, b) { return a === first ? -1 : b === first ? 1 : (a < b ? -1 : 1); });
  var state = { method: methods[0] || "pixel" };

  function $(id) { return document.getElementById(id); }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }
  function fmt(x) {
    if (x === null || x === undefined) { return "–"; }
    if (typeof x !== "number") { return String(x); }
    return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : String(+x.toPrecision(4));
  }
  function entryOf(unit, method) { return unit && unit.methods ? unit.methods[method] : undefined; }

  /* --- the query of the search box: "117", "100-120", "1,5,9-12", "dead", "alive" or nothing --- */
  function parseQuery(text) {
    var q = text.trim().toLowerCase();
    if (q === "") { return { all: true }; }
    if (q === "dead" || q === "alive") { return { dead: q === "dead" }; }
    var wanted = {};
    var pieces = q.split(/[\s,]+/).filter(Boolean);
    for (var i = 0; i < pieces.length; i++) {
      var m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(pieces[i]);
      if (!m) { return { error: "not understood: type a filter index (117), a range (100-120) or dead" }; }
      var lo = parseInt(m[1], 10), hi = m[2] === undefined ? lo : parseInt(m[2], 10);
      if (hi < lo) { var t = lo; lo = hi; hi = t; }
      if (hi - lo > 100000) { return { error: "range too large" }; }
      for (var f = lo; f <= hi; f++) { wanted[f] = true; }
    }
    return { set: wanted };
  }
  function matches(query, unit) {
    if (query.all) { return true; }
    if (query.error) { return false; }
    if (query.dead !== undefined) {
      var e = entryOf(unit, state.method);
      return !!e && !!e.dead === query.dead;
    }
    return !!query.set[unit.filter];
  }

  /* --- the grid --- */
  var cells = [], gridUnits = [];
  function buildGrid() {  /* the filters rendered by the current method */
    var grid = $("grid");
    var fragment = document.createDocumentFragment();  // one insertion, one layout
    grid.textContent = "";
    gridUnits = units.filter(function (u) { return entryOf(u, state.method); });
    cells = gridUnits.map(function (u) {
      var e = entryOf(u, state.method);
      var img = el("img", { loading: "lazy", decoding: "async", width: "96", height: "96",
                            alt: D.name + " filter " + u.filter });
      if (e && e.files && e.files.thumb) { img.src = e.files.thumb; } else { img.className = "missing"; }
      var cell = el("a", { "class": "cell" + (e && e.dead ? " dead" : ""), href: "#" + u.filter + methodSuffix(),
                           "data-filter": String(u.filter), title: "filter " + u.filter }, [
        img, el("span", { "class": "index", text: String(u.filter) }),
        e && e.dead ? el("span", { "class": "badge", text: "dead" }) : null
      ]);
      fragment.appendChild(cell);
      return cell;
    });
    grid.appendChild(fragment);
  }
  function applySearch() {
    var query = parseQuery($("search").value);
    var shown = 0;
    cells.forEach(function (cell, i) {
      var ok = matches(query, gridUnits[i]);
      cell.hidden = !ok;
      if (ok) { shown++; }
    });
    var rendered = gridUnits.length;
    $("count").textContent = shown + " shown · " + rendered + "/" + (D.filters === null ? "?" : D.filters) +
      " rendered" + (methods.length > 1 ? " (" + state.method + ")" : "");
    var msg = "";
    if (query.error) { msg = query.error; }
    else if (query.set) {
      var missing = Object.keys(query.set).filter(function (f) { return !entryOf(byFilter[f], state.method); });
      if (missing.length && missing.length <= 5) { msg = "not rendered yet: " + missing.join(", "); }
      else if (missing.length) { msg = missing.length + " of these filters are not rendered yet"; }
    } else if (query.dead && shown === 0) { msg = "no dead filter"; }
    $("search-message").textContent = msg;
  }
  function methodSuffix() { return state.method !== methods[0] ? "/" + state.method : ""; }

  /* --- one filter --- */
  function lossCurve(losses) {
    var w = 360, h = 140, pad = 34;
    var svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    svg.setAttribute("class", "loss");
    svg.setAttribute("role", "img");
    var vals = (losses || []).filter(function (v) { return typeof v === "number"; });
    if (!vals.length) { return svg; }
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    if (hi === lo) { hi = lo + 1; }
    var n = losses.length - 1 || 1;
    var pts = [];
    losses.forEach(function (v, k) {
      if (typeof v !== "number") { return; }
      pts.push((pad + (w - pad - 6) * k / n).toFixed(1) + "," + (6 + (h - pad) * (1 - (v - lo) / (hi - lo))).toFixed(1));
    });
    function add(tag, attrs, text) {
      var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
      Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) { node.textContent = text; }
      svg.appendChild(node);
    }
    add("title", {}, "loss at every step, " + fmt(losses[0]) + " to " + fmt(losses[losses.length - 1]));
    add("line", { x1: pad, y1: h - pad + 6, x2: w - 6, y2: h - pad + 6, "class": "axis" });
    add("line", { x1: pad, y1: 6, x2: pad, y2: h - pad + 6, "class": "axis" });
    add("polyline", { points: pts.join(" "), "class": "curve" });
    add("text", { x: pad - 4, y: 12, "text-anchor": "end" }, fmt(hi));
    add("text", { x: pad - 4, y: h - pad + 6, "text-anchor": "end" }, fmt(lo));
    add("text", { x: pad, y: h - 8 }, "step 0");
    add("text", { x: w - 6, y: h - 8, "text-anchor": "end" }, "step " + (losses.length - 1));
    return svg;
  }
  function figure(src, caption, cls, eager) {
    return el("figure", { "class": cls || "" }, [
      el("img", { src: src, alt: caption, loading: eager ? "eager" : "lazy" }),
      el("figcaption", { text: caption })
    ]);
  }
  /* --- a unit's other views: transparency (maco), diverse pictures, the negative, upstream connections --- */
  function section(id, title, note) {
    var box = el("section", { id: id, "class": "view" }, [el("h2", { text: title })]);
    if (note) { box.appendChild(el("p", { "class": "muted", text: note })); }
    return box;
  }
  function problem(id, text) { return el("p", { "class": "message problem", id: id, role: "alert", text: text }); }
  function checked(fig) {  /* a picture whose file is missing says so, in words, where it should be */
    var img = fig.querySelector("img");
    img.addEventListener("error", function () {
      fig.classList.add("broken");
      fig.appendChild(problem("", "missing file: " + img.getAttribute("src")));
    });
    return fig;
  }
  function isPath(x) { return typeof x === "string" && x.length > 0; }
  function unitViews(view, unit, e) {
    var files = e.files || {};
    if (files.alpha !== undefined) {
      var a = section("alpha-view", "Transparency", "The picture over a checkerboard where its alpha (the accumulated " +
        "gradient, MACO's transparency) is low: what shows is what drives the unit.");
      if (!isPath(files.alpha)) {
        a.appendChild(problem("alpha-problem", "files.alpha is not a file path (" + JSON.stringify(files.alpha) + ")"));
      } else {
        var row = el("div", { "class": "pictures" });
        if (isPath(files.cutout)) {
          var cut = checked(figure(files.cutout, "picture with its alpha", "picture checker", true));
          cut.firstChild.setAttribute("id", "alpha-picture");
          row.appendChild(cut);
        }
        var mask = checked(figure(files.alpha, "alpha (white: opaque)", "picture alpha", true));
        mask.firstChild.setAttribute("id", "alpha-mask");
        row.appendChild(mask);
        a.appendChild(row);
      }
      view.appendChild(a);
    }
    if (files.diversity !== undefined) {
      var d = section("diversity", "Diverse pictures",
        "Pictures of the same unit pushed apart by a diversity penalty: the different things it responds to.");
      if (!Array.isArray(files.diversity) || !files.diversity.every(isPath)) {
        d.appendChild(problem("diversity-problem", "files.diversity is not a list of file paths (" +
          JSON.stringify(files.diversity) + ")"));
      } else {
        var strip = el("div", { "class": "diversity-strip", id: "diversity-strip" });
        var finals = (e.diversity || {}).final_losses || [];
        files.diversity.forEach(function (src, k) {
          var fig = checked(figure(src, "#" + (k + 1) + (finals[k] !== undefined ? " · " + fmt(finals[k]) : ""),
                                   "snapshot diverse", true));
          strip.appendChild(fig);
        });
        d.appendChild(strip);
      }
      view.appendChild(d);
    }
    if (files.negative !== undefined) {
      var n = section("negative", "Negative", "The picture that minimizes the unit (the same method, from the same " +
        "start, on minus its value).");
      if (!isPath(files.negative)) {
        n.appendChild(problem("negative-problem", "files.negative is not a file path (" +
          JSON.stringify(files.negative) + ")"));
      } else {
        var lows = (e.negative || {}).final_losses || [];
        var value = typeof lows[0] === "number" ? -lows[0] : undefined;
        var nf = checked(figure(files.negative, "value " + fmt(value), "snapshot negative", true));
        nf.firstChild.setAttribute("id", "negative-picture");
        if (value !== undefined) { nf.setAttribute("data-value", JSON.stringify(value)); }
        n.appendChild(el("div", { "class": "diversity-strip" }, [nf]));
      }
      view.appendChild(n);
    }
    var up = section("upstream", "Upstream connections", null);
    if (Array.isArray(unit.upstream) && unit.upstream.length) {
      up.appendChild(el("p", { "class": "muted", text: "The input units with the largest kernel slices " +
        "W[" + unit.filter + ", c, :, :] (L2 norm; sign of the slice's sum: + excites, − inhibits)." }));
      var list = el("ol", { "class": "upstream", id: "upstream-list" });
      unit.upstream.forEach(function (c) {
        var ok = c && typeof c.layer === "string" && typeof c.filter === "number" && typeof c.weight === "number";
        if (!ok) { list.appendChild(el("li", {}, [problem("", "a connection without layer, filter and weight: " +
          JSON.stringify(c))])); return; }
        var page = c.page || (c.layer + ".html#" + c.filter);
        var thumb = c.thumb ? el("img", { src: c.thumb, loading: "lazy", width: "40", height: "40",
                                           alt: c.layer + " filter " + c.filter })
                            : el("span", { "class": "no-thumb", title: "not rendered in this atlas", text: "·" });
        list.appendChild(el("li", { "data-layer": c.layer, "data-filter": String(c.filter),
                                    "data-weight": JSON.stringify(c.weight), "data-sign": String(c.sign) }, [
          el("a", { href: page }, [thumb, el("span", { text: c.layer + " #" + c.filter })]),
          el("span", { "class": "sign " + (c.sign < 0 ? "neg" : "pos"), text: c.sign < 0 ? "−" : "+" }),
          el("span", { "class": "weight", text: fmt(c.weight) })
        ]));
      });
      up.appendChild(list);
    } else if (unit.upstream_note) {
      up.appendChild(el("p", { "class": "muted", id: "upstream-note", text: "None shown: " + unit.upstream_note + "." }));
    } else if (unit.upstream !== undefined) {
      up.appendChild(problem("upstream-problem", "upstream is not a list of connections (" +
        JSON.stringify(unit.upstream) + ")"));
    } else {
      up.appendChild(el("p", { "class": "muted", id: "upstream-note", text: "Not recorded for this unit." }));
    }
    view.appendChild(up);
  }
  function statRow(label, id, value, raw) {
    var td = el("td", { id: id, text: value });
    if (raw !== undefined) { td.setAttribute("data-value", JSON.stringify(raw)); }
    return el("tr", {}, [el("th", { text: label }), td]);
  }
  function renderedFilters() {
    return units.filter(function (u) { return entryOf(u, state.method); }).map(function (u) { return u.filter; });
  }
  function neighbours(f) {
    var list = renderedFilters();
    var i = list.indexOf(f);
    if (i < 0) { return { prev: null, next: null }; }
    return { prev: i > 0 ? list[i - 1] : null, next: i < list.length - 1 ? list[i + 1] : null };
  }
  function showFilter(f) {
    var view = $("filter-view");
    view.textContent = "";
    var unit = byFilter[f];
    var e = entryOf(unit, state.method);
    var nb = neighbours(f);
    var pager = el("nav", { "class": "pager" }, [
      nb.prev === null ? el("span", { id: "prev", "class": "disabled", text: "← previous" })
                       : el("a", { id: "prev", href: "#" + nb.prev + methodSuffix(), text: "← " + nb.prev }),
      el("a", { id: "back", href: "#" + methodSuffix().replace(/^\//, "/"), text: "all filters" }),
      nb.next === null ? el("span", { id: "next", "class": "disabled", text: "next →" })
                       : el("a", { id: "next", href: "#" + nb.next + methodSuffix(), text: nb.next + " →" })
    ]);
    view.appendChild(pager);
    var title = el("h1", { id: "filter-title", "data-filter": String(f) }, [
      document.createTextNode(D.name + " · filter " + f)]);
    if (e && e.dead) { title.appendChild(el("span", { "class": "badge dead", id: "dead-badge", text: "dead" })); }
    view.appendChild(title);
    if (!e) {
      view.appendChild(el("p", { "class": "message", id: "not-rendered",
        text: "Filter " + f + " is not rendered yet" + (methods.length > 1 ? " with the " + state.method + " method" : "") +
              " (" + renderedFilters().length + " of " + D.filters + " are)." }));
      return;
    }
    var pics = el("div", { "class": "pictures" });
    methods.forEach(function (m) {
      var me = entryOf(unit, m);
      if (!me) { return; }
      var size = me.params && me.params.size ? me.params.size + " px" : "";
      var fig = figure(me.files.picture, m + (size ? ", " + size : ""), "picture" + (m === state.method ? " current" : ""), true);
      fig.firstChild.setAttribute("id", m === state.method ? "picture" : "picture-" + m);
      pics.appendChild(el("a", { href: me.files.picture, title: "full-size PNG" }, [fig]));
    });
    var snaps = el("div", { "class": "snapshots", id: "snapshots" });
    Object.keys(e.files.snapshots || {}).sort(function (a, b) { return a - b; }).forEach(function (step) {
      snaps.appendChild(figure(e.files.snapshots[step], "step " + step, "snapshot", true));
    });
    var params = e.params || {};
    var table = el("table", { "class": "stats", id: "stats" }, [
      statRow("final loss", "final-loss", fmt(e.final_loss), e.final_loss),
      statRow("gain (final − start)", "gain", fmt(e.gain), e.gain),
      statRow("dead", "dead", e.dead ? "yes: zero gradient at the start" : "no", !!e.dead),
      statRow("method", "method-name", state.method, state.method),
      statRow("parameters", "params", Object.keys(params).map(function (k) {
        return k + " " + (typeof params[k] === "object" ? JSON.stringify(params[k]) : params[k]); }).join(", ")),
      statRow("seconds", "seconds", fmt(e.seconds), e.seconds),
      statRow("rendered by", "rendered-by", "rank " + e.rank + " on " + e.host + " (" + e.device + ")")
    ]);
    view.appendChild(el("div", { "class": "filter-top" }, [
      pics,
      el("div", { "class": "side" }, [
        table,
        el("div", { "class": "panel" }, [
          el("div", {}, [el("h2", { text: "Snapshots" }), snaps]),
          el("div", {}, [el("h2", { text: "Loss at every step" }), lossCurve(e.losses)])
        ])
      ])
    ]));
    unitViews(view, unit, e);
    var ex = unit.examples || {};
    if (Array.isArray(ex)) { ex = { top: ex, bottom: [] }; }  // an atlas of the older layout
    var rows = [["top", "Top", "activate this filter most (its receptive field around the strongest position)"],
                ["bottom", "Bottom", "drive it lowest (around its most negative position)"]];
    view.appendChild(el("h2", { text: "Dataset examples" }));
    if (!(ex.top || []).length && !(ex.bottom || []).length) {
      view.appendChild(el("p", { "class": "muted", text: "No dataset examples for this filter." }));
    } else {
      var box = el("div", { id: "examples" });
      rows.forEach(function (r) {
        var list = ex[r[0]] || [];
        if (!list.length) { return; }
        box.appendChild(el("h3", { text: r[1] }));
        box.appendChild(el("p", { "class": "muted", text: "The crops of natural photos that " + r[2] +
          ", with the activation there." }));
        var grid = el("div", { "class": "examples", id: "examples-" + r[0] });
        list.forEach(function (x) {
          var photo = (D.photos || {})[x.photo] || {};
          var value = x.activation !== undefined ? x.activation : x.value;
          var fig = figure(x.file, x.photo + " · " + fmt(value), "example", true);
          fig.setAttribute("data-value", JSON.stringify(value));
          fig.setAttribute("title", (photo.credit || x.photo) + "; crop x0,y0,x1,y1 " + x.box.join(","));
          if (x.box[2] - x.box[0] < 32) { fig.firstChild.className = "pixelated"; }
          grid.appendChild(fig);
        });
        box.appendChild(grid);
      });
      view.appendChild(box);
    }
  }

  /* --- routing: #117, #117/method, #/method or nothing --- */
  function route() {
    var m = /^#(\d*)(?:\/([\w.-]+))?$/.exec(location.hash || "");
    var f = m && m[1] !== "" ? parseInt(m[1], 10) : null;
    var method = m && m[2] && methods.indexOf(m[2]) >= 0 ? m[2] : methods[0];
    if (method && method !== state.method) {
      state.method = method;
      $("method").value = method;
      buildGrid();
      applySearch();
    }
    var view = $("filter-view"), gridView = $("grid-view");
    if (f === null) {
      view.hidden = true;
      gridView.hidden = false;
      document.title = D.name + " · " + D.model + " filter atlas";
    } else {
      showFilter(f);
      view.hidden = false;
      gridView.hidden = true;
      document.title = D.name + " #" + f + " · " + D.model + " filter atlas";
      window.scrollTo(0, 0);
    }
  }
  function currentFilter() {
    var m = /^#(\d+)/.exec(location.hash || "");
    return m ? parseInt(m[1], 10) : null;
  }

  /* --- set-up --- */
  var nav = $("layer-nav");
  var names = (D.layers || []).map(function (l) { return l[0]; });
  var here = names.indexOf(D.name);
  if (here > 0) { nav.appendChild(el("a", { href: D.layers[here - 1][1], text: "← " + names[here - 1] })); }
  if (here >= 0 && here < names.length - 1) {
    nav.appendChild(el("a", { href: D.layers[here + 1][1], text: names[here + 1] + " →" }));
  }
  if (methods.length > 1) {
    $("method-switch").hidden = false;
    methods.forEach(function (m) { $("method").appendChild(el("option", { value: m, text: m })); });
    $("method").addEventListener("change", function () {
      var f = currentFilter();
      location.hash = (f === null ? "" : String(f)) + (this.value !== methods[0] ? "/" + this.value : "");
      if (location.hash === "" || location.hash === "#") { route(); }
    });
  }
  buildGrid();
  $("search").addEventListener("input", applySearch);
  applySearch();
  window.addEventListener("hashchange", route);
  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) { return; }
    var f = currentFilter();
    if (f === null) { return; }
    var nb = neighbours(f);
    if (ev.key === "ArrowRight" && nb.next !== null) { location.hash = String(nb.next) + methodSuffix(); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft" && nb.prev !== null) { location.hash = String(nb.prev) + methodSuffix(); ev.preventDefault(); }
    else if (ev.key === "Escape") { location.hash = methodSuffix() ? "#" + methodSuffix() : ""; }
  });
  route();
  if (window.performance && performance.mark) { performance.mark("filtviz-ready"); }
}());
