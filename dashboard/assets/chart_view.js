/* The live chart's view and status, kept in the browser (no server round trip):
 * - it follows the newest bar until the trader pans or zooms away from it, and follows again
 *   once the newest bar is back in view (or after a double-click reset);
 * - the price and volume axes are fitted to the bars in view (plotly would fit all the data);
 * - the status line, feed badge and last price are rendered from the tab's chart state.
 */
(function () {
  "use strict";
  const PAD_BARS = 3;

  function chartDiv() {
    return document.querySelector("#price-chart .js-plotly-plot");
  }

  function lastX(gd, xa) {
    let last = -Infinity;
    for (const i of [0, 1]) {
      const xs = (gd.data[i] && gd.data[i].x) || [];
      if (xs.length) last = Math.max(last, xa.d2l(xs[xs.length - 1]));
    }
    return last;
  }

  /* One bar's duration: the smallest step among the last bars (a weekend or a session gap
   * between two bars is not a bar), as the server's fit counts it (timeframe x 3 of room). */
  function barWidth(gd, xa) {
    const xs = (gd.data[0] && gd.data[0].x) || [];
    if (xs.length < 2) return 60000;
    let width = Infinity;
    for (let i = xs.length - 1; i > 0 && i >= xs.length - 10; i--) {
      width = Math.min(width, xa.d2l(xs[i]) - xa.d2l(xs[i - 1]));
    }
    return width > 0 && isFinite(width) ? width : 60000;
  }

  function extent(gd, xa, traces, keys, lo, hi) {
    let min = Infinity;
    let max = -Infinity;
    for (const i of traces) {
      const trace = gd.data[i];
      if (!trace || !trace.x) continue;
      const xs = trace.x;
      // trade segments (entry, exit, null) are not one ascending run of x
      const ascending = !String(trace.legendgroup || "").startsWith("trade:");
      for (let j = xs.length - 1; j >= 0; j--) {
        if (xs[j] === null) continue;
        const x = xa.d2l(xs[j]);
        if (x < lo) {
          if (ascending) break; // x is ascending: nothing older is in view
          continue;
        }
        if (x > hi) continue;
        const a = trace[keys[0]][j];
        const b = trace[keys[1]][j];
        if (a !== null && isFinite(a)) min = Math.min(min, a);
        if (b !== null && isFinite(b)) max = Math.max(max, b);
      }
    }
    return [min, max];
  }

  /* Low and high of everything drawn on the price axis within [lo, hi]: the candles and every
   * visible overlay (moving averages, Bollinger bands, signal markers), so no layer runs off
   * the plot. Traces hidden from the legend do not count. */
  function priceExtent(gd, xa, lo, hi) {
    const [min, max] = extent(gd, xa, [0, 1], ["low", "high"], lo, hi);
    const [a, b] = axisExtent(gd, xa, "y", lo, hi);
    return [Math.min(min, a), Math.max(max, b)];
  }

  /* Low and high of the visible traces after the candle traces (0-4) on y axis ``short``
   * ("y", "y3", ...) within [lo, hi]; a trace without a yaxis is on "y". */
  function axisExtent(gd, xa, short, lo, hi) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 5; i < gd.data.length; i++) {
      const t = gd.data[i];
      if (!t || !t.y || (t.yaxis || "y") !== short || t.visible === "legendonly" || t.visible === false) continue;
      const [a, b] = extent(gd, xa, [i], ["y", "y"], lo, hi);
      min = Math.min(min, a);
      max = Math.max(max, b);
    }
    return [min, max];
  }

  /* An axis range around [low, high]: 6% of the span on each side (1% of the value when
   * flat), as the server fits a new figure (components/charts/candles.py, padded). */
  function padded(low, high) {
    const pad = (high - low) * 0.06 || Math.abs(high) * 0.01 || 1;
    return [low - pad, high + pad];
  }

  /* The sub-panels without a fixed range (MACD, ATR, OBV...; the server lists them in
   * layout.meta.fit with their reference levels) fitted to the values in [lo, hi]: axis name ->
   * range, only where it moved. */
  function subPanelRanges(gd, xa, lo, hi) {
    const wanted = {};
    const fit = (gd.layout && gd.layout.meta && gd.layout.meta.fit) || [];
    for (const panel of fit) {
      let [min, max] = axisExtent(gd, xa, "y" + panel.axis.slice(5), lo, hi);
      if (!isFinite(min) || !isFinite(max)) continue;
      for (const level of panel.levels || []) {
        min = Math.min(min, level);
        max = Math.max(max, level);
      }
      const range = padded(min, max);
      const axis = gd._fullLayout[panel.axis];
      if (axis && differs(axis.range, range)) wanted[panel.axis] = range;
    }
    return wanted;
  }

  function differs(current, wanted) {
    if (!current) return true;
    const span = Math.abs(wanted[1] - wanted[0]) || 1;
    return Math.abs(current[0] - wanted[0]) > span * 1e-3 || Math.abs(current[1] - wanted[1]) > span * 1e-3;
  }

  function fit(gd) {
    const layout = gd._fullLayout;
    if (!layout || !layout.xaxis || !gd.data || gd._slBusy) return;
    const xa = layout.xaxis;
    let lo = xa.r2l(xa.range[0]);
    let hi = xa.r2l(xa.range[1]);
    const last = lastX(gd, xa);
    const update = {};
    // a level-of-detail chart is a history view: it never follows (an x change re-aggregates)
    const lod = String((gd.layout && gd.layout.uirevision) || "").startsWith("lod:");
    if (!lod && gd._slFollow !== false && isFinite(last)) {
      const right = last + PAD_BARS * barWidth(gd, xa);
      if (Math.abs(right - hi) > barWidth(gd, xa) * 0.5) {
        lo += right - hi;
        hi = right;
        update["xaxis.range"] = [xa.l2r(lo), xa.l2r(hi)];
      }
    }
    const [low, high] = priceExtent(gd, xa, lo, hi);
    if (isFinite(low) && isFinite(high)) {
      const wanted = padded(low, high);
      if (differs(layout.yaxis.range, wanted)) update["yaxis.range"] = wanted;
    }
    const [, volume] = extent(gd, xa, [2, 3, 4], ["y", "y"], lo, hi);
    if (isFinite(volume) && layout.yaxis2) {
      const wanted = [0, volume * 1.15 || 1];
      if (differs(layout.yaxis2.range, wanted)) update["yaxis2.range"] = wanted;
    }
    for (const [axis, range] of Object.entries(subPanelRanges(gd, xa, lo, hi))) {
      update[axis + ".range"] = range;
    }
    if (Object.keys(update).length) {
      gd._slBusy = true;
      window.Plotly.relayout(gd, update).finally(function () {
        gd._slBusy = false;
      });
    }
  }

  function bind(gd) {
    if (gd._slBound) return;
    gd._slBound = true;
    gd.on("plotly_relayout", function (event) {
      if (gd._slBusy) return; // our own relayout
      const xa = gd._fullLayout.xaxis;
      if ("xaxis.autorange" in event) {
        gd._slFollow = true;
      } else if ("xaxis.range[1]" in event || "xaxis.range" in event) {
        // panned or zoomed: follow only while the newest bar stays in view
        gd._slFollow = xa.r2l(xa.range[1]) >= lastX(gd, xa);
      }
      window.requestAnimationFrame(function () { fit(gd); });
    });
    gd.on("plotly_afterplot", function () {
      window.requestAnimationFrame(function () { fit(gd); });
    });
  }

  const CLOSED = 0, FORMING = 1, VOLUME_UP = 2, VOLUME_DOWN = 3, VOLUME_FORMING = 4;

  /* The arrays of a trace that run along its x (same length), as Patch paths: every array
   * property of the trace and of its marker, line and hoverlabel (marker.color, customdata...). */
  function alongX(trace) {
    const n = trace.x.length;
    const paths = [];
    for (const [key, value] of Object.entries(trace)) {
      if (Array.isArray(value) && value.length === n) paths.push([key]);
      else if (value && typeof value === "object" && !Array.isArray(value)) {
        for (const [inner, nested] of Object.entries(value)) {
          if (Array.isArray(nested) && nested.length === n) paths.push([key, inner]);
        }
      }
    }
    return paths;
  }

  /* Where a trace's points at or after ``cutoff`` (an x label) begin: the first x at or after
   * it; in a trace of segments ([entry, exit, null] groups) the start of that point's group,
   * so a segment that crosses the cutoff stays whole. */
  function keptFrom(xs, cutoff) {
    let k = 0;
    while (k < xs.length && (xs[k] === null || xs[k] < cutoff)) k++;
    if (k < xs.length && xs.indexOf(null) >= 0) {
      while (k > 0 && xs[k - 1] !== null) k--;
    }
    return k;
  }

  /* The chart's bound (the server's CHART_BARS, state.w): past its window plus a tenth, the
   * oldest bars of every trace are dropped here, in the browser, to leave the window (twice
   * the window while the trader has zoomed away from the newest bar), so the server never
   * sends a whole figure again for the chart's size. Assigned before the patch extends the
   * same arrays with the new rows. Returns how many closed candles were dropped. */
  function trimOldest(patch, figure, state, rows) {
    const w = state.w;
    const held = figure.data[CLOSED].x;
    const total = held.length + rows.length;
    const gd = chartDiv();
    const limit = gd && gd._slFollow === false ? 2 * w : w + Math.floor(w / 10);
    if (!w || total <= limit || held.length === 0) return 0;
    const cut = Math.min(total - w, held.length);
    const cutoff = held[cut] !== undefined ? held[cut] : rows[cut - held.length][0];
    figure.data.forEach(function (trace, index) {
      if (index === FORMING || index === VOLUME_FORMING) return;
      if (!trace || !Array.isArray(trace.x) || !trace.x.length) return;
      const k = keptFrom(trace.x, cutoff);
      if (k === 0) return;
      for (const path of alongX(trace)) {
        const values = path.reduce(function (at, key) { return at[key]; }, trace);
        patch.assign(["data", index].concat(path), values.slice(k));
      }
    });
    return cut;
  }

  /* A live tick's delta (components/charts/candles.py, candle_delta) as a dash Patch, and the
   * chart state recording what this tab now holds. Rows the figure already has are skipped,
   * so a late or repeated delta is harmless, and a lost one is made good by the next (the
   * server always sends every bar after the last one recorded here). */
  function applyDelta(delta, figure, state) {
    const skip = window.dash_clientside.no_update;
    const key = figure && figure.layout && figure.layout.uirevision;
    if (!delta || !state || delta.k !== key || state.k !== key) return [skip, skip];
    const held = figure.data[CLOSED].x;
    const lastX = held.length ? held[held.length - 1] : null;
    // x labels have one fixed, sortable format per chart: text order is time order
    const rows = (delta.c || []).filter(function (row) { return lastX === null || row[0] > lastX; });
    const patch = new window.dash_clientside.Patch();
    const dropped = trimOldest(patch, figure, state, rows);
    if (rows.length) {
      const candles = { x: [], open: [], high: [], low: [], close: [] };
      const volume = { [VOLUME_UP]: { x: [], y: [] }, [VOLUME_DOWN]: { x: [], y: [] } };
      for (const [x, open, high, low, close, vol] of rows) {
        candles.x.push(x);
        candles.open.push(open);
        candles.high.push(high);
        candles.low.push(low);
        candles.close.push(close);
        const side = volume[close >= open ? VOLUME_UP : VOLUME_DOWN];
        side.x.push(x);
        side.y.push(vol);
      }
      for (const [name, values] of Object.entries(candles)) {
        patch.extend(["data", CLOSED, name], values);
      }
      for (const trace of [VOLUME_UP, VOLUME_DOWN]) {
        if (volume[trace].x.length) {
          patch.extend(["data", trace, "x"], volume[trace].x);
          patch.extend(["data", trace, "y"], volume[trace].y);
        }
      }
    }
    const f = delta.f;
    patch.merge(["data", FORMING], f
      ? { x: [f[0]], open: [f[1]], high: [f[2]], low: [f[3]], close: [f[4]] }
      : { x: [], open: [], high: [], low: [], close: [] });
    patch.merge(["data", VOLUME_FORMING], f ? { x: [f[0]], y: [f[5]] } : { x: [], y: [] });
    // the layers' points: appended (indicator values, signal markers, trade segments) or
    // replaced whole; rows already held are skipped by x, like the candles
    for (const [index, columns] of delta.e || []) {
      const trace = figure.data[index];
      if (!trace) continue;
      const keep = newRows(trace, columns);
      if (!keep) continue;
      for (const [name, values] of Object.entries(columns)) {
        const kept = keep === true ? values : values.filter(function (_, i) { return keep[i]; });
        // "marker.color" -> ["data", i, "marker", "color"]
        if (kept.length) patch.extend(["data", index].concat(name.split(".")), kept);
      }
    }
    for (const [index, columns] of delta.r || []) {
      if (!figure.data[index]) continue;
      for (const [name, values] of Object.entries(columns)) {
        patch.assign(["data", index].concat(name.split(".")), values);
      }
    }
    followRanges(patch, rows, f);
    const next = Object.assign({}, state, {
      v: delta.v, st: delta.st, fk: delta.fk, pe: delta.pe,
      last: rows.length ? delta.last : state.last,
      n: state.n + rows.length - dropped,
    });
    for (const key of ["err", "ds", "bl"]) {
      if (delta[key] != null) next[key] = delta[key]; else delete next[key];
    }
    return [patch.build(), next];
  }

  /* The axis ranges after a delta, set in the same patch as its data, so the chart is drawn
   * once per tick (a relayout after the redraw would draw it twice): when the chart follows
   * the newest bar, the x range moves with it (every linked x axis); the price and volume
   * ranges fit the bars in view with the new rows, the forming bar and the overlays. */
  function followRanges(patch, rows, forming) {
    const gd = chartDiv();
    const layout = gd && gd._fullLayout;
    if (!layout || !layout.xaxis || !gd.data || !gd.data.length) return;
    const xa = layout.xaxis;
    let lo = xa.r2l(xa.range[0]);
    let hi = xa.r2l(xa.range[1]);
    const points = rows.slice();
    if (forming) points.push(forming);
    if (!points.length) return;
    const newest = xa.d2l(points[points.length - 1][0]);
    const width = barWidth(gd, xa);
    if (gd._slFollow !== false) {
      const right = Math.max(lastX(gd, xa), newest) + PAD_BARS * width;
      if (Math.abs(right - hi) > width * 0.5) {
        lo += right - hi;
        hi = right;
        const range = [xa.l2r(lo), xa.l2r(hi)];
        for (const name of Object.keys(layout)) {
          if (/^xaxis\d*$/.test(name)) patch.assign(["layout", name, "range"], range);
        }
      }
    }
    let [low, high] = priceExtent(gd, xa, lo, hi);
    let [, volume] = extent(gd, xa, [2, 3, 4], ["y", "y"], lo, hi);
    for (const [x, , h, l, , v] of points) {
      const at = xa.d2l(x);
      if (at < lo || at > hi) continue;
      low = Math.min(low, l);
      high = Math.max(high, h);
      volume = Math.max(volume, v);
    }
    if (isFinite(low) && isFinite(high)) {
      const wanted = padded(low, high);
      if (differs(layout.yaxis.range, wanted)) patch.assign(["layout", "yaxis", "range"], wanted);
    }
    if (isFinite(volume) && layout.yaxis2) {
      const wanted = [0, volume * 1.15 || 1];
      if (differs(layout.yaxis2.range, wanted)) patch.assign(["layout", "yaxis2", "range"], wanted);
    }
    // the sub-panels as they are (their new points land a tick later: fitted after the redraw)
    for (const [axis, range] of Object.entries(subPanelRanges(gd, xa, lo, hi))) {
      patch.assign(["layout", axis, "range"], range);
    }
  }

  /* Which of the appended points the trace does not hold yet: true for all, false for none,
   * or a mask. Points carry x (a sortable label). Segment traces (trades) hold [entry, exit,
   * null] groups: a group is new when its exit is after the last exit held. */
  function newRows(trace, columns) {
    const xs = columns.x;
    const held = trace.x || [];
    if (!xs || !held.length) return true;
    let last = null;
    for (let i = held.length - 1; i >= 0; i--) {
      if (held[i] !== null) { last = held[i]; break; }
    }
    if (last === null) return true;
    const mask = new Array(xs.length).fill(false);
    if (xs.indexOf(null) >= 0) {
      let start = 0;
      for (let i = 0; i <= xs.length; i++) {
        if (i === xs.length || xs[i] === null) {
          const end = i === xs.length ? i - 1 : i;
          const exit = xs[i - 1];
          if (i > start && exit > last) for (let j = start; j <= end; j++) mask[j] = true;
          start = i + 1;
        }
      }
    } else {
      for (let i = 0; i < xs.length; i++) mask[i] = xs[i] > last;
    }
    if (mask.every(Boolean)) return true;
    return mask.some(Boolean) ? mask : false;
  }

  /* A trade clicked in the trade table: show it with some bars around it on every linked x
   * axis at once (price, volume, sub-panels), stop following. At once in the browser: the row
   * carries the trade's times, no server round trip. */
  function zoomTo(zoom) {
    const gd = chartDiv();
    if (!zoom || !gd || !gd._fullLayout) return window.dash_clientside.no_update;
    const span = Math.max(zoom[1] - zoom[0], 1);
    const range = [new Date(zoom[0] - span * 0.6).toISOString(),
                   new Date(zoom[1] + span * 0.6).toISOString()];
    gd._slFollow = false;
    const update = {};
    for (const name of Object.keys(gd._fullLayout)) {
      if (/^xaxis\d*$/.test(name)) update[name + ".range"] = range;
    }
    window.Plotly.relayout(gd, update);
    return window.dash_clientside.no_update;
  }

  /* The clicked row's [entry ms, exit ms]: rows are identified by their trade id. */
  function tradeZoom(cell, rows) {
    const skip = window.dash_clientside.no_update;
    if (!cell || cell.rowId == null || !rows) return skip;
    const row = rows.find(function (r) { return String(r.id) === String(cell.rowId); });
    if (!row) return skip;
    return [row.entry_ms, row.exit_ms];
  }

  /* Hovering a trade row highlights its trade on the chart: a translucent band over its
   * entry-to-exit span (a layout shape named "hover-trade"), removed when the pointer leaves. */
  function highlightTrade(row) {
    const gd = chartDiv();
    if (!gd || !gd._fullLayout) return;
    const shapes = (gd.layout.shapes || []).filter(function (s) { return s.name !== "hover-trade"; });
    if (row) {
      shapes.push({
        name: "hover-trade", type: "rect", xref: "x", yref: "paper", layer: "below",
        x0: new Date(row.entry_ms).toISOString(), x1: new Date(row.exit_ms).toISOString(),
        y0: 0, y1: 1, line: { width: 0 }, fillcolor: "rgba(255, 193, 7, 0.18)",
      });
    }
    window.Plotly.relayout(gd, { shapes: shapes });
  }
  function watchTradeHover() {
    const grid = document.querySelector("#perf-trades");
    if (!grid || grid._slHover) return;
    grid._slHover = true;
    let current = null;
    grid.addEventListener("mouseover", function (event) {
      const el = event.target.closest && event.target.closest(".ag-row");
      const id = el && el.getAttribute("row-id");
      if (id === current) return;
      current = id;
      const api = window.dash_ag_grid && window.dash_ag_grid.getApi && window.dash_ag_grid.getApi("perf-trades");
      const node = id != null && api ? api.getRowNode(id) : null;
      highlightTrade(node ? node.data : null);
    });
    grid.addEventListener("mouseleave", function () {
      current = null;
      highlightTrade(null);
    });
  }

  /* The tick, one request at a time per tab. The interval fires every REFRESH_MS; a tick is
   * sent only when the page shows the live chart and the previous one was answered (its
   * "running" flag, tick-busy, is off), so a slow answer is never thrown away by the next
   * request: it is applied, and the next tick asks for everything after it. A request
   * unanswered for STALE_MS (a lost connection) no longer holds the next back. */
  const STALE_MS = 30000;
  let tickSent = 0;
  let lastAnswer = Date.now();
  function gateTick(n, busy, pathname) {
    const skip = window.dash_clientside.no_update;
    watchTradeHover();
    if (document.visibilityState === "hidden" || (pathname || "/").replace(/\//g, "") !== "") return skip;
    const now = Date.now();
    if (busy && now - tickSent < STALE_MS) return skip;
    tickSent = now;
    return n;
  }

  /* The same gate for a page's own poll (the Trading page's refresh, the toasts' poll): a
   * request goes out only when the previous one was answered, so a poll that takes longer
   * than its interval (a busy browser or server) still lands instead of being superseded
   * by the next one and thrown away, forever. */
  function pollGate() {
    let sent = 0;
    return function (n, busy) {
      const now = Date.now();
      if (busy && now - sent < STALE_MS) return window.dash_clientside.no_update;
      sent = now;
      return n;
    };
  }

  /* Whether the panels below the chart are on screen: the page is not hidden and the
   * panels' card intersects the viewport; the same for the performance panel's figures and
   * trades (below its cards: often out of view while the panel's top is in it). Written to
   * the panels-visible and perf-figures-visible stores (set_props) whenever that changes,
   * so a panel hidden while candles closed refreshes when shown. */
  const watched = {
    panels: { selector: ".sl-panels", store: "panels-visible", inView: false, sent: null },
    figures: { selector: ".sl-perf-figures", store: "perf-figures-visible", inView: false, sent: null },
  };
  function publishVisible() {
    if (!window.dash_clientside.set_props) return;
    for (const name in watched) {
      const w = watched[name];
      const visible = w.inView && document.visibilityState !== "hidden";
      if (visible === w.sent) continue;
      w.sent = visible;
      window.dash_clientside.set_props(w.store, { data: visible });
    }
  }
  function watchPanels() {
    for (const name in watched) {
      const w = watched[name];
      const element = document.querySelector(w.selector);
      if (!element || element._slWatched) continue;
      element._slWatched = true;
      new IntersectionObserver(function (entries) {
        w.inView = entries[entries.length - 1].isIntersecting;
        publishVisible();
      }).observe(element);
    }
  }
  document.addEventListener("visibilitychange", publishVisible);

  /* [chart key, panel epoch] for the panel on show (performance or comparison), or no
   * update: panels are refreshed only while visible, and only when the server's panel epoch
   * moved (services/chart_layers.py, panel_epoch: at most every 5 s, the same for every tab,
   * so tabs share one computation). A panel shown again catches up at once. The performance
   * panel's cards and its figures are two refreshes: the figures' only while they are in
   * view. Outputs: perf-closed, perf-figures-closed, cmp-closed. */
  function panelRefresh(state, tab, visible, figuresVisible, perfHeld, figuresHeld, cmpHeld,
                        strategies, preset, light) {
    const skip = window.dash_clientside.no_update;
    watchPanels();
    if (!state || !visible) return [skip, skip, skip];
    const key = [state.k, state.pe === undefined ? state.last : state.pe];
    const same = function (held, wanted) { return JSON.stringify(held) === JSON.stringify(wanted); };
    if (tab === "comparison") {
      // the comparison is not computed while hidden: what it shows is part of its key
      const wanted = key.concat([strategies || [], preset, !!light]);
      return [skip, skip, same(cmpHeld, wanted) ? skip : wanted];
    }
    const figures = figuresVisible && !same(figuresHeld, key) ? key : skip;
    return [same(perfHeld, key) ? skip : key, figures, skip];
  }

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    stratlens: {
      applyDelta: applyDelta,
      panelRefresh: panelRefresh,
      zoomTo: zoomTo,
      followAndFit: function () {
        const gd = chartDiv();
        if (gd && gd.on) {
          bind(gd);
          window.requestAnimationFrame(function () { fit(gd); });
        }
        return window.dash_clientside.no_update;
      },
      gateTick: gateTick,
      gateTrading: pollGate(),
      gateToasts: pollGate(),
      tradeZoom: tradeZoom,
      lodZoom: function (relayout, state) {
        // only a level-of-detail chart asks the server for a zoom (it re-aggregates); the live
        // chart zooms in the browser, and its own fitting relayouts stay in the browser too
        const skip = window.dash_clientside.no_update;
        if (!relayout || !state || state.lod == null) return skip;
        const keys = Object.keys(relayout);
        return keys.some(function (k) { return k.startsWith("xaxis."); }) ? relayout : skip;
      },
      status: function (state, busy, _n, interval, figure) {
        const skip = window.dash_clientside.no_update;
        if (!busy) lastAnswer = Date.now();
        // "updated" is when the server last answered (a tick's request ended) or a new chart
        // state arrived, not the clock: while no answer comes, it stays put as the delay grows
        const seen = JSON.stringify(state);
        if (state && (seen !== statusSeen || (statusBusy && !busy))) statusUpdated = Date.now();
        [statusSeen, statusBusy] = [seen, !!busy];
        if (!state) return [skip, skip, skip, skip];
        let [label, color] = BADGES[state.st] || [String(state.st).toUpperCase(), "secondary"];
        // the server has not answered this tab for two refresh periods: what shows is old
        const age = Date.now() - lastAnswer;
        const late = busy && age > 2 * (interval || 1000) && state.st !== "static";
        if (late) [label, color] = ["DELAYED", "warning"];
        const feed = state.fk === "none" ? "no feed" : state.fk.replace("_", " ") + " feed";
        const last = state.last == null ? "-" : utc(state.last).slice(0, 16);
        const updated = utc(statusUpdated).slice(11, 19);
        let text = `${state.s} ${state.tf} · ${feed} · last closed bar ${last} UTC · updated ${updated} UTC`;
        if (state.ds != null) {
          // the database is busy: closed bars wait in order and are shown once stored
          const waited = Math.max(0, Math.round((Date.now() - state.ds) / 1000));
          text += ` · delayed ${waited} s, ${state.bl} closed bar${state.bl === 1 ? "" : "s"} waiting for the database`;
        }
        if (state.err) text += " · " + state.err;
        if (late) text += ` · delayed: no update from the server for ${Math.round(age / 1000)} s`;
        const data = (figure && figure.data) || [];
        const price = lastClose(data[1]) ?? lastClose(data[0]);
        return [text, price == null ? "" : `${state.s} ${formatPrice(price)}`, label, color];
      },
    },
  });

  // what status() saw last: the chart state (as JSON), whether a tick was in flight, and when
  // an answer last came
  let statusSeen = null;
  let statusBusy = false;
  let statusUpdated = null;

  const BADGES = {
    live: ["LIVE", "success"],
    delayed: ["DELAYED", "warning"],
    starting: ["STARTING", "secondary"],
    // an exchange feed's own states (market/exchange_feed.py); the detail follows in the text
    connecting: ["CONNECTING", "secondary"],
    backfilling: ["BACKFILLING", "info"],
    retrying: ["RETRYING", "warning"],
    finished: ["REPLAY ENDED", "secondary"],
    static: ["HISTORY", "info"],
    error: ["FEED ERROR", "danger"],
  };

  function utc(ms) {
    return new Date(ms).toISOString().replace("T", " ");
  }

  function lastClose(trace) {
    return trace && trace.close && trace.close.length ? trace.close[trace.close.length - 1] : null;
  }

  function formatPrice(price) {
    return Math.abs(price) >= 1
      ? price.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })
      : price.toPrecision(6);
  }
})();
