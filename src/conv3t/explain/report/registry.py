"""The report's sections in page order. Adding a section to the report is one function plus one entry here
(see docs/extending.md); the navigation and the progress bar follow from this list, and so do the slow parts
of the analysis the report computes (an entry's ``needs``)."""

from __future__ import annotations

from conv3t.explain.report.render.entry import Need, SectionEntry, no_steps
from conv3t.explain.report.render.sections.channels import channel_sections, channel_steps
from conv3t.explain.report.render.sections.conventions import conventions_section
from conv3t.explain.report.render.sections.distributions import distributions_section
from conv3t.explain.report.render.sections.faithfulness import faithfulness_section
from conv3t.explain.report.render.sections.model import model_section
from conv3t.explain.report.render.sections.predictions import prediction_sections
from conv3t.explain.report.render.sections.statistics import statistics_section
from conv3t.explain.report.render.sections.verification import report_verification

__all__ = ["SECTIONS", "section_names"]

_MEASURED = frozenset({Need.VERIFICATION})  # shown with the measured readings (and the ranking by them)

SECTIONS: list[SectionEntry] = [
    SectionEntry("model", model_section, no_steps),
    SectionEntry("statistics", statistics_section, no_steps, needs=_MEASURED),  # ranking.csv with the readings
    SectionEntry("distributions", distributions_section),
    SectionEntry("conventions", conventions_section, no_steps),
    SectionEntry("channels", channel_sections, channel_steps, needs=_MEASURED | {Need.CHANNELS}),
    SectionEntry("predictions", prediction_sections, no_steps, needs=_MEASURED | {Need.PREDICTIONS}),
    SectionEntry("faithfulness", faithfulness_section, no_steps, needs=frozenset({Need.PREDICTIONS})),
    SectionEntry("verification", report_verification, no_steps, needs=_MEASURED),
]


def section_names() -> list[str]:
    return [entry.name for entry in SECTIONS]
