// The page is complete without this script; it only adds the timeline source filters and the
// expand/collapse buttons, and opens the section a summary cell links to.
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
