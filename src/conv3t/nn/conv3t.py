"""``Conv3T``: a 3D convolution whose kernel is one 2D filter plus learned affine temporal transformations."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.nn import fused
from conv3t.nn.functional import KERNEL_METHODS, KernelMethod, generate_kernel

__all__ = ["TEMPORAL_PARAMETER_NAMES", "Conv3T"]

#: Attribute names of a Conv3T's temporal parameters, each ``(out, D-1)``, in the order of eq. 3 of the paper.
TEMPORAL_PARAMETER_NAMES: tuple[str, ...] = ("scale", "rotation", "translation_x", "translation_y")

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
IntOr3 = int | Sequence[int]


def _triple(value: IntOr3, name: str) -> tuple[int, int, int]:
    if isinstance(value, int):
        out = (value, value, value)
    else:
        out = tuple(int(v) for v in value)
        if len(out) != 3:
            raise ValueError(f"{name} must be an int or a tuple of 3 ints (D, H, W), got {value!r}")
    return out  # type: ignore[return-value]


def _temporal_crop(frames: int, depth: int, stride: int, padding: int, dilation: int) -> tuple[int, int, int] | None:
    """Kernel slices that ever meet a real frame, for a zero-padded input of ``frames`` frames.

    Slices that only ever multiply temporal zero padding contribute exactly nothing, e.g. the first and last
    slice of a 3-deep kernel on a 1-frame input (ResNet18's last stages on 16-frame clips). Returns
    ``(start, stop, padding')`` such that the convolution with slices ``start .. stop-1`` and temporal padding
    ``padding'`` gives the same output, or ``None`` when every slice is needed or no symmetric padding fits.
    """
    out_frames = (frames + 2 * padding - dilation * (depth - 1) - 1) // stride + 1
    used = [
        j for j in range(depth) if any(0 <= o * stride - padding + j * dilation < frames for o in range(out_frames))
    ]
    if not used or (used[0] == 0 and used[-1] == depth - 1):
        return None
    start, stop = used[0], used[-1] + 1
    new_padding = padding - start * dilation
    extent = dilation * (stop - 1 - start) + 1
    if new_padding < 0 or (frames + 2 * new_padding - extent) // stride + 1 != out_frames:
        return None
    return start, stop, new_padding


class Conv3T(nn.Module):
    r"""Temporally factorized 3D convolution (3TConv, Ras et al.).

    Drop-in for :class:`torch.nn.Conv3d` (same arguments, same output shape) whose
    ``out x in/groups x D x kH x kW`` kernel is generated from a 2D filter :math:`K_1` by ``D - 1`` affine
    transformations per output channel, applied one after the other: :math:`K_{t+1} = \mathrm{warp}(K_t;
    \Theta_t)` (see :mod:`conv3t.nn.functional` for the exact convention).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode:
            as :class:`torch.nn.Conv3d`. ``kernel_size = (D, kH, kW)``; ``padding`` may be ``"same"`` or
            ``"valid"``.
        kernel_method: how the kernel is generated, one of ``KERNEL_METHODS`` of :mod:`conv3t.nn.functional`:
            ``"matrix"`` (default: the fastest sampling-matrix form for the shape, in few tensor operations;
            deterministic, twice differentiable) or ``"grid_sample"`` (the reference). Both give the same
            kernel and gradients.

    Parameters:
        weight: ``(out, in/groups, kH, kW)`` the 2D filter :math:`K_1`.
        scale: ``(out, D-1)``, initialised to 1.
        rotation: ``(out, D-1)`` radians, initialised to 0.
        translation_x, translation_y: ``(out, D-1)`` in ``affine_grid`` units (align_corners=True; one unit is
            ``(k-1)/2`` kernel pixels), initialised to 0.
        bias: ``(out,)`` or ``None``.

    A layer with ``D = 1`` has temporal parameters of shape ``(out, 0)``: it is a 2D convolution applied per
    frame. Spatially ``1 x 1`` kernels with ``D > 1`` are rejected: an affine warp of a single pixel can only
    scale it or move it out of the kernel, so use :class:`torch.nn.Conv3d` there.

    Shape:
        input ``(N, in, T, H, W)`` or unbatched ``(in, T, H, W)``; output as :class:`torch.nn.Conv3d`.

    Speed (see ``BENCHMARKS.md``):

    * When no gradient reaches the parameters (``torch.no_grad``/``inference_mode``, or frozen parameters) the
      generated kernel is cached and reused until a parameter changes (checked by version counter and
      storage, so in-place updates and optimizer steps count), ``train()``/``eval()``, ``load_state_dict`` or
      ``.to()``; inference then costs what :class:`torch.nn.Conv3d` costs. Under autocast the cached kernel is
      kept in the autocast dtype. The cache is bypassed while ``torch.compile`` traces.
    * A ``channels_last_3d`` input gets a ``channels_last_3d`` kernel, built directly in that layout.
    * With ``padding_mode="zeros"``, kernel slices that can only ever meet temporal zero padding (short
      inputs, e.g. 1 frame) are neither generated nor convolved; the output is the same.
    * :func:`conv3t.fold` turns every Conv3T of a model into a plain :class:`torch.nn.Conv3d` for deployment.
    * :func:`conv3t.nn.batch_kernel_generation` lets a model build the sampling matrices of all its layers
      of one kernel size together (fewer, larger operations per training step; same values).
    """

    #: names of the temporal parameters (``scale``, ``rotation``, ``translation_x``, ``translation_y``)
    temporal_parameter_names: ClassVar[tuple[str, ...]] = TEMPORAL_PARAMETER_NAMES
    _kernel_cache: tuple[tuple[Any, ...], Tensor] | None = None
    #: skip kernel slices that only meet temporal zero padding (class-wide or per layer; False to measure)
    temporal_crop: bool = True

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOr3,
        stride: IntOr3 = 1,
        padding: IntOr3 | str = 0,
        dilation: IntOr3 = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        kernel_method: KernelMethod = "matrix",
    ) -> None:
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"in_channels and out_channels must be positive, got {in_channels}, {out_channels}")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(
                f"in_channels ({in_channels}) and out_channels ({out_channels}) must be divisible by groups ({groups})"
            )
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
        if kernel_method not in KERNEL_METHODS:
            raise ValueError(f"kernel_method must be one of {KERNEL_METHODS}, got {kernel_method!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _triple(kernel_size, "kernel_size")
        self.stride = _triple(stride, "stride")
        self.dilation = _triple(dilation, "dilation")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.dilation) < 1:
            raise ValueError(
                f"kernel_size, stride and dilation must be >= 1, got {self.kernel_size}, {self.stride}, {self.dilation}"
            )
        depth, kh, kw = self.kernel_size
        if depth > 1 and kh == 1 and kw == 1:
            raise ValueError(
                f"Conv3T with kernel_size {self.kernel_size}: a spatially 1x1 filter cannot be warped by an "
                "affine transformation (it can only be scaled or moved out of the kernel); use nn.Conv3d "
                "for 1x1 spatial kernels"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be an int, a 3-tuple, 'same' or 'valid', got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions (as nn.Conv3d)")
            self.padding: tuple[int, int, int] | str = padding
        else:
            self.padding = _triple(padding, "padding")
        self.groups = groups
        self.padding_mode = padding_mode
        self.kernel_method: KernelMethod = kernel_method
        self._reversed_padding_repeated_twice = self._pad_amounts()

        factory = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw, **factory))
        steps = depth - 1
        self.scale = nn.Parameter(torch.empty(out_channels, steps, **factory))
        self.rotation = nn.Parameter(torch.empty(out_channels, steps, **factory))
        self.translation_x = nn.Parameter(torch.empty(out_channels, steps, **factory))
        self.translation_y = nn.Parameter(torch.empty(out_channels, steps, **factory))
        if bias:
            self.bias: nn.Parameter | None = nn.Parameter(torch.empty(out_channels, **factory))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _pad_amounts(self) -> list[int]:
        """Padding for ``F.pad`` (last dim first, left/right), as nn.Conv3d computes it."""
        if self.padding == "valid":
            return [0] * 6
        amounts: list[int] = []
        for i in reversed(range(3)):
            if self.padding == "same":
                total = self.dilation[i] * (self.kernel_size[i] - 1)
                left = total // 2
                amounts += [left, total - left]
            else:
                amounts += [self.padding[i], self.padding[i]]  # type: ignore[index]
        return amounts

    def temporal_parameters(self) -> dict[str, nn.Parameter]:
        """The four temporal parameters by name (:attr:`temporal_parameter_names`), each ``(out, D-1)``."""
        return {name: getattr(self, name) for name in self.temporal_parameter_names}

    @property
    def temporal_depth(self) -> int:
        """``D``, the number of time slices of the generated kernel."""
        return self.kernel_size[0]

    def reset_parameters(self) -> None:
        """2D filter and bias as ``nn.Conv3d`` would initialise a kernel of this shape; identity transforms.

        The fan-in is that of the full 3D kernel, ``in/groups * D * kH * kW``, so a freshly built Conv3T
        has the output scale of a freshly built Conv3d on inputs that are uncorrelated over time.
        """
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        fan_in = self.weight.shape[1] * math.prod(self.kernel_size)
        with torch.no_grad():
            self.weight.mul_(math.sqrt(self.weight[0].numel() / fan_in))
            self.scale.fill_(1.0)
            self.rotation.zero_()
            self.translation_x.zero_()
            self.translation_y.zero_()
            if self.bias is not None:
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                self.bias.uniform_(-bound, bound)

    def kernel(self) -> Tensor:
        """The generated 3D filter, ``(out, in/groups, D, kH, kW)``, in the weight's dtype.

        Generation runs outside autocast (float32/float64 sampling) so that low-precision autocast only
        affects the convolution itself. Always freshly generated (never the inference cache).
        """
        return self._generate()

    def _generate(self, channels_last: bool = False, time_range: tuple[int, int] | None = None) -> Tensor:
        device_type = self.weight.device.type
        if device_type == "meta" or not torch.is_autocast_enabled(device_type):
            return self._generate_here(channels_last, time_range)
        with torch.autocast(device_type=device_type, enabled=False):
            return self._generate_here(channels_last, time_range)

    def _generate_here(self, channels_last: bool, time_range: tuple[int, int] | None) -> Tensor:
        shared = self.__dict__.get("_shared_stack")  # rows of a model-level computation, this forward only
        if shared is not None and shared[0] == self._temporal_key():
            start, stop = (0, self.kernel_size[0]) if time_range is None else time_range
            return fused.kernel_product(self.weight, shared[1], start, stop, channels_last, identity_first=True)
        params = (self.weight, self.scale, self.rotation, self.translation_x, self.translation_y)
        return generate_kernel(*params, self.kernel_method, channels_last, time_range)

    def _temporal_key(self) -> tuple[tuple[int, int], ...]:
        """Versions and storages of the temporal parameters (what shared sampling matrices were built from)."""
        params = (self.scale, self.rotation, self.translation_x, self.translation_y)
        return tuple((p._version, p.data_ptr()) for p in params)

    def _inference_kernel(self, channels_last: bool, time_range: tuple[int, int] | None) -> Tensor:
        """The kernel for this forward: cached when no gradient can reach the parameters."""
        params = (self.weight, self.scale, self.rotation, self.translation_x, self.translation_y)
        device_type = self.weight.device.type
        if device_type == "meta" or (torch.is_grad_enabled() and any(p.requires_grad for p in params)):
            self._kernel_cache = None  # training: keep no stale copy alive
            return self._generate(channels_last, time_range)
        autocast_dtype = torch.get_autocast_dtype(device_type) if torch.is_autocast_enabled(device_type) else None
        try:
            versions = tuple(p._version for p in params)
        except RuntimeError:  # inference tensors (parameters created under inference_mode) have no versions
            return self._generate(channels_last, time_range)
        key = (
            versions,
            tuple(p.data_ptr() for p in params),
            self.weight.dtype,
            self.weight.device,
            channels_last,
            time_range,
            autocast_dtype,
            torch.is_inference_mode_enabled(),
        )
        cache = self._kernel_cache
        if cache is not None and cache[0] == key:
            return cache[1]
        kernel = self._generate(channels_last, time_range)
        if autocast_dtype is not None and kernel.dtype == torch.float32:
            kernel = kernel.to(autocast_dtype)  # the cast autocast would otherwise repeat on every call
        self._kernel_cache = (key, kernel)
        return kernel

    def __getstate__(self) -> dict[str, Any]:
        """Pickles and deep copies carry no cached kernel or shape memo (rebuilt on demand)."""
        state = self.__dict__.copy()
        state.pop("_kernel_cache", None)
        state.pop("_plans", None)
        state.pop("_shared_stack", None)
        return state

    def clear_kernel_cache(self) -> None:
        """Drop the cached inference kernel (done automatically on every change the cache can see)."""
        self._kernel_cache = None

    def train(self, mode: bool = True) -> Conv3T:
        if mode:  # entering training: parameters are about to change, free the cached kernel
            self._kernel_cache = None
        return super().train(mode)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> Conv3T:
        """``.to()``, ``.cuda()``, ``.double()``, ...: drop the cache; let 5D-only conversions pass the 4D weight.

        ``model.to(memory_format=torch.channels_last_3d)`` converts every 4D and 5D tensor and would fail on
        the 4D ``weight``; it is converted as the ``(out, in/g, 1, kH, kW)`` kernel it is instead.
        """
        self._kernel_cache = None

        def apply(t: Tensor) -> Tensor:
            if t.dim() != 4:
                return fn(t)
            try:
                return fn(t)
            except RuntimeError:
                return fn(t.unsqueeze(2)).squeeze(2)

        return super()._apply(apply, recurse)

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._kernel_cache = None
        super()._load_from_state_dict(*args, **kwargs)

    def _crop_plan(self, frames: int) -> tuple[int, int, int] | None:
        if (
            not self.temporal_crop
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or self.kernel_size[0] == 1
        ):
            return None
        return _temporal_crop(frames, self.kernel_size[0], self.stride[0], self.padding[0], self.dilation[0])

    def _check_input(self, x: Tensor) -> None:
        if x.dim() not in (4, 5):
            raise ValueError(
                f"Conv3T expects input of shape (N, C, T, H, W) or (C, T, H, W), got {x.dim()}-D input "
                f"of shape {tuple(x.shape)}"
            )
        channels = x.shape[-4]
        if channels != self.in_channels:
            raise ValueError(
                f"Conv3T expects {self.in_channels} input channels, got {channels} (input shape "
                f"{tuple(x.shape)}, channels are dimension -4)"
            )
        pads = self._reversed_padding_repeated_twice
        for i, name in enumerate(("T", "H", "W")):
            padded = x.shape[-3 + i] + pads[2 * (2 - i)] + pads[2 * (2 - i) + 1]
            extent = self.dilation[i] * (self.kernel_size[i] - 1) + 1
            if padded < extent:
                raise ValueError(
                    f"Conv3T kernel extent {extent} along {name} (kernel {self.kernel_size[i]}, dilation "
                    f"{self.dilation[i]}) is larger than the padded input ({padded}); input shape "
                    f"{tuple(x.shape)}"
                )

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in, T, H, W) -> (N, out, T', H', W')`` exactly as ``F.conv3d(x, self.kernel(), ...)``."""
        compiling = torch.compiler.is_compiling()
        if compiling:
            plan = self._crop_plan(x.shape[-3])
        else:  # input checks and the crop plan depend on the shape only: once per shape
            key = (*x.shape[1:], x.dim(), self.temporal_crop)
            plans = self.__dict__.setdefault("_plans", {})
            if key in plans:
                plan = plans[key]
            else:
                self._check_input(x)
                if len(plans) >= 64:  # many input sizes (variable-length clips): keep the memo small
                    plans.clear()
                plan = plans[key] = self._crop_plan(x.shape[-3])
        channels_last = x.dim() == 5 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last_3d)
        time_range = None if plan is None else plan[:2]
        if compiling:  # no cache inside a traced graph: its key reads storage addresses
            kernel = self._generate(channels_last, time_range)
        else:
            kernel = self._inference_kernel(channels_last, time_range)
        if self.padding_mode != "zeros":
            x = F.pad(x, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return F.conv3d(x, kernel, self.bias, self.stride, 0, self.dilation, self.groups)
        padding = self.padding if plan is None else (plan[2], self.padding[1], self.padding[2])
        return F.conv3d(x, kernel, self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode!r}"
        if self.kernel_method != "matrix":
            s += f", kernel_method={self.kernel_method!r}"
        return s
