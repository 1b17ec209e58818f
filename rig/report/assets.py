"""The report's stylesheet and script, inlined into every page so that it opens offline, from a
zip, years later. The page is complete without the script; the script only adds the timeline
source filters and opens the section a summary cell links to."""

from __future__ import annotations

CSS = """
:root { --pass:#1e7b34; --pass-bg:#e3f4e6; --fail:#c62828; --fail-bg:#fde8e8; --err:#7b1fa2;
  --err-bg:#f3e5f5; --infra:#8a5300; --skip:#6b6b6b; --skip-bg:#f0f0f0; --line:#d9dde3; --muted:#667; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1d2330;
  margin:0; background:#f6f7f9; }
main { max-width: 1400px; margin: 0 auto; padding: 20px 28px 60px; }
h1 { font-size: 22px; margin: 0 0 6px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 14px; margin: 14px 0 6px; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono",
  monospace; font-size: 12.5px; }
a { color: #0b5cad; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:14px 18px; margin:10px 0; }
.meta { color: var(--muted); }
.meta b { color:#1d2330; font-weight:600; }
.verdict { display:inline-block; font-weight:700; font-size:18px; padding:4px 14px; border-radius:6px;
  margin-right:10px; color:#fff; }
.verdict.PASS { background: var(--pass); } .verdict.FAIL { background: var(--fail); }
.verdict.INCOMPLETE, .verdict.EMPTY { background: var(--infra); }
.counts span { margin-right: 14px; }
.problem { color: var(--fail); font-weight: 600; }
.incomplete { color: var(--infra); font-weight: 700; }
table { border-collapse: collapse; }
table.kv td { padding: 1px 12px 1px 0; vertical-align: top; }
table.kv td:first-child { color: var(--muted); white-space: nowrap; }
table.grid { background:#fff; border:1px solid var(--line); }
table.grid th, table.grid td { border:1px solid var(--line); padding: 4px 8px; }
table.grid th { background:#eef0f4; font-weight:600; text-align:left; }
table.grid td.test { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12.5px; }
td.cell { text-align:center; font-weight:700; font-size:12px; letter-spacing:.04em; min-width: 90px; }
td.cell a { display:block; color:inherit; text-decoration:none; }
td.cell a:hover { text-decoration: underline; }
.o-passed { background: var(--pass-bg); color: var(--pass); }
.o-failed { background: var(--fail); color: #fff; }
.o-error { background: var(--err); color: #fff; }
.o-infra { color: var(--infra); border: 2px dashed var(--infra) !important;
  background: repeating-linear-gradient(135deg, #ffe3a8 0 6px, #fff6e0 6px 12px); }
.o-skipped { background: var(--skip-bg); color: var(--skip); }
.o-missing { background: #fafafa; color: #aaa; }
.badge { display:inline-block; border-radius:4px; padding:0 7px; font-size:11.5px; font-weight:700;
  letter-spacing:.04em; line-height:19px; }
.legend-row .badge { margin-right: 6px; }
details.test { background:#fff; border:1px solid var(--line); border-radius:8px; margin:8px 0; }
details.test > summary { cursor:pointer; padding:8px 14px; list-style-position: inside; }
details.test > summary .nodeid { font-family: ui-monospace, Menlo, Consolas, monospace; font-weight:600; }
details.test > summary .meta { margin-left: 8px; }
details.test[open] > summary { border-bottom:1px solid var(--line); }
details.test.failed { border-left: 5px solid var(--fail); }
details.test.error { border-left: 5px solid var(--err); }
details.test.infra { border-left: 5px dashed var(--infra); }
.body { padding: 8px 16px 14px; }
pre.failure { background: var(--fail-bg); border:1px solid #f3b6b6; color:#5b0f0f; padding:10px 12px;
  border-radius:6px; white-space: pre-wrap; word-break: break-word; max-height: 420px; overflow:auto; }
details.infra pre.failure { background:#fff6e0; border-color:#f0cf86; color:#5a3800; }
.artifacts a { margin-right: 14px; }
.cols { display:flex; gap: 28px; flex-wrap: wrap; }
table.topics td, table.topics th { padding: 2px 12px 2px 0; text-align:left; }
table.topics td.n { text-align:right; font-variant-numeric: tabular-nums; }
.tl-filter { margin: 6px 0; font-size: 13px; }
.tl-filter label { margin-right: 12px; cursor:pointer; }
table.timeline { width:100%; border:1px solid var(--line); font-size: 12.5px; }
table.timeline td { padding: 1px 8px; border-top:1px solid #eef0f3; vertical-align: top; }
table.timeline td.t { text-align:right; white-space:nowrap; color: var(--muted);
  font-variant-numeric: tabular-nums; font-family: ui-monospace, Menlo, Consolas, monospace; }
table.timeline td.x { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap;
  word-break: break-word; }
table.timeline tr.alert td { background: #fff0f0; }
table.timeline tr.alert td:first-child { box-shadow: inset 4px 0 0 var(--fail); }
table.timeline tr.src-verdict td { background: var(--fail-bg); font-weight: 600; }
details.infra table.timeline tr.src-verdict td { background: #fff6e0; }
table.timeline tr.gap td { text-align:center; color: var(--muted); font-style: italic; background:#fafbfc; }
.why { display:inline-block; margin-left: 8px; font-size: 11px; color: var(--fail); font-weight: 700;
  font-family: system-ui, sans-serif; }
.s-serial { background:#dff0fb; color:#075985; }
.s-mqtt { background:#ece3fa; color:#5b21b6; }
.s-broker { background:#fdecc8; color:#8a4b00; }
.s-rig { background:#e5e7eb; color:#374151; }
.s-verdict { background: var(--fail); color:#fff; }
.dir { font-weight:700; }
.topic { color:#5b21b6; font-weight: 600; }
.hex { color: var(--muted); }
.timeline.hide-serial tr.src-serial, .timeline.hide-mqtt tr.src-mqtt,
.timeline.hide-broker tr.src-broker, .timeline.hide-rig tr.src-rig { display: none; }
svg.echo-plot { background:#fff; border:1px solid var(--line); border-radius:6px; max-width:100%; height:auto;
  font-family: system-ui, sans-serif; }
svg.echo-plot .grid { stroke:#eceff3; stroke-width:1; }
svg.echo-plot .axis { stroke:#8a93a3; stroke-width:1; }
svg.echo-plot .lane-line { stroke:#d5d9e0; stroke-dasharray: 2 3; }
svg.echo-plot .tick { font-size:11px; fill:#4b5563; }
svg.echo-plot .label, svg.echo-plot .legend { font-size:12px; fill:#1d2330; }
svg.echo-plot .lane-label { font-size:12px; font-family: ui-monospace, Menlo, Consolas, monospace; }
svg.echo-plot .note { font-size:12px; fill:#8a5300; }
svg.echo-plot .median { stroke:#c62828; stroke-width:1.5; stroke-dasharray: 6 4; }
svg.echo-plot .median-label { font-size:12px; fill:#c62828; font-weight:700; }
.toolbar button { font: inherit; font-size: 12.5px; margin-right: 6px; padding: 2px 10px; cursor: pointer; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
"""

JS = """
(function () {
  // Timeline filters: shown only when this script runs, so a page without scripts never
  // offers a control that does nothing.
  document.querySelectorAll('.tl-filter').forEach(function (bar) {
    bar.hidden = false;
    var table = document.getElementById(bar.dataset.table);
    bar.addEventListener('change', function (e) {
      if (table && e.target.value) table.classList.toggle('hide-' + e.target.value, !e.target.checked);
    });
  });
  document.querySelectorAll('.toolbar').forEach(function (bar) { bar.hidden = false; });
  document.querySelectorAll('button[data-open]').forEach(function (b) {
    b.addEventListener('click', function () {
      var open = b.dataset.open === 'all';
      document.querySelectorAll('details.test').forEach(function (d) { d.open = open; });
    });
  });
  // A summary cell links to a section that may be collapsed: open it before jumping there.
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el && el.tagName === 'DETAILS') { el.open = true; el.scrollIntoView(); }
  }
  window.addEventListener('hashchange', openTarget);
  openTarget();
})();
"""
