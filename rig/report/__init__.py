"""The HTML report of a night's runs: ``write_html_report(run_folders, out)``.

Modules, one job each: ``load`` names the runs ``rig.evidence.run_folder`` reads, ``traffic``
decodes MQTT entries, ``timeline_rows`` marks and cuts timelines, ``echo_lanes`` holds the echo
plot's rules (shared with the bench page), ``echo_plot`` computes the plot's geometry,
``detail`` one test's section, ``matrix`` the runtime matrix (a column per runtime) and
``page`` the rest of the page (as data), ``formatting`` the
small conversions they share, ``text`` makes untrusted text readable, ``templating`` is the
autoescaping Jinja2 environment and the static files, ``html`` renders and writes the page.
Templates are in ``templates/``, the CSS and JS in ``static/`` (inlined: the page is one file).
"""

from rig.report.html import write_html_report

__all__ = ["write_html_report"]
