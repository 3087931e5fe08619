"""Input features in front of any kanpde model: random Fourier features and exact periodic
embeddings.

A wrapper evaluates ``u(x) = inner(gamma(x))``: a fixed (untrained) feature map ``gamma``
followed by an MLP, KAN or ChebyKAN ``inner`` whose ``in_features`` is the number of features.
Both maps are trigonometric features of a linear map of the input,

    gamma(x) = [cos(2 pi B x), sin(2 pi B x), x_P],      B: (m, d) frequencies,

with ``x_P`` the coordinates passed through unchanged (none, all, or the non-periodic ones):

- :class:`FourierFeatures`: ``B`` drawn once from ``N(0, scale^2)`` (random Fourier features,
  Tancik et al. 2020, "Fourier features let networks learn high frequency functions in low
  dimensional domains", NeurIPS), as used for PINNs against spectral bias by Wang, Wang &
  Perdikaris 2021 ("On the eigenvector bias of Fourier feature networks", CMAME 384, 113938);
- :class:`PeriodicEmbedding`: each periodic coordinate ``x_a`` with period ``P_a`` is replaced by
  ``cos(2 pi j x_a / P_a)``, ``sin(2 pi j x_a / P_a)``, ``j = 1..n_harmonics`` (Dong & Ni 2021, "A
  method for representing periodic functions and enforcing exactly periodic boundary conditions
  with deep neural networks", JCP 435, 110242): the network and all its derivatives are then
  exactly ``P_a``-periodic in ``x_a``, so periodic boundary conditions need no loss term.

Derivatives go forward in closed form: with ``z = 2 pi B x`` (so ``dz = 2 pi B dx``, and
``d2z = 2 pi B d2x`` for an input jet that is not the identity),

    d cos z = -sin z dz,   d2 cos z = -cos z dz^2 - sin z d2z,
    d sin z =  cos z dz,   d2 sin z = -sin z dz^2 + cos z d2z,

and the jet of the features is handed to ``inner.propagate_jet``.

The rest of kanpde recognises models by what they have (``isinstance(model, GridAdaptive)``,
``hasattr(model, "activation_curves")``), so a wrapper has a grid, activation curves or a
regularisation loss exactly when its inner model has them: ``FourierFeatures(kan, ...)`` returns
an instance of a subclass of :class:`FourierFeatures` that adds those methods (built once per
combination below; its ``__name__`` is still ``"FourierFeatures"``), and a wrapper of an MLP has
none of them.  Compiled kernels need no pass-through: :func:`kanpde.models.prepare_kernels`
walks ``model.modules()``, which include the inner model's layers.
"""
from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .base import GridAdaptive, Jet, Model, check_input, check_int, check_real

__all__ = ["FEATURE_KINDS", "FourierFeatures", "PeriodicEmbedding", "TrigonometricFeatures", "feature_width",
           "with_features"]

_TWO_PI = 2.0 * math.pi


