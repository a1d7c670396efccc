"""The Alkire-Foster index (models/needs_af.py), the indicator set and `cityops needs af`.

Worked example: Alkire & Foster (2011), "Counting and multidimensional poverty measurement",
Journal of Public Economics 95(7-8), 476-487, section 3 (also OPHI Working Paper 32, 2009, and
Alkire, Foster, Seth, Santos, Roche & Ballon (2015), Multidimensional Poverty Measurement and
Analysis, ch. 5 / OPHI Working Paper 86). Four people, four equally weighted dimensions (income,
years of schooling, self-rated health, health insurance), achievement matrix

    y = [[13.1, 14, 4, 1], [15.2, 7, 5, 0], [12.5, 10, 1, 0], [20, 11, 3, 1]]
    z = (13, 12, 3, 1)      deprived when y_ij < z_j

so c = (0, 2, 4, 1) deprivations; with k = 2 (of 4, i.e. 1/2 of the weights) two people are poor,
H = 1/2, A = 3/4 and M0 = 3/8 = 0.375 (6 censored deprivations out of 16 cells).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cityops.cli.main import cli
from cityops.needs.indicators import IndicatorSetError, intensity_band, load_indicator_set
from models.needs_af import (
    AFInputError,
    alkire_foster,
    decompose,
    deprivations_from_achievements,
    nested_weights,
    parse_fraction,
)

AF_Y = np.array([[13.1, 14, 4, 1], [15.2, 7, 5, 0], [12.5, 10, 1, 0], [20, 11, 3, 1]])
AF_Z = [13, 12, 3, 1]
EQUAL4 = "1/4,1/4,1/4,1/4"


def test_alkire_foster_2011_worked_example() -> None:
    g = deprivations_from_achievements(AF_Y, AF_Z)
    assert g.tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 1], [0, 1, 0, 0]]
    r = alkire_foster(g, EQUAL4, "1/2")
    assert [r.c_exact(i) for i in range(4)] == [0, Fraction(1, 2), 1, Fraction(1, 4)]
    assert r.identified.tolist() == [False, True, True, False]
    assert r.headcount_exact == Fraction(1, 2)
    assert r.intensity_exact == Fraction(3, 4)
    assert r.m0_exact == Fraction(3, 8) and r.M0 == 0.375
    assert pytest.approx(r.H * r.A) == r.M0
    # the censored matrix keeps only the poor people's deprivations
    assert r.censored.tolist() == [[0, 0, 0, 0], [0, 1, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]]
    assert r.uncensored_ratios == (0.25, 0.75, 0.25, 0.5)
    assert r.censored_ratios == (0.25, 0.5, 0.25, 0.5)
    # M0 = sum_j w_j * censored ratio_j; contributions sum to 100 %
    assert sum(float(w) * h for w, h in zip(r.weights, r.censored_ratios, strict=True)) == 0.375
    assert r.contributions_pct == pytest.approx((100 / 6, 200 / 6, 100 / 6, 200 / 6))
    assert sum(r.contributions_pct) == pytest.approx(100)
    assert r.warnings == ()


def test_union_and_intersection_are_the_extremes() -> None:
    g = deprivations_from_achievements(AF_Y, AF_Z)
    union = alkire_foster(g, EQUAL4, "1/4")      # any one deprivation
    inter = alkire_foster(g, EQUAL4, 1)          # deprived in everything
    assert union.identified.tolist() == [False, True, True, True]
    assert inter.identified.tolist() == [False, False, True, False]
    assert inter.m0_exact == Fraction(1, 4)


def test_higher_is_worse_direction() -> None:
    y = np.array([[0.10, 8], [0.31, 9], [0.30, 12]])
    g = deprivations_from_achievements(y, [0.30, 9], ["higher_is_worse", "lower_is_worse"])
    assert g.tolist() == [[0, 1], [1, 0], [0, 0]]     # 0.30 is not above 0.30; 9 is not below 9
    with pytest.raises(AFInputError, match="direction"):
        deprivations_from_achievements(y, [0.3, 9], ["worse", "lower_is_worse"])  # type: ignore[list-item]


def test_nested_weights_example() -> None:
    # 3 dimensions of 1/3: health (2 indicators), education (1), living (3)
    w = nested_weights({"health": ["nutrition", "mortality"], "education": ["schooling"],
                        "living": ["water", "floor", "assets"]})
    assert w == {"nutrition": Fraction(1, 6), "mortality": Fraction(1, 6),
                 "schooling": Fraction(1, 3), "water": Fraction(1, 9), "floor": Fraction(1, 9),
                 "assets": Fraction(1, 9)}
    g = np.array([[1, 0, 0, 1, 1, 0],    # 1/6 + 2/9 = 7/18  -> poor at k = 1/3
                  [0, 0, 0, 1, 1, 1],    # 3/9 = 1/3 exactly -> poor
                  [1, 0, 0, 1, 0, 0],    # 1/6 + 1/9 = 5/18  -> not poor
                  [0, 0, 1, 0, 0, 0]])   # 1/3, and schooling's weight alone reaches k
    r = alkire_foster(g, list(w.values()), "1/3", ids=list(w))
    assert r.identified.tolist() == [True, True, False, True]
    assert r.c_exact(0) == Fraction(7, 18) and r.c_exact(1) == Fraction(1, 3)
    assert r.m0_exact == (Fraction(7, 18) + Fraction(1, 3) + Fraction(1, 3)) / 4
    assert len(r.warnings) == 1 and "schooling" in r.warnings[0]


def test_exact_at_the_cutoff_where_floats_slip() -> None:
    # 0.1 + 0.2 > 0.3 in floats and 1/10 * 3 vs 3/10: exact fractions decide c = k correctly
    assert 0.1 + 0.2 != 0.3
    weights = ["0.1", "0.2", "0.7"]
    g = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]])
    r = alkire_foster(g, weights, "0.3")
    assert r.c_exact(0) == Fraction(3, 10)
    assert r.identified.tolist() == [True, False, True]
    # thirds: one deprivation of weight 1/3 at k = 1/3 is exactly at the cutoff
    third = alkire_foster(np.eye(3, dtype=int), "1/3,1/3,1/3", "1/3")
    assert third.identified.all()
    # 12 indicators of 1/12, k = 1/2: a float sum of 6 weights is 0.49999999999999994 and would
    # miss the household; the exact score is 1/2 and identifies it
    assert sum([1 / 12] * 6) < 1 / 2
    rows = np.zeros((2, 12), dtype=np.int8)
    rows[0, :6] = 1
    rows[1, :5] = 1
    r12 = alkire_foster(rows, ["1/12"] * 12, "1/2")
    assert r12.identified.tolist() == [True, False]
    # 10 indicators of 0.1, k = 0.8: 8 deprivations sum to 0.7999999999999999 in floats
    assert sum([0.1] * 8) < 0.8
    r10 = alkire_foster(np.array([[1] * 8 + [0] * 2]), ["0.1"] * 10, "0.8")
    assert r10.identified.tolist() == [True]


def test_floats_are_refused_as_weights() -> None:
    with pytest.raises(AFInputError, match="string"):
        parse_fraction(0.25)
    assert parse_fraction("0.25") == Fraction(1, 4) and parse_fraction(" 1/21 ") == Fraction(1, 21)


def test_single_indicator_weight_warning(caplog: pytest.LogCaptureFixture) -> None:
    g = np.array([[1, 0, 0], [0, 1, 1]])
    with caplog.at_level(logging.WARNING, logger="models.needs_af"):
        r = alkire_foster(g, "1/2,1/4,1/4", "1/3", ids=["income", "a", "b"])
    assert len(r.warnings) == 1 and "'income'" in r.warnings[0] and "1/2" in r.warnings[0]
    assert "income" in caplog.text


@pytest.mark.parametrize(("matrix", "weights", "k", "message"), [
    ([[0, 1], [1, 1]], "1/2,1/3", "1/3", "sum to 5/6"),
    ([[0, 2], [1, 1]], "1/2,1/2", "1/3", "only 0 and 1: row 1, column 2"),
    ([[0, 1, 1]], "1/2,1/2", "1/3", "2 weights for 3"),
    ([[0, 1]], "1/2,1/2", "0", "outside"),
    ([[0, 1]], "1/2,1/2", "4/3", "outside"),
    ([[0, 1]], "1,0", "1/2", "positive"),
    ([[0.0, float("nan")]], "1/2,1/2", "1/2", "NaN"),
    ([0, 1], "1/2,1/2", "1/2", "2-D"),
    ([[0, 1]], "1/2,half", "1/2", "not a number"),
])
def test_input_errors(matrix, weights, k, message) -> None:
    with pytest.raises(AFInputError, match=message):
        alkire_foster(np.array(matrix), weights, k)


def test_decomposition_sums_to_the_total() -> None:
    rng = np.random.default_rng(5)
    g = (rng.random((5000, 6)) < 0.25).astype(np.int8)
    r = alkire_foster(g, ["1/6"] * 6, "1/3")
    streets = rng.integers(0, 13, size=5000).astype(str)
    parts = decompose(r, streets)
    assert sum(p.n for p in parts) == 5000
    assert sum(p.population_share for p in parts) == pytest.approx(1)
    assert sum(p.population_share * p.M0 for p in parts) == pytest.approx(r.M0, abs=1e-12)
    assert sum(p.contribution_pct for p in parts) == pytest.approx(100)
    for p in parts:
        assert pytest.approx(p.H * p.A) == p.M0
    with pytest.raises(AFInputError, match="group labels"):
        decompose(r, streets[:10])


def test_default_indicator_set() -> None:
    s = load_indicator_set()
    assert s.version == "2026-11-22" and s.k == Fraction(1, 3)
    assert len(s.ids) == 22 and list(s.dimensions) == [
        "income", "living", "health", "employment", "education", "care", "social"]
    assert s.ids[:3] == ("income_below_dibao", "income_below_1_5_dibao", "assets_below_limit")
    assert s.dimensions["health"][-1] == "no_medical_insurance"
    assert sum(s.weights) == 1
    assert s.weights[0] == Fraction(1, 21) and s.weights[6] == Fraction(1, 28)
    assert all(len(label) > 10 for label in s.labels.values())
    income = s.indicators[0]
    assert income.cutoff == s.settings["dibao_cny_per_month"] == 1420
    # no single indicator reaches k: nobody is identified by one deprivation alone
    assert alkire_foster(np.eye(22, dtype=np.int8), s.weights, s.k).warnings == ()


def test_intensity_bands_are_exact_at_their_lines() -> None:
    k = Fraction(1, 3)
    assert intensity_band(Fraction(1, 3), k) == "medium"  # c = k exactly: identified
    assert intensity_band(Fraction(1, 3) - Fraction(1, 10**9), k) == "low"
    assert intensity_band(Fraction(1, 2), k) == "high"
    assert intensity_band(Fraction(1, 2) - Fraction(1, 10**9), k) == "medium"
    # with k above 1/2 there is no medium band: c = 1/2 is not identified
    assert intensity_band(Fraction(1, 2), Fraction(3, 5)) == "low"
    assert intensity_band(Fraction(3, 5), Fraction(3, 5)) == "high"


def test_indicator_file_errors_name_file_and_entry(tmp_path: Path) -> None:
    text = (Path(__file__).parents[2] / "cityops/data/needs_indicators.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace('cutoff = 0.30, deprived_when = "above"',
                                'cutoff = 0.30, deprived_when = "sometimes"', 1))
    with pytest.raises(IndicatorSetError) as err:
        load_indicator_set(bad)
    assert str(bad) in str(err.value)
    assert "dimensions[2] (health).indicators[2] (medical_spending_high)" in str(err.value)
    bad.write_text(text.replace('weight = "1/7"', 'weight = "1/6"', 1))
    with pytest.raises(IndicatorSetError, match="dimension weights sum to 43/42"):
        load_indicator_set(bad)
    with pytest.raises(IndicatorSetError, match="cannot read"):
        load_indicator_set(tmp_path / "missing.toml")


def test_million_rows_are_exact_and_integer() -> None:
    s = load_indicator_set()
    rng = np.random.default_rng(1)
    g = (rng.random((200_000, 22)) < 0.15).astype(np.int8)
    r = alkire_foster(g, s.weights, s.k)
    assert r.c_scaled.dtype == np.int64
    expected = [sum((w for w, x in zip(s.weights, row, strict=True) if x), Fraction(0)) >= s.k
                for row in g[:300].tolist()]
    assert r.identified[:300].tolist() == expected


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_cli_achievements_with_groups_and_bad_rows(tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "af.csv", "person,income,schooling,health,insurance,street\n"
                      "1,13.1,14,4,1,north\n2,15.2,7,5,0,north\n3,12.5,10,1,0,south\n"
                      "4,20,11,3,1,south\n5,x,11,3,1,south\n6,20,11,3\n7,1,1,1,0,\n")
    result = CliRunner().invoke(cli, ["needs", "af", "--matrix", str(csv_file), "--cutoffs",
                                      "13,12,3,1", "--k", "1/2", "--group-column", "street"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "rows: 4 used, 3 skipped" in out
    assert "line 6: income = 'x' is not a number" in out
    assert "line 7: 4 fields, the header has 6" in out
    assert "line 8: street is empty" in out
    assert "H  (headcount ratio)  = 0.5000 (1/2)" in out
    assert "A  (intensity)        = 0.7500 (3/4)" in out
    assert "M0 (adjusted H = H×A) = 0.3750 (3/8)" in out
    assert "decomposition by street:" in out
    assert "south" in out and "66.67" in out


def test_cli_deprivation_matrix_and_weights(tmp_path: Path) -> None:
    csv_file = _write(tmp_path / "g.csv", "id,a,b,c\nh1,1,1,0\nh2,1,0,0\nh3,0,0,1\nh4,0,2,1\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["needs", "af", "--matrix", str(csv_file), "--weights",
                                 "0.1,0.2,0.7", "--k", "0.3"])
    assert result.exit_code == 0, result.output
    assert "line 5: b = '2' is not 0 or 1" in result.output
    assert "h1" in result.output and "0.3000 (3/10)  yes" in result.output
    assert "H  (headcount ratio)  = 0.6667 (2/3)" in result.output
    wf = _write(tmp_path / "w.txt", "# weights\na,1/2\nb,1/4\nc,1/4\n")
    result = runner.invoke(cli, ["needs", "af", "--matrix", str(csv_file), "--weights-file",
                                 str(wf), "--k", "1/2", "--show", "0"])
    assert result.exit_code == 0, result.output
    assert "warning: indicator 'a' has weight 1/2 >= k = 1/2" in result.output
    assert "h1" not in result.output
    result = runner.invoke(cli, ["needs", "af", "--matrix", str(csv_file), "--weights",
                                 "1/2,1/3,1/3"])
    assert result.exit_code != 0 and "weights sum to 7/6" in result.output


def test_cli_default_indicator_columns(tmp_path: Path) -> None:
    s = load_indicator_set()
    rows = ["household_id," + ",".join(s.ids)]
    # income and living (6 × 1/21) plus one employment indicator (1/21): 7/21 = k exactly
    rows.append("a," + ",".join("1" if i < 6 or i == 10 else "0" for i in range(22)))
    rows.append("b," + ",".join("1" if i < 6 else "0" for i in range(22)))   # 6/21 = 2/7 < k
    csv_file = _write(tmp_path / "d.csv", "\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["needs", "af", "--matrix", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "k = 1/3" in result.output and "income_below_dibao=1/21" in result.output
    assert "0.3333 (1/3)  yes" in result.output and "0.2857 (2/7)  no" in result.output
