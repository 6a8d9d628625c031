"""The scripts that let a headless browser check a self-contained report page.

Every Tierwise page (the tier operations report, the monitoring overview) records script errors
from its first line (`ERROR_CAPTURE`) and, once loaded, fills a hidden `#render-status` element
(`render_status`): `data-charts` (plotly charts on the page), `data-rendered` (those drawn) and
`data-errors` (what went wrong), which the page tests read through Chromium's `--dump-dom`.
"""

from __future__ import annotations

ERROR_CAPTURE = """<script>
window.reportErrors = [];
window.addEventListener("error", function (e) { window.reportErrors.push(String(e.message || e)); });
window.addEventListener("unhandledrejection", function (e) { window.reportErrors.push(String(e.reason)); });
</script>"""


def render_status(expected_charts: int) -> str:
    """The hidden status element and the script that fills it when the page has loaded."""
    return f"""<div id="render-status" hidden data-expected="{expected_charts}"></div>
<script>
window.addEventListener("load", function () {{
  var plots = Array.prototype.slice.call(document.querySelectorAll(".js-plotly-plot"));
  var status = document.getElementById("render-status");
  status.setAttribute("data-charts", String(plots.length));
  status.setAttribute("data-rendered", String(plots.filter(function (p) {{ return p.querySelector(".main-svg"); }}).length));
  status.setAttribute("data-errors", JSON.stringify(window.reportErrors));
}});
</script>"""
