"""Outputs for the card-issuance office and the data team.

Per run: the card roster, the not-verified and conflict lists, the duplicate-enrolment list
(each as CSV for systems and XLSX for the office, IDs kept as text), data-entry quality per
village and clerk, and one self-contained HTML run report. ``write_office_outputs`` is what the
pipeline calls; ``export_latest`` rewrites them from the store's latest complete run.
"""
from linkage.outputs.export import ExportError, export_latest, load_latest
from linkage.outputs.view import RunView
from linkage.outputs.writer import write_office_outputs, write_outputs

__all__ = ["ExportError", "RunView", "export_latest", "load_latest", "write_office_outputs",
           "write_outputs"]
