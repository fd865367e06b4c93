"""Data preparation (SageMaker Data Wrangler's role): profiles, exploration, and recipes.

* Profiles (:func:`profile`): per-column statistics, correlations and warnings
  about a SOURCE, with an HTML report.
* Exploration (:func:`explore_clusters`, :func:`explore_projection`): cluster
  analysis and 2-D projections.
* Recipes: a YAML list of steps (drop columns, de-duplicate, validation rules,
  missing values, outliers, scaling, encoding, binning, datetime parts,
  interactions and polynomials, text, PCA, resampling) built on scikit-learn
  and imbalanced-learn. :func:`fit_recipe` fits one on training data and saves
  it as a versioned artifact in the lake; :meth:`FittedRecipe.transform`
  applies it the same way at training, batch and serving time;
  :func:`apply_recipe` streams a SOURCE through it into a table.
"""

from __future__ import annotations

from sagelab.prep._explore import (
    ClusterExploration,
    Projection,
    explore_clusters,
    explore_projection,
)
from sagelab.prep._explore_report import write_explore_report
from sagelab.prep._profile import profile
from sagelab.prep._profile_model import ColumnProfile, Profile, ProfileWarning
from sagelab.prep._profile_report import profile_name, store_profile, write_profile_report
from sagelab.prep._recipe import (
    FittedRecipe,
    RecipeColumn,
    RecipeResult,
    fit_recipe,
    load_recipe,
    recipe_versions,
)
from sagelab.prep._recipe_apply import ApplyResult, apply_recipe
from sagelab.prep._recipe_params import RecipeError
from sagelab.prep._recipe_spec import RecipeSpec, parse_recipe
from sagelab.prep._recipe_step import STEP_NAMES

__all__ = [
    "STEP_NAMES",
    "ApplyResult",
    "ClusterExploration",
    "ColumnProfile",
    "FittedRecipe",
    "Profile",
    "ProfileWarning",
    "Projection",
    "RecipeColumn",
    "RecipeError",
    "RecipeResult",
    "RecipeSpec",
    "apply_recipe",
    "explore_clusters",
    "explore_projection",
    "fit_recipe",
    "load_recipe",
    "parse_recipe",
    "profile",
    "profile_name",
    "recipe_versions",
    "store_profile",
    "write_explore_report",
    "write_profile_report",
]