class TrigonometricFeatures(nn.Module):
    """The feature layer ``gamma(h) = [cos(2 pi B h), sin(2 pi B h), h[:, pass_axes]]``.

    Args:
        B: ``(m, in_features)`` frequencies (cycles per unit of ``h``), kept as a buffer (saved in
            ``state_dict``, never trained).
        pass_axes: input columns appended unchanged after the ``2 m`` trigonometric features.

    ``forward(h)``: ``(N, in_features)`` -> ``(N, out_features)``, ``out_features = 2 m +
    len(pass_axes)``; column ``k < m`` is ``cos(2 pi B_k . h)``, column ``m + k`` is
    ``sin(2 pi B_k . h)``, then the passed axes in the given order.
    """

    def __init__(self, B: torch.Tensor, pass_axes: Sequence[int] = ()):
        super().__init__()
        if not isinstance(B, torch.Tensor) or B.dim() != 2 or not torch.is_floating_point(B) or B.shape[0] < 1:
            raise ValueError(f"B must be a floating-point tensor of shape (m, in_features) with m >= 1, "
                             f"got {tuple(B.shape) if isinstance(B, torch.Tensor) else type(B).__name__}")
        self.n_frequencies, self.in_features = B.shape
        self.pass_axes = tuple(operator.index(a) for a in pass_axes)
        if any(not 0 <= a < self.in_features for a in self.pass_axes):
            raise ValueError(f"pass_axes must be input columns in [0, {self.in_features}), got {self.pass_axes}")
        self.register_buffer("B", B.detach().clone())

    @property
    def out_features(self) -> int:
        return 2 * self.n_frequencies + len(self.pass_axes)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"n_frequencies={self.n_frequencies}, pass_axes={list(self.pass_axes)}")

    def _check_h(self, h: torch.Tensor, what: str) -> None:
        check_input(h, self.in_features, what)
        if h.dtype != self.B.dtype:
            raise TypeError(f"{what} has a {self.B.dtype} B but got a {h.dtype} input; convert one of them "
                            f"(e.g. model.to(torch.float64))")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(N, in_features)`` -> ``(N, out_features)``."""
        self._check_h(h, "TrigonometricFeatures")
        z = torch.matmul(h, self.B.t()) * _TWO_PI
        return torch.cat([torch.cos(z), torch.sin(z), h[:, list(self.pass_axes)]], 1)

    def forward_jet(self, jet: Jet) -> Jet:
        """Propagate a jet of the layer input.

        ``jet.value`` ``(N, in)``, ``jet.grad``/``jet.hess_diag`` ``(N, in, d)`` (or ``None``) ->
        Jet with ``value`` ``(N, out)``, ``grad``/``hess_diag`` ``(N, out, d)``, same order.
        """
        what = "TrigonometricFeatures.forward_jet"
        if not isinstance(jet, Jet):
            raise TypeError(f"{what} expects a Jet, got {type(jet).__name__}")
        h, g, s, order = jet.value, jet.grad, jet.hess_diag, jet.order
        self._check_h(h, what)
        if g is None and s is not None:
            raise ValueError(f"{what}: the jet has hess_diag but no grad; a second-order jet needs both")
        n, i = h.shape
        for name, t in (("grad", g), ("hess_diag", s)):
            if t is not None and (not isinstance(t, torch.Tensor) or t.dim() != 3 or tuple(t.shape[:2]) != (n, i)
                                  or t.dtype != h.dtype):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{what} expects jet.{name} of shape (N, {i}, d) with N = {n} and the "
                                 f"dtype of jet.value, got {shape}")
        if s is not None and s.shape != g.shape:
            raise ValueError(f"{what} expects jet.hess_diag of shape {tuple(g.shape)}, got {tuple(s.shape)}")
        axes = list(self.pass_axes)
        B = self.B * _TWO_PI
        gz = torch.matmul(B, g) if order >= 1 else None  # (m, in) @ (N, in, d) -> (N, m, d)
        hz = torch.matmul(B, s) if order >= 2 else None
        return self._jet(torch.matmul(h, B.t()), gz, hz, h[:, axes],
                         g[:, axes] if order >= 1 else None, s[:, axes] if order >= 2 else None, order)

    def forward_jet_input(self, x: torch.Tensor, order: int = 2) -> Jet:
        """:meth:`forward_jet` of the identity jet at ``x`` ``(N, in)``: ``dz/dx = 2 pi B``,
        ``d2z/dx2 = 0``, and a passed axis ``a`` has gradient ``e_a`` and no curvature.
        Returns a Jet with ``grad``/``hess_diag`` ``(N, out, in)``."""
        self._check_h(x, "TrigonometricFeatures.forward_jet_input")
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        n, d = x.shape
        axes = list(self.pass_axes)
        B = self.B * _TWO_PI
        gz = gp = hp = None
        if order >= 1:
            gz = B.unsqueeze(0)  # (1, m, d), broadcast over the points
            gp = torch.eye(d, dtype=x.dtype, device=x.device)[axes].unsqueeze(0).expand(n, -1, -1)
        if order >= 2:
            hp = x.new_zeros(n, len(axes), d)
        return self._jet(torch.matmul(x, B.t()), gz, None, x[:, axes], gp, hp, order)

    @staticmethod
    def _jet(z, gz, hz, xp, gp, hp, order: int) -> Jet:
        """Jet of ``[cos z, sin z, x_P]`` from ``z`` ``(N, m)`` with ``gz`` ``(N | 1, m, d)``, ``hz``
        ``(N, m, d)`` (``None``: zero) and the passed axes' jet ``xp``, ``gp``, ``hp``."""
        c, s = torch.cos(z), torch.sin(z)
        value = torch.cat([c, s, xp], 1)
        if order == 0:
            return Jet(value)
        c3, s3 = c.unsqueeze(-1), s.unsqueeze(-1)
        grad = torch.cat([-s3 * gz, c3 * gz, gp], 1)
        if order == 1:
            return Jet(value, grad)
        gz2 = gz * gz
        hc, hs = -c3 * gz2, -s3 * gz2
        if hz is not None:
            hc, hs = torch.addcmul(hc, s3, hz, value=-1.0), torch.addcmul(hs, c3, hz)
        return Jet(value, grad, torch.cat([hc, hs, hp], 1))


