/* The Alerts page's history grid (dashboard/pages/alerts/tables.py, HISTORY_COLUMNS): cells
 * drawn in the browser so that the rows the server sends stay plain values.
 * - AlertSeverity: the severity as a Bootstrap badge (colours from cellRendererParams);
 * - AlertAcknowledge: an Acknowledge button until the alert is acknowledged, then the time.
 *   A click sets the grid's cellRendererData to the alert's id: the server's acknowledge
 *   callback (guarded like every write) answers it.
 */
(function () {
  "use strict";
  const renderers = (window.dashAgGridComponentFunctions =
    window.dashAgGridComponentFunctions || {});

  renderers.AlertSeverity = function (props) {
    const colour = (props.colours || {})[props.value] || "secondary";
    return React.createElement("span", { className: `badge text-bg-${colour}` }, props.value);
  };

  renderers.AlertAcknowledge = function (props) {
    if (props.value) return props.value;
    return React.createElement(
      "button",
      {
        type: "button",
        className: "btn btn-outline-secondary btn-sm al-ack",
        onClick: () => props.setData(props.data.id),
      },
      "Acknowledge"
    );
  };
})();
