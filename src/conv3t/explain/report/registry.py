"""The report's sections in page order. Adding a section to the report is one function plus one entry here
(see docs/extending.md); the navigation and the progress bar follow from this list."""

from __future__ import annotations

from conv3t.explain.report.section import SectionEntry, no_steps
from conv3t.explain.report.sections.channels import channel_sections, channel_steps
from conv3t.explain.report.sections.conventions import conventions_section
from conv3t.explain.report.sections.distributions import distributions_section
from conv3t.explain.report.sections.faithfulness import faithfulness_section
from conv3t.explain.report.sections.model import model_section
from conv3t.explain.report.sections.predictions import prediction_sections, prediction_steps
from conv3t.explain.report.sections.readings import measure_readings, readings_steps
from conv3t.explain.report.sections.statistics import statistics_section
from conv3t.explain.report.sections.verification import report_verification, verification_steps

__all__ = ["SECTIONS", "section_names"]

SECTIONS: list[SectionEntry] = [
    SectionEntry("model", model_section, no_steps),
    SectionEntry("readings", measure_readings, readings_steps),  # renders nothing; re-ranks with measurements
    SectionEntry("statistics", statistics_section),
    SectionEntry("distributions", distributions_section),
    SectionEntry("conventions", conventions_section, no_steps),
    SectionEntry("channels", channel_sections, channel_steps),
    SectionEntry("predictions", prediction_sections, prediction_steps),  # also runs the faithfulness checks
    SectionEntry("faithfulness", faithfulness_section, no_steps),  # summarises them
    SectionEntry("verification", report_verification, verification_steps),
]


def section_names() -> list[str]:
    return [entry.name for entry in SECTIONS]
