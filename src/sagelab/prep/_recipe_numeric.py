"""Number steps: scaling, binning, polynomial and interaction features, PCA (scikit-learn's)."""

from __future__ import annotations

import itertools
import warnings
from typing import Any, ClassVar

import numpy as np

from sagelab.errors import InvalidInput
from sagelab.prep._recipe_frame import NUMBER, Frame, Schema, unique_name
from sagelab.prep._recipe_params import Param
from sagelab.prep._recipe_step import ApplyContext, FitContext, Step, finite, require, rowwise_dot

__all__ = ["Bin", "Interactions", "Pca", "Polynomial", "Scale"]

_SCALERS = {"standard": "StandardScaler", "minmax": "MinMaxScaler", "robust": "RobustScaler"}


class Scale(Step):
    """Standardize (``StandardScaler``), min-max normalize (``MinMaxScaler``) or robust-scale
    (``RobustScaler``) number columns; missing values stay missing."""

    name = "scale"
    params = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param("method", "str", "standard", choices=tuple(_SCALERS)),
    )

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        preprocessing = require("sklearn.preprocessing", "scikit-learn")
        scaler = getattr(preprocessing, _SCALERS[self.values["method"]])()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            scaler.fit(finite(frame.numbers(self.columns)))
        self.estimators["scaler"] = scaler

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        if not self.columns or not frame.n_rows:
            return frame
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            out = self.estimators["scaler"].transform(finite(frame.numbers(self.columns)))
        for j, col in enumerate(self.columns):
            frame.columns[col] = np.ascontiguousarray(out[:, j], dtype=np.float64)
        return frame


class Bin(Step):
    """Replace numbers by their bin (0, 1, ...): equal-width (``uniform``) or equal-count
    (``quantile``) bins learnt by ``KBinsDiscretizer``, or your own ``edges``.

    Values beyond the outer edges fall in the first or last bin, as in
    scikit-learn; a missing value stays missing.
    """

    name = "bin"
    params = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param("method", "str", "quantile", choices=("uniform", "quantile", "edges")),
        Param("bins", "int", 5, low=2, high=1000, only_for=("method", ("uniform", "quantile"))),
        Param("edges", "numbers", only_for=("method", ("edges",)), help="Increasing bin edges."),
    )

    def check_values(self) -> list[str]:
        edges = self.values["edges"]
        if self.values["method"] != "edges":
            return []
        if not edges or len(edges) < 2:
            return [f"{self.label}: method edges needs 'edges', a list of at least two numbers."]
        if any(b <= a for a, b in itertools.pairwise(edges)):
            return [f"{self.label}: 'edges' must increase strictly; got {edges}."]
        return []

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        if self.values["method"] == "edges":
            self.state["edges"] = {c: list(self.values["edges"]) for c in self.columns}
            return
        preprocessing = require("sklearn.preprocessing", "scikit-learn")
        edges: dict[str, list[float] | None] = {}
        for col in self.columns:
            x = frame.columns[col]
            x = x[~np.isnan(x)]
            if not x.size:
                edges[col] = None
                continue
            kbd = preprocessing.KBinsDiscretizer(
                n_bins=self.values["bins"],
                encode="ordinal",
                strategy=self.values["method"],
                random_state=ctx.seed,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # constant columns: one bin, with a warning
                kbd.fit(x.reshape(-1, 1))
            self.estimators[col] = kbd
            edges[col] = [float(e) for e in kbd.bin_edges_[0]]
        self.state["edges"] = edges

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        for col in self.columns:
            x = frame.columns[col]
            out = np.full(x.shape[0], np.nan)
            present = ~np.isnan(x)
            edges = self.state["edges"].get(col)
            if edges is not None and present.any():
                if col in self.estimators:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out[present] = self.estimators[col].transform(x[present].reshape(-1, 1))[
                            :, 0
                        ]
                else:
                    inner = np.asarray(edges[1:-1], dtype=np.float64)
                    out[present] = np.searchsorted(inner, x[present], side="right")
            frame.columns[col] = out
        return frame


class Polynomial(Step):
    """Add products and powers of number columns up to ``degree`` (``PolynomialFeatures``).

    The new columns are named like ``a*b`` and ``a^2`` and go last; the
    originals stay. A term of a missing value is missing.
    """

    name = "polynomial"
    params: ClassVar[tuple[Param, ...]] = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param("degree", "int", 2, low=2, high=5),
        Param("interaction_only", "bool", False, help="Only products of distinct columns."),
    )
    interaction_only = False

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        schema.open_prefixes.extend(self.columns)

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        preprocessing = require("sklearn.preprocessing", "scikit-learn")
        only = bool(self.values.get("interaction_only", self.interaction_only))
        pf = preprocessing.PolynomialFeatures(
            degree=self.values["degree"], interaction_only=only, include_bias=False
        )
        # The terms depend only on how many columns there are.
        pf.fit(np.zeros((1, len(self.columns))))
        powers = np.asarray(pf.powers_)
        keep = [i for i, p in enumerate(powers) if p.sum() >= 2]
        taken = list(frame.names)
        names = []
        for i in keep:
            term = "*".join(
                col if p == 1 else f"{col}^{p}"
                for col, p in zip(self.columns, powers[i], strict=True)
                if p
            )
            names.append(unique_name(term, taken))
            taken.append(names[-1])
        self.estimators["poly"] = pf
        self.state.update(outputs=names, terms=keep)

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        X = finite(frame.numbers(self.columns))
        terms = self.state["terms"]
        pf = self.estimators["poly"]
        out = np.full((X.shape[0], len(terms)), np.nan)
        complete = ~np.isnan(X).any(axis=1)
        with np.errstate(all="ignore"):
            if complete.any():
                out[complete] = pf.transform(X[complete])[:, terms]
            if (~complete).any():
                # scikit-learn refuses missing values; multiply in its order, NaN propagating.
                powers = np.asarray(pf.powers_)[terms]
                partial = X[~complete]
                for k, p in enumerate(powers):
                    term = np.ones(partial.shape[0])
                    for j, times in enumerate(p):
                        for _ in range(times):
                            term = term * partial[:, j]
                    out[~complete, k] = term
        for k, name in enumerate(self.state["outputs"]):
            frame.set(name, np.ascontiguousarray(out[:, k]), NUMBER)
        return frame


