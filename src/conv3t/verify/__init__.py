"""Checks that a Conv3T's temporal parameters mean what the explanations say they mean.

* :mod:`conv3t.verify.identifiability` -- can a layer's parameters be recovered from its outputs?
* :mod:`conv3t.verify.stimuli` -- textures of known translation, rotation and zoom.
* :mod:`conv3t.verify.tuning` -- a channel's preferred motion from its response energies.
* :mod:`conv3t.verify.network` -- per layer and motion type: does the measured preference agree with the
  parameters' reading? (``conv3t verify``)
* :mod:`conv3t.verify.sequential` -- each image-mode reading's sampling error over texture views (jackknife), the
  ``undecided`` flags, and the rule that stops adding views once the readings are decided.
* :mod:`conv3t.verify.agreement` -- per channel and layer: do measured and predicted motion agree?
* :mod:`conv3t.verify.report` -- the plain-text table and JSON/CSV files (explain renders the HTML).
* :mod:`conv3t.verify.energies` -- the stimulus set rendered a batch at a time, each layer's output reduced
  at once (bounded memory at any size); :mod:`conv3t.verify.budget` -- device, memory budget, batch size.
* :mod:`conv3t.verify.store` -- a verification saved beside a report, reused for the same weights and settings.
"""

from conv3t.runtime import resolve_device
from conv3t.verify.budget import MemoryBudgetError
from conv3t.verify.identifiability import (
    PARAMETER_NAMES,
    RecoveryResult,
    kernel_jacobian,
    kernel_jacobian_singular_values,
    parameter_sensitivity,
    radial_filters,
    random_temporal_parameters,
    recover_temporal_parameters,
    smooth_filters,
)
from conv3t.verify.network import VerificationResult, VerifyConfig, predicted_motion, verify_model, verify_run
from conv3t.verify.report import format_summary, write_outputs
from conv3t.verify.stimuli import Motion, motion_clips, noise_texture, standard_stimuli
from conv3t.verify.store import load_verification, save_verification, verification_key
from conv3t.verify.tuning import response_energy, tuning_table

__all__ = [
    "PARAMETER_NAMES",
    "MemoryBudgetError",
    "Motion",
    "RecoveryResult",
    "VerificationResult",
    "VerifyConfig",
    "format_summary",
    "kernel_jacobian",
    "kernel_jacobian_singular_values",
    "load_verification",
    "motion_clips",
    "noise_texture",
    "parameter_sensitivity",
    "predicted_motion",
    "radial_filters",
    "random_temporal_parameters",
    "recover_temporal_parameters",
    "resolve_device",
    "response_energy",
    "save_verification",
    "smooth_filters",
    "standard_stimuli",
    "tuning_table",
    "verification_key",
    "verify_model",
    "verify_run",
    "write_outputs",
]