# ---------------------------------------------------------------------------------------------
# the wrappers

def _capabilities(inner) -> frozenset:
    """What an inner model offers beyond the :class:`Model` protocol (see module doc)."""
    caps = set()
    if isinstance(inner, GridAdaptive):
        caps.add("grid")
    if callable(getattr(inner, "activation_curves", None)):
        caps.add("curves")
    if callable(getattr(inner, "regularization_loss", None)):
        caps.add("regularization")
    return frozenset(caps)


#: public wrapper class -> {capabilities: class to instantiate} (filled at the end of the module)
_VARIANTS: dict[type, dict[frozenset, type]] = {}


class _FeatureModel(Model):
    """``x`` ``(N, in_features)`` -> ``inner(embedding(x))`` ``(N, out_features)``.

    ``widths`` is ``[in_features, n_features, *inner.widths[1:]]``: the input, the feature layer,
    then the inner model's layers (``widths[0]`` and ``widths[-1]`` are the wrapper's input and
    output widths, as for every model).  ``layers`` is ``(embedding, *inner.layers)``;
    ``n_params`` counts the inner model's trainable parameters (the features have none).
    """

    def __new__(cls, *args, **kwargs):
        # choose the subclass that has exactly the inner model's optional methods (module doc)
        chosen, variants = cls, _VARIANTS.get(cls)
        if variants is not None and (args or "inner" in kwargs):
            chosen = variants[_capabilities(args[0] if args else kwargs["inner"])]
        return super().__new__(chosen)

    def __init__(self, inner: Model, embedding: TrigonometricFeatures, what: str):
        if not isinstance(inner, Model):
            raise TypeError(f"{type(self).__name__} wraps a kanpde model (MLP, KAN, ChebyKAN, ...), "
                            f"got {type(inner).__name__}")
        f = embedding.out_features
        if inner.in_features != f:
            raise ValueError(f"{what} makes {f} features from {embedding.in_features} inputs, so the inner "
                             f"model needs in_features = {f} (widths [{f}, ...]); got {type(inner).__name__} "
                             f"with widths {inner.widths}")
        super().__init__([embedding.in_features, *inner.widths])
        ref = next(itertools.chain(inner.parameters(), inner.buffers()), None)
        if ref is not None:
            embedding = embedding.to(dtype=ref.dtype, device=ref.device)
        else:
            embedding = embedding.to(dtype=torch.get_default_dtype())
        self.embedding = embedding
        self.inner = inner

    @property
    def n_features(self) -> int:
        """Width of the feature layer, the inner model's ``in_features``."""
        return self.embedding.out_features

    @property
    def layers(self) -> tuple:
        """The layers a point passes through: the feature layer, then the inner model's."""
        return (self.embedding, *self.inner.layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``gamma(x)``: ``(N, in_features)`` -> ``(N, n_features)``."""
        self._check(x)
        return self.embedding(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, in_features)`` -> ``(N, out_features)``."""
        return self.inner(self.features(x))

    def forward_jet(self, x: torch.Tensor, order: int = 2) -> Jet:
        """The exact jet of the features at ``x`` ``(N, in_features)``, through the inner model:
        ``value`` ``(N, out)``, ``grad``/``hess_diag`` ``(N, out, in_features)`` (per ``order``)."""
        self._check(x)
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        return self.inner.propagate_jet(self.embedding.forward_jet_input(x, order))

    def propagate_jet(self, jet: Jet) -> Jet:
        """A jet of the input (``value`` ``(N, in_features)``, ``grad``/``hess_diag``
        ``(N, in_features, d)``) through the features and the inner model -> ``(N, out, d)``."""
        return self.inner.propagate_jet(self.embedding.forward_jet(jet))


class _GridPassThrough:
    """The grid of a grid-adaptive inner model (:class:`~kanpde.models.base.GridAdaptive`); its
    knots follow the values of the features, the inner model's inputs."""

    @property
    def grid_size(self) -> int:
        return self.inner.grid_size

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Adapt the inner model's knots to the features ``gamma(x)`` of the samples ``x``
        ``(N, in_features)``, keeping the function."""
        self.inner.update_grid(self.features(x.detach()))

    def refine(self, new_grid_size: int):
        """Grid extension of the inner model (see its ``refine``); returns ``self``."""
        self.inner.refine(new_grid_size)
        return self


class _CurvesPassThrough:
    def activation_curves(self, *args, **kwargs) -> list[dict]:
        """The inner model's ``activation_curves`` (its edge functions of the features)."""
        return self.inner.activation_curves(*args, **kwargs)


class _RegularizationPassThrough:
    def regularization_loss(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        """The inner model's ``regularization_loss`` on the features ``gamma(x)`` of ``x``
        ``(N, in_features)``."""
        return self.inner.regularization_loss(self.features(x), *args, **kwargs)


_MIXINS = {"grid": _GridPassThrough, "curves": _CurvesPassThrough, "regularization": _RegularizationPassThrough}


class FourierFeatures(_FeatureModel):
    """Random Fourier features ``gamma(x) = [cos(2 pi B x), sin(2 pi B x)]`` (+ ``x``) in front
    of ``inner`` (Tancik et al. 2020; Wang, Wang & Perdikaris 2021, see module doc).

    Args:
        inner: a kanpde model with ``in_features = 2 * n_frequencies`` (``+ in_features`` with
            ``keep_input``); :func:`feature_width` computes it.
        in_features: number of coordinates ``d``.
        n_frequencies: rows ``m`` of ``B``.
        scale: standard deviation ``sigma`` of the entries of ``B``, drawn once from
            ``N(0, sigma^2)`` in float64 on the CPU with ``torch.Generator().manual_seed(seed)``
            (the same ``B`` on every device), stored in the inner model's dtype.  The features
            oscillate at about ``sigma`` cycles per unit length (``|B_k|``): choose ``sigma``
            near the solution's frequencies (too large gives noisy fits, Tancik et al. 2020).
        keep_input: append ``x`` itself after the trigonometric features.
        seed: seed of ``B``, independent of torch's global generator.

    Buffer ``embedding.B`` ``(n_frequencies, in_features)`` (also ``self.B``), saved in
    ``state_dict``, not trained.  ``forward(x)``: ``(N, in_features)`` -> ``(N, inner.out_features)``.
    """

    def __init__(self, inner: Model, in_features: int, n_frequencies: int = 64, scale: float = 1.0,
                 keep_input: bool = False, seed: int = 0):
        embedding = self.embedding_for(in_features, n_frequencies, scale, keep_input, seed)
        super().__init__(inner, embedding, f"FourierFeatures(n_frequencies={n_frequencies}, "
                                           f"keep_input={keep_input})")
        self.n_frequencies, self.scale = embedding.n_frequencies, float(scale)
        self.keep_input, self.seed = keep_input, int(seed)

    @staticmethod
    def embedding_for(in_features: int, n_frequencies: int = 64, scale: float = 1.0, keep_input: bool = False,
                      seed: int = 0) -> TrigonometricFeatures:
        """The feature layer (float64, CPU) of these settings, checked."""
        d = check_int(in_features, "in_features", 1)
        m = check_int(n_frequencies, "n_frequencies", 1)
        scale = check_real(scale, "scale", 0.0)
        if scale == 0.0:
            raise ValueError("scale must be > 0 (the standard deviation of the frequencies), got 0.0")
        if not isinstance(keep_input, bool):
            raise TypeError(f"keep_input must be True or False, got {keep_input!r}")
        generator = torch.Generator().manual_seed(check_int(seed, "seed", 0))
        B = torch.randn(m, d, generator=generator, dtype=torch.float64) * scale
        return TrigonometricFeatures(B, range(d) if keep_input else ())

    @property
    def B(self) -> torch.Tensor:
        """The frequencies ``(n_frequencies, in_features)``, cycles per unit length."""
        return self.embedding.B

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, n_frequencies={self.n_frequencies}, scale={self.scale}, "
                f"keep_input={self.keep_input}, seed={self.seed}")


def _check_periods(periods, in_features: int) -> dict[int, float]:
    """``periods`` as ``{axis: period}`` with axes in ``[0, in_features)`` (negative axes count
    from the end), sorted, or a clear error."""
    example = "e.g. {0: 2.0} for a period 2 in the first coordinate"
    if not isinstance(periods, Mapping):
        raise TypeError(f"periods must be a dict {{axis: period}}, {example}; got {periods!r}")
    if not periods:
        raise ValueError(f"periods must name at least one periodic axis, {example}")
    out = {}
    for axis, period in periods.items():
        if isinstance(axis, bool) or not isinstance(axis, int) and not hasattr(axis, "__index__"):
            raise TypeError(f"periods: axes must be integers, got {axis!r}")
        a = operator.index(axis)
        if not -in_features <= a < in_features:
            raise ValueError(f"periods: axis {a} does not exist for in_features={in_features} "
                             f"(axes 0..{in_features - 1}, or negative from the end)")
        a %= in_features
        if a in out:
            raise ValueError(f"periods: axis {a} is given twice (as {a} and {a - in_features})")
        p = check_real(period, f"periods[{axis}]", 0.0)
        if p == 0.0:
            raise ValueError(f"periods[{axis}] must be a positive period, got 0.0")
        out[a] = p
    return dict(sorted(out.items()))


class PeriodicEmbedding(_FeatureModel):
    """Exactly periodic inputs (Dong & Ni 2021, see module doc): each axis ``a`` in ``periods``
    becomes ``cos(2 pi j x_a / P_a)``, ``sin(2 pi j x_a / P_a)``, ``j = 1..n_harmonics``; the other
    axes pass through.  ``u`` and all its derivatives are then ``P_a``-periodic in ``x_a``.

    Args:
        inner: a kanpde model with ``in_features = d + len(periods) * (2 * n_harmonics - 1)``
            (:func:`feature_width`).
        in_features: number of coordinates ``d``.
        periods: ``{axis: period}``, e.g. ``{0: 2.0}`` (negative axes count from the end).
        n_harmonics: harmonics ``J >= 1`` per periodic axis (1 is Dong & Ni's embedding; the
            inner network makes higher harmonics from it).

    Feature layout (``embedding``): the cosines, then the sines, periodic axes in increasing
    order with ``j = 1..J`` within each, then the non-periodic axes in increasing order.
    ``forward(x)``: ``(N, in_features)`` -> ``(N, inner.out_features)``.
    """

    def __init__(self, inner: Model, in_features: int, periods: Mapping[int, float], n_harmonics: int = 1):
        embedding = self.embedding_for(in_features, periods, n_harmonics)
        super().__init__(inner, embedding, f"PeriodicEmbedding(periods={dict(periods)}, n_harmonics={n_harmonics})")
        self.periods = _check_periods(periods, self.in_features)
        self.n_harmonics = check_int(n_harmonics, "n_harmonics", 1)

    @staticmethod
    def embedding_for(in_features: int, periods: Mapping[int, float], n_harmonics: int = 1) -> TrigonometricFeatures:
        """The feature layer (float64, CPU) of these settings, checked."""
        d = check_int(in_features, "in_features", 1)
        periods = _check_periods(periods, d)
        harmonics = check_int(n_harmonics, "n_harmonics", 1)
        rows = []
        for axis, period in periods.items():
            for j in range(1, harmonics + 1):
                row = torch.zeros(d, dtype=torch.float64)
                row[axis] = j / period
                rows.append(row)
        return TrigonometricFeatures(torch.stack(rows), [a for a in range(d) if a not in periods])

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, periods={self.periods}, n_harmonics={self.n_harmonics}"


def _make_variants(public: type) -> None:
    """One subclass of ``public`` per non-empty set of capabilities, registered in this module
    under its ``__qualname__`` (so pickle and ``copy.deepcopy`` find it); ``__name__`` stays
    the public one."""
    table = {frozenset(): public}
    names = list(_MIXINS)
    for r in range(1, len(names) + 1):
        for caps in itertools.combinations(names, r):
            qualname = f"_{public.__name__}_with_{'_'.join(caps)}"
            variant = type(public.__name__, tuple(_MIXINS[c] for c in caps) + (public,),
                           {"__module__": __name__, "__qualname__": qualname, "__doc__": public.__doc__})
            globals()[qualname] = variant
            table[frozenset(caps)] = variant
    _VARIANTS[public] = table


_make_variants(FourierFeatures)
_make_variants(PeriodicEmbedding)

#: the wrappers :func:`with_features` builds, by name
FEATURE_KINDS = {"fourier": FourierFeatures, "periodic": PeriodicEmbedding}


def _kind(kind: str) -> type:
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown input feature kind {kind!r}; allowed: {', '.join(map(repr, FEATURE_KINDS))}")
    return FEATURE_KINDS[kind]


def feature_width(kind: str, in_features: int, **kwargs) -> int:
    """Number of features, i.e. the ``in_features`` the inner model needs, for
    ``with_features(model, kind, in_features, **kwargs)`` (e.g. to build ``widths``)."""
    return _kind(kind).embedding_for(in_features, **kwargs).out_features


def with_features(model: Model, kind: str, in_features: int, **kwargs) -> Model:
    """``model`` behind input features of ``kind`` (``"fourier"``: :class:`FourierFeatures`,
    ``"periodic"``: :class:`PeriodicEmbedding`, with their keyword arguments ``kwargs``);
    ``model.in_features`` must be :func:`feature_width` ``(kind, in_features, **kwargs)``."""
    return _kind(kind)(model, in_features, **kwargs)
