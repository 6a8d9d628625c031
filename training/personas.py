"""Personas: groups of customers who shop alike, found by K-means over their habits and named in words.

Tiers say how much a customer is worth; personas say how they shop ("evening, promotion-hunting
shoppers"), which is what a marketer writes a message for. The model is K-means (scikit-learn) over
standardized habit and basket features of the feature snapshot (`HABITS`: dayparts, weekend, order
frequency, basket value, range, promotion and coupon use, private label, concentration, novelty,
children), with the features a dataset lacks left out (orders-only data keeps the order habits).

- **Which k**: the silhouette on a seeded sample, over a configurable range; the highest wins, ties to
  the smaller k (fewer personas are easier to act on). A refit keeps the previous model's k unless
  another k's silhouette is higher by `K_SWITCH_MARGIN`, and starts K-means from the previous
  centres: on Complete Journey the silhouettes of
  k = 3..8 lie within a few hundredths of each other, and letting that noise pick k each month changed
  every persona (adjusted Rand index 0.30 between consecutive monthly fits).
- **Names** come from each centre's most distinctive traits (its largest standardized deviations,
  `TRAITS`), so "Persona 3" is never shown alone; staff may rename a persona by id in the home's
  `personas.yaml` (`PersonaModel.renamed`, applied when the model is loaded).
- **Stable meaning**: a refit matches its centres to the previous model's (Hungarian assignment on
  distances in the new scale) and takes over their ids, so persona 3 stays "weekend big-basket" from
  one month to the next; a new centre gets a new id.
- **Assignment** is the nearest centre, in numpy: the same function labels a million snapshot rows
  and one customer in the service.

The model is plain numbers (medians, scales, centres) and names, kept as JSON in MLflow. The home's
`data/personas.yaml` (optional) holds the range of k and staff's names:

```yaml
k_min: 3
k_max: 8
names: {3: "Weekday evening families"}
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from features.config_errors import validated
from features.errors import InputError
from features.files import read_yaml
from features.settings import Settings

#: Habit features personas are fitted on, with how each is read: "log" for counts and money (a
#: heavy tail would otherwise make its own cluster of the top 1%), "share" as it is.
HABITS: dict[str, str] = {
    "morning_order_share_365d": "share",
    "afternoon_order_share_365d": "share",
    "evening_order_share_365d": "share",
    "night_order_share_365d": "share",
    "weekend_order_share_365d": "share",
    "orders_365d": "log",
    "avg_order_value_365d": "log",
    "categories_365d": "log",
    "discounted_spend_share_365d": "share",
    "coupon_redemptions_365d": "log",
    "private_label_share_365d": "share",
    "top_department_share_365d": "share",
    "new_product_rate_90d": "share",
    "kids_count": "count",
}

#: Words for a centre far above (first) or below (second) the average on a feature; None: not a trait.
TRAITS: dict[str, tuple[str | None, str | None]] = {
    "morning_order_share_365d": ("morning", None),
    "afternoon_order_share_365d": ("afternoon", None),
    "evening_order_share_365d": ("evening", None),
    "night_order_share_365d": ("late-night", None),
    "weekend_order_share_365d": ("weekend", "weekday"),
    "orders_365d": ("frequent", "occasional"),
    "avg_order_value_365d": ("big-basket", "small-basket"),
    "categories_365d": ("wide-range", "narrow-range"),
    "discounted_spend_share_365d": ("promotion-hunting", "full-price"),
    "coupon_redemptions_365d": ("coupon-using", None),
    "private_label_share_365d": ("own-brand", "brand-loyal"),
    "top_department_share_365d": ("single-department", None),
    "new_product_rate_90d": ("exploring", "routine"),
    "kids_count": ("family", None),
}

#: A trait names a persona only when its centre lies this many standard deviations from the mean.
TRAIT_THRESHOLD = 0.4
#: Customers with fewer orders in the year have no habits to speak of; they are fitted out, assigned in.
MIN_ORDERS = 3
#: Rows the centres are fitted on (a seeded sample above it) and rows the silhouette is computed on:
#: K-means on 100,000 rows finds the same centres as on a million to a few hundredths of a standard
#: deviation, and the silhouette is quadratic in rows.
FIT_ROWS = 100_000
SILHOUETTE_ROWS = 5_000
#: How much better another k's silhouette must be to replace the previous model's k.
K_SWITCH_MARGIN = 0.02
#: Fits on fewer rows run K-means in one thread.
SMALL_FIT = 20_000


CONFIG_FILE = "personas.yaml"


class PersonaConfig(BaseModel):
    """The home's persona settings (`data/personas.yaml`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    k_min: int = Field(3, ge=2, le=20)
    k_max: int = Field(8, ge=2, le=20)
    names: dict[int, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range_in_order(self) -> PersonaConfig:
        if self.k_min > self.k_max:
            raise ValueError(f"k_min {self.k_min} is above k_max {self.k_max}")
        return self


def config_path(settings: Settings) -> Path:
    return settings.data_dir / CONFIG_FILE


def load_config(settings: Settings) -> PersonaConfig:
    """The home's persona settings, or the defaults without a file; an `InputError` names a bad field."""
    path = config_path(settings)
    if not path.exists():
        return PersonaConfig()
    return validated(PersonaConfig, read_yaml(path), str(path), "persona settings")


def champion_personas(settings: Settings) -> PersonaModel | None:
    """The champion persona model with staff's names, or None before the first fit."""
    from training import registry

    registry.configure(settings)
    found = registry.load_personas()
    return None if found is None else found[0].renamed(load_config(settings).names)


def _numeric(column: pd.Series) -> np.ndarray:
    """A feature as floats; household text such as "3+" or "5+" reads as its leading number."""
    if column.dtype == object or pd.api.types.is_string_dtype(column):
        return pd.to_numeric(column.astype("string").str.extract(r"^(\d+)")[0], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
    return column.to_numpy(dtype=float, na_value=np.nan)


def _transformed(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Each feature read as `HABITS` says (log1p of counts and money), as a float matrix with NaN."""
    columns = []
    for name in features:
        values = _numeric(frame[name]) if name in frame else np.full(len(frame), np.nan)
        columns.append(np.log1p(np.clip(values, 0, None)) if HABITS[name] == "log" else values)
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


@dataclass(frozen=True)
class PersonaModel:
    """A fitted persona model: how to place a customer, and what each persona is called.

    Attributes:
        features: Habit features used, in matrix order (those the data has).
        medians: Per feature, the value a missing one is read as (after the `HABITS` transform).
        means, scales: Standardization of the transformed features.
        centres: One row per persona, in standardized units.
        ids: Persona id of each centre (stable across refits; see `match_ids`).
        names: Persona id → name (automatic, or staff's rename).
        traits: Persona id → its distinctive traits, strongest first ("evening +1.2 sd").
        silhouette: Silhouette of the chosen k on the fitting sample.
        fitted_rows: Customers the centres were fitted on.
    """

    features: list[str]
    medians: list[float]
    means: list[float]
    scales: list[float]
    centres: list[list[float]]
    ids: list[int]
    names: dict[int, str]
    traits: dict[int, list[str]] = field(default_factory=dict)
    silhouette: float = math.nan
    fitted_rows: int = 0

    def standardized(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of `frame` (habit feature columns) in the model's standardized units."""
        matrix = _transformed(frame, self.features)
        missing = np.isnan(matrix)
        if missing.any():
            matrix = np.where(missing, np.asarray(self.medians), matrix)
        return (matrix - np.asarray(self.means)) / np.asarray(self.scales)

    def assign(self, frame: pd.DataFrame) -> np.ndarray:
        """The persona id of every row: its nearest centre."""
        if frame.empty:
            return np.empty(0, dtype=int)
        points, centres = self.standardized(frame), np.asarray(self.centres)
        # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centre
        distances = (centres**2).sum(axis=1) - 2 * points @ centres.T
        return np.asarray(self.ids)[distances.argmin(axis=1)]

    def centres_in_words(self) -> pd.DataFrame:
        """Each persona's centre (index: name) on each habit (columns: the habit's word, e.g.
        "evening", "big-basket"), in standard deviations from the average active customer."""
        return pd.DataFrame(
            self.centres,
            index=[self.names[i] for i in self.ids],
            columns=[TRAITS[name][0] or name for name in self.features],
        )

    def name_of(self, ids: np.ndarray) -> np.ndarray:
        """Names for an array of persona ids."""
        return np.array([self.names[int(i)] for i in ids], dtype=object)

    def renamed(self, names: dict[int, str]) -> PersonaModel:
        """The model with staff's names for some personas; unknown ids are refused."""
        unknown = sorted(set(names) - set(self.ids))
        if unknown:
            raise InputError(
                f"personas.names: no persona {', '.join(map(str, unknown))}; the model has "
                f"{', '.join(map(str, sorted(self.ids)))}"
            )
        return PersonaModel(**{**self.to_dict(), "names": {**self.names, **names}})

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "medians": self.medians,
            "means": self.means,
            "scales": self.scales,
            "centres": self.centres,
            "ids": self.ids,
            "names": self.names,
            "traits": self.traits,
            "silhouette": self.silhouette,
            "fitted_rows": self.fitted_rows,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonaModel:
        """The inverse of `to_dict` after a JSON round trip (whose object keys are text)."""
        return cls(
            **{
                **data,
                "names": {int(k): v for k, v in data["names"].items()},
                "traits": {int(k): v for k, v in data.get("traits", {}).items()},
            }
        )


def usable_features(frame: pd.DataFrame) -> list[str]:
    """The habit features this data has (not all missing), in `HABITS` order."""
    return [name for name in HABITS if name in frame and frame[name].notna().any()]


def fit_personas(
    frame: pd.DataFrame,
    k_range: tuple[int, int] = (3, 8),
    previous: PersonaModel | None = None,
    seed: int = 0,
) -> PersonaModel:
    """Fit personas on a feature snapshot.

    Args:
        frame: One row per customer with the `HABITS` columns it has and `orders_365d`.
        k_range: Smallest and largest number of personas to consider.
        previous: The model in use; its ids are carried over to the matching new centres.
        seed: Sampling and K-means seed (the same data and seed give the same model).

    Raises:
        InputError: the range is empty or below 2, too few active customers for the largest k, or no
            habit feature is present.
    """
    from threadpoolctl import threadpool_limits

    k_min, k_max = k_range
    if not 2 <= k_min <= k_max:
        raise InputError(f"personas: k range {k_min}-{k_max}: expected 2 <= k_min <= k_max")
    features = usable_features(frame)
    if not features:
        raise InputError("personas: the snapshot has none of the habit features " + ", ".join(HABITS))
    active = frame[frame["orders_365d"].fillna(0) >= MIN_ORDERS]
    if len(active) < 10 * k_max:
        raise InputError(
            f"personas: {len(active)} customers with at least {MIN_ORDERS} orders in the year; "
            f"{10 * k_max} needed for up to {k_max} personas"
        )
    rng = np.random.default_rng(seed)
    if len(active) > FIT_ROWS:
        active = active.iloc[np.sort(rng.choice(len(active), FIT_ROWS, replace=False))]
    raw = _transformed(active, features)
    medians = np.nanmedian(raw, axis=0)
    raw = np.where(np.isnan(raw), medians, raw)
    means, scales = raw.mean(axis=0), raw.std(axis=0)
    scales = np.where(scales > 0, scales, 1.0)
    points = (raw - means) / scales
    probe = rng.choice(len(points), min(SILHOUETTE_ROWS, len(points)), replace=False)
    warm = _previous_centres(previous, features, means, scales)
    # Small fits in one thread: OpenMP's threads spin-wait, and on a busy 2-core machine that made a
    # fit of 2,000 customers take 0.9 s instead of 0.13 s.
    with threadpool_limits(limits=1 if len(points) < SMALL_FIT else None):
        candidates = _fit_each_k(points, probe, range(k_min, k_max + 1), warm, seed)
    best = max(candidates, key=lambda k: (round(candidates[k][0], 9), -k))
    kept = len(warm) if warm is not None else None
    if kept in candidates and candidates[best][0] < candidates[kept][0] + K_SWITCH_MARGIN:
        best = kept
    silhouette, fitted = candidates[best]
    centres = fitted.cluster_centers_
    ids = match_ids(centres, features, means, scales, previous)
    traits = {pid: _traits(features, centre) for pid, centre in zip(ids, centres, strict=True)}
    return PersonaModel(
        features=features,
        medians=medians.tolist(),
        means=means.tolist(),
        scales=scales.tolist(),
        centres=centres.tolist(),
        ids=ids,
        names=_names(traits, ids, previous),
        traits={pid: [f"{word} {z:+.1f} sd" for word, z in t] for pid, t in traits.items()},
        silhouette=silhouette,
        fitted_rows=len(points),
    )


def _fit_each_k(
    points: np.ndarray, probe: np.ndarray, ks: range, warm: np.ndarray | None, seed: int
) -> dict[int, tuple[float, Any]]:
    """K-means for each k with its silhouette on the `probe` rows; the k of the previous model starts
    from its centres (`warm`), so the same personas are found again."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    candidates = {}
    for k in ks:
        if warm is not None and len(warm) == k:
            fitted = KMeans(n_clusters=k, init=warm, n_init=1, random_state=seed).fit(points)
        else:
            fitted = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(points)
        candidates[k] = (float(silhouette_score(points[probe], fitted.labels_[probe])), fitted)
    return candidates


def match_ids(
    centres: np.ndarray,
    features: list[str],
    means: np.ndarray,
    scales: np.ndarray,
    previous: PersonaModel | None,
) -> list[int]:
    """Persona ids for new centres: the id of the previous centre each is matched to (one to one, least
    total distance, both in the new standardized units), new ids (after the largest used) for the
    rest; 1..k without a previous model. A previous model over other features shares no ids."""
    if previous is None:
        return list(range(1, len(centres) + 1))
    fresh = iter(range(max(previous.ids) + 1, max(previous.ids) + 1 + len(centres)))
    old = _previous_centres(previous, features, means, scales)
    if old is None:
        return [next(fresh) for _ in centres]
    from scipy.optimize import linear_sum_assignment

    cost = ((centres[:, None, :] - old[None, :, :]) ** 2).sum(axis=2)
    rows, cols = linear_sum_assignment(cost)
    ids: list[int | None] = [None] * len(centres)
    for row, col in zip(rows, cols, strict=True):
        ids[row] = previous.ids[col]
    return [pid if pid is not None else next(fresh) for pid in ids]


def _previous_centres(
    previous: PersonaModel | None, features: list[str], means: np.ndarray, scales: np.ndarray
) -> np.ndarray | None:
    """The previous model's centres in the new standardized units (None without one, or when it was
    fitted on other features)."""
    if previous is None or previous.features != features:
        return None
    old = np.asarray(previous.centres) * np.asarray(previous.scales) + np.asarray(previous.means)
    return (old - means) / scales


def _traits(features: list[str], centre: np.ndarray) -> list[tuple[str, float]]:
    """The centre's words, strongest deviation first, for features beyond `TRAIT_THRESHOLD`."""
    found = []
    for name, z in zip(features, centre, strict=True):
        high, low = TRAITS[name]
        word = high if z >= TRAIT_THRESHOLD else low if z <= -TRAIT_THRESHOLD else None
        if word is not None:
            found.append((word, float(z)))
    return sorted(found, key=lambda item: -abs(item[1]))


def _names(
    traits: dict[int, list[tuple[str, float]]], ids: list[int], previous: PersonaModel | None = None
) -> dict[int, str]:
    """ "Evening, promotion-hunting shoppers": the two strongest traits; a third (then the id) when two
    personas would share a name; "Typical shoppers" without any trait. A persona keeps its previous
    name while every word of it is still one of its traits (a name should not flicker between two
    equally true second words from month to month)."""
    names: dict[int, str] = {}
    for depth in (2, 3, 4):
        names = {}
        for pid in ids:
            words = [word for word, _ in traits[pid][:depth]]
            names[pid] = (", ".join(words) + " shoppers").capitalize() if words else "Typical shoppers"
            if previous is not None and pid in previous.names:
                kept = _words(previous.names[pid])
                if kept and kept <= {word for word, _ in traits[pid]}:
                    names[pid] = previous.names[pid]
        if len(set(names.values())) == len(names):
            return names
    seen: dict[str, int] = {}
    for pid in ids:
        seen[names[pid]] = seen.get(names[pid], 0) + 1
    return {pid: f"{name} ({pid})" if seen[name] > 1 else name for pid, name in names.items()}


def _words(name: str) -> set[str]:
    """The trait words of an automatic name ("Evening, occasional shoppers" -> {evening, occasional})."""
    if not name.endswith(" shoppers") or name == "Typical shoppers":
        return set()
    return {word.strip().lower() for word in name.removesuffix(" shoppers").split(",")}


def stability(earlier: PersonaModel, later: PersonaModel, frame: pd.DataFrame) -> float:
    """Adjusted Rand index between the two models' assignments of the same customers (1: identical
    partitions, 0: no more alike than chance); ids need not match."""
    from sklearn.metrics import adjusted_rand_score

    return float(adjusted_rand_score(earlier.assign(frame), later.assign(frame)))


def profile(model: PersonaModel, frame: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """One row per persona: id, name, customers, share, traits, and the mean of each habit feature in
    its own unit (shares as shares, money as money), the table a report or a marketer reads."""
    table = frame[[name for name in model.features if name in frame]].apply(_numeric_series)
    table = table.assign(persona_id=ids)
    means = table.groupby("persona_id").mean()
    sizes = table.groupby("persona_id").size()
    rows = pd.DataFrame(
        {
            "persona_id": sizes.index.astype(int),
            "persona": [model.names[int(i)] for i in sizes.index],
            "customers": sizes.to_numpy(),
            "share": (sizes / sizes.sum()).to_numpy(),
            "traits": [", ".join(model.traits.get(int(i), [])) for i in sizes.index],
        }
    )
    return pd.concat([rows, means.reset_index(drop=True)], axis=1)


def _numeric_series(column: pd.Series) -> pd.Series:
    return pd.Series(_numeric(column), index=column.index)
