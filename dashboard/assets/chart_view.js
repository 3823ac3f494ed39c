/* The live chart's view, kept like a trading terminal's, in the browser (no server round trip):
 * - it follows the newest bar until the trader pans or zooms away from it, and follows again
 *   once the newest bar is back in view (or after a double-click reset);
 * - the price and volume axes are fitted to the bars in view (plotly would fit all the data).
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

  function barWidth(gd, xa) {
    const xs = (gd.data[0] && gd.data[0].x) || [];
    if (xs.length < 2) return 60000;
    return xa.d2l(xs[xs.length - 1]) - xa.d2l(xs[xs.length - 2]);
  }

  function extent(gd, xa, traces, keys, lo, hi) {
    let min = Infinity;
    let max = -Infinity;
    for (const i of traces) {
      const trace = gd.data[i];
      if (!trace || !trace.x) continue;
      const xs = trace.x;
      for (let j = xs.length - 1; j >= 0; j--) {
        const x = xa.d2l(xs[j]);
        if (x < lo) break; // x is ascending: nothing older is in view
        if (x > hi) continue;
        min = Math.min(min, trace[keys[0]][j]);
        max = Math.max(max, trace[keys[1]][j]);
      }
    }
    return [min, max];
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
    if (gd._slFollow !== false && isFinite(last)) {
      const right = last + PAD_BARS * barWidth(gd, xa);
      if (Math.abs(right - hi) > barWidth(gd, xa) * 0.5) {
        lo += right - hi;
        hi = right;
        update["xaxis.range"] = [xa.l2r(lo), xa.l2r(hi)];
      }
    }
    const [low, high] = extent(gd, xa, [0, 1], ["low", "high"], lo, hi);
    if (isFinite(low) && isFinite(high)) {
      const pad = (high - low) * 0.06 || Math.abs(high) * 0.01 || 1;
      const wanted = [low - pad, high + pad];
      if (differs(layout.yaxis.range, wanted)) update["yaxis.range"] = wanted;
    }
    const [, volume] = extent(gd, xa, [2, 3, 4], ["y", "y"], lo, hi);
    if (isFinite(volume) && layout.yaxis2) {
      const wanted = [0, volume * 1.15 || 1];
      if (differs(layout.yaxis2.range, wanted)) update["yaxis2.range"] = wanted;
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

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    stratlens: {
      followAndFit: function () {
        const gd = chartDiv();
        if (gd && gd.on) {
          bind(gd);
          window.requestAnimationFrame(function () { fit(gd); });
        }
        return window.dash_clientside.no_update;
      },
    },
  });
})();
