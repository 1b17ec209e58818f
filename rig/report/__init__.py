"""The HTML report of a night's runs: ``write_html_report(run_folders, out)``.

Modules, one job each: ``load`` reads run folders, ``traffic`` decodes MQTT entries,
``timeline_rows`` marks and cuts timelines, ``echo_plot`` draws the SVG, ``assets`` holds the
inline CSS and JS, ``text`` escapes, ``html`` assembles the page.
"""

from rig.report.html import write_html_report

__all__ = ["write_html_report"]