class Interactions(Polynomial):
    """Add products of distinct number columns (pairs with degree 2, triples with 3...)."""

    name = "interactions"
    params: ClassVar[tuple[Param, ...]] = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param("degree", "int", 2, low=2, high=5),
    )
    interaction_only = True


class Pca(Step):
    """Replace number columns by their principal components (scikit-learn's ``PCA``).

    Fitted by scikit-learn; at transform the projection is summed column by
    column rather than in BLAS so that a row's components never depend on the
    other rows of its batch. A row with a missing value gets missing components.
    """

    name = "pca"
    params = (
        Param("columns", "columns", help="Number columns (default: all but the label)."),
        Param(
            "n_components",
            "int_or_fraction",
            0.95,
            help="How many components, or the share of variance to keep (0.95).",
        ),
        Param("whiten", "bool", False),
        Param("prefix", "str", "pc", help="Names of the components: pc1, pc2, ..."),
        Param("keep", "bool", False, help="Keep the original columns too."),
    )

    def plan_outputs(self, schema: Schema, target: str | None) -> None:
        if not self.values["keep"]:
            for col in self.columns:
                schema.kinds.pop(col, None)
        n = self.values["n_components"]
        if isinstance(n, int):
            for i in range(1, n + 1):
                schema.kinds[f"{self.values['prefix']}{i}"] = NUMBER
        else:
            schema.open_prefixes.append(self.values["prefix"])

    def fit(self, frame: Frame, ctx: FitContext) -> None:
        decomposition = require("sklearn.decomposition", "scikit-learn")
        X = finite(frame.numbers(self.columns))
        holes = np.isnan(X).any(axis=0)
        if holes.any():
            names = [c for c, h in zip(self.columns, holes, strict=True) if h]
            raise InvalidInput(
                f"{self.label} cannot be fitted on missing values; {', '.join(map(repr, names))} "
                "has some. Impute them in an earlier step."
            )
        n = self.values["n_components"]
        most = min(X.shape)
        if isinstance(n, int) and n > most:
            raise InvalidInput(
                f"{self.label}: 'n_components' is {n}, but {X.shape[0]} row(s) of "
                f"{X.shape[1]} column(s) give at most {most} component(s)."
            )
        pca = decomposition.PCA(
            n_components=n, whiten=self.values["whiten"], svd_solver="full", random_state=ctx.seed
        )
        try:
            pca.fit(X)
        except ValueError as exc:
            raise InvalidInput(f"{self.label} cannot be fitted: {exc}") from None
        taken = [c for c in frame.names if self.values["keep"] or c not in self.columns]
        names = []
        for i in range(pca.n_components_):
            names.append(unique_name(f"{self.values['prefix']}{i + 1}", taken))
            taken.append(names[-1])
        self.estimators["pca"] = pca
        self.state["outputs"] = names

    def transform(self, frame: Frame, ctx: ApplyContext) -> Frame:
        pca: Any = self.estimators["pca"]
        X = finite(frame.numbers(self.columns))
        with np.errstate(all="ignore"):
            out = rowwise_dot(X - pca.mean_, np.asarray(pca.components_, dtype=np.float64))
            if pca.whiten:
                out /= np.sqrt(pca.explained_variance_)
        if not self.values["keep"]:
            frame.drop(self.columns)
        for k, name in enumerate(self.state["outputs"]):
            frame.set(name, np.ascontiguousarray(out[:, k]), NUMBER)
        return frame
