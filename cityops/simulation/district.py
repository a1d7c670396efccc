"""A deterministic synthetic district shaped like a central district of Shanghai.

``generate_district(seed, size)`` partitions a district polygon into street centres, responsibility
grids and communities (nested Voronoi cells), and places households (some of them elderly people
living alone with a smart water meter), flood gauges at low points, manhole covers, cameras,
grid workers with a day and a night shift per community, the flood-season key sites of each
street (underpasses, low roads, basements, shelters, a supply depot; ``_key_sites``), and each
household's needs profile with simulated past caseworker decisions (``cityops.needs.data``).
Same seed and size, same district.
``load_district`` writes it into an empty database with COPY.

Everything personal here (names, phones, addresses) is invented.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time
from typing import Any

import psycopg
import shapely
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

from cityops.needs.data import NeedsData, generate_needs, load_needs
from cityops.org.grids import Cell, community_code, district_code, grid_code, street_code

COUNTY = "310101"
# An irregular outline around the centre of Shanghai's Puxi riverside (lon, lat).
OUTLINE = Polygon(
    [
        (121.4640, 31.2290), (121.4700, 31.2380), (121.4810, 31.2440), (121.4930, 31.2455),
        (121.5010, 31.2410), (121.5060, 31.2320), (121.5080, 31.2190), (121.5030, 31.2060),
        (121.4930, 31.1970), (121.4800, 31.1950), (121.4700, 31.2010), (121.4650, 31.2120),
        (121.4640, 31.2290),
    ]
)
STREET_NAMES = [
    "Nanjing Donglu", "Waitan", "Bansongyuan Lu", "Xiaodongmen", "Yuyuan", "Laoximen",
    "Wuliqiao", "Dapuqiao", "Huaihai Zhonglu", "Ruijin Erlu", "Penglai Lu", "Xizang Nanlu",
    "Fuxing Donglu", "Renmin Guangchang", "Jinling Donglu", "Sichuan Nanlu",
]
ROAD_NAMES = [
    "Henan", "Fujian", "Zhejiang", "Yunnan", "Xizang", "Sichuan", "Jiangxi", "Shandong",
    "Fuzhou", "Hankou", "Jiujiang", "Ningbo", "Tianjin", "Beijing", "Jinling", "Fuxing",
    "Zhonghua", "Renmin", "Lujiabang", "Xujiahui", "Sinan", "Danshui", "Madang", "Huangpi",
]
SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu", "Xu",
            "Sun", "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo", "Shen", "Gu", "Lu", "Qian"]
GIVEN = ["Wei", "Fang", "Min", "Jing", "Li", "Qiang", "Lei", "Jun", "Yan", "Hua", "Ping", "Gang",
         "Xiu", "Ying", "Hong", "Ming", "Lan", "Jie", "Tao", "Mei", "Rong", "Bin", "Zhen", "Yun"]
LOW_POINTS = ["underpass", "low road", "basement entrance", "riverside road", "tunnel mouth"]


@dataclass(frozen=True)
class DistrictSize:
    """How big a district to make. The defaults are the demo's (loads in a few seconds)."""

    streets: int = 13
    grids: int = 63
    communities: int = 300
    households_per_community: int = 20
    elderly_alone_share: float = 0.25
    flood_gauges: int = 40
    manhole_covers: int = 300
    cameras: int = 120
    workers_per_community: int = 2

    def __post_init__(self) -> None:
        if not 1 <= self.streets <= len(STREET_NAMES):
            raise ValueError(f"streets must be 1..{len(STREET_NAMES)}, not {self.streets}")
        if not self.streets <= self.grids <= 999 * self.streets:
            raise ValueError("need at least one responsibility grid per street")
        if not self.grids <= self.communities <= 999 * self.streets:
            raise ValueError("need at least one community per responsibility grid")
        if not 0 <= self.elderly_alone_share <= 1:
            raise ValueError("elderly_alone_share must be between 0 and 1")
        if self.workers_per_community not in (1, 2):
            raise ValueError("workers_per_community must be 1 (day shift) or 2 (day and night)")

    @classmethod
    def full(cls) -> DistrictSize:
        """A full-size district of about 1.1 million residents (for benchmarks)."""
        return cls(households_per_community=1300, elderly_alone_share=0.04, flood_gauges=200,
                   manhole_covers=6000, cameras=3000)


@dataclass
class District:
    """A generated district: cells plus table rows ready to load."""

    seed: int
    size: DistrictSize
    cells: list[Cell]
    households: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    cameras: list[dict[str, Any]] = field(default_factory=list)
    workers: list[dict[str, Any]] = field(default_factory=list)
    shifts: list[dict[str, Any]] = field(default_factory=list)
    key_sites: list[dict[str, Any]] = field(default_factory=list)
    needs: NeedsData | None = None  # household profiles, past decisions (cityops.needs.data)

    def residents(self) -> int:
        """Number of residents in the generated households."""
        return sum(h["members"] for h in self.households)


def _split(rng: random.Random, region: BaseGeometry, n: int) -> list[BaseGeometry]:
    """Split a polygon into ``n`` non-empty Voronoi cells of random seed points inside it."""
    if n == 1:
        return [region]
    for _ in range(20):
        seeds = [_random_point(rng, region) for _ in range(n)]
        cells = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=region.envelope.buffer(0.01))
        parts = []
        for seed in seeds:  # keep the order of the seeds, so numbering follows the rng
            cell = next(g for g in cells.geoms if g.covers(seed))
            clipped = cell.intersection(region)
            if clipped.is_empty or clipped.area < region.area / (n * 20):
                break
            parts.append(_polygonal(clipped))
        if len(parts) == n:
            # number the parts west-to-east, north-to-south, like a map reader would
            parts.sort(key=lambda g: (-round(g.centroid.y, 3), g.centroid.x))
            return parts
    raise RuntimeError(f"could not split a region into {n} usable cells")


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Drop stray lines/points an intersection may leave.

    Coordinates are not rounded: rounding each cell on its own makes neighbours overlap.
    """
    if geom.geom_type == "GeometryCollection":
        polys = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon")]
        geom = shapely.union_all(polys)
    return geom


def _random_point(rng: random.Random, region: BaseGeometry) -> Point:
    """A random point inside ``region``, coordinates rounded to 6 decimals (~0.1 m), off borders."""
    minx, miny, maxx, maxy = region.bounds
    while True:
        p = Point(round(rng.uniform(minx, maxx), 6), round(rng.uniform(miny, maxy), 6))
        if region.contains(p) and region.boundary.distance(p) > 2e-6:
            return p


def _allocate(rng: random.Random, total: int, weights: list[float]) -> list[int]:
    """Split ``total`` over weights, at least 1 each, largest remainders first."""
    n = len(weights)
    spare = total - n
    wsum = sum(weights)
    raw = [spare * w / wsum for w in weights]
    counts = [1 + int(r) for r in raw]
    order = sorted(range(n), key=lambda i: (raw[i] - int(raw[i]), rng.random()), reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def generate_district(
    seed: int = 1, size: DistrictSize | None = None,
    progress: Callable[[str], None] | None = None,
) -> District:
    """Generate a district deterministically from ``seed`` and ``size``."""
    size = size or DistrictSize()
    rng = random.Random(seed)
    say = progress or (lambda _msg: None)
    root = district_code(COUNTY)
    cells = [Cell(root, "district", "District Operations Centre", None, OUTLINE)]
    communities: list[Cell] = []
    street_polys = _split(rng, OUTLINE, size.streets)
    grid_counts = _allocate(rng, size.grids, [p.area for p in street_polys])
    say(f"grid cells: {size.streets} streets, {size.grids} grids, {size.communities} communities")
    grid_polys_all: list[tuple[int, int, BaseGeometry]] = []
    for s, (poly, n_grids) in enumerate(zip(street_polys, grid_counts, strict=True), start=1):
        code = street_code(COUNTY, s)
        cells.append(Cell(code, "street", f"{STREET_NAMES[s - 1]} Street Centre", root, poly))
        for g, gpoly in enumerate(_split(rng, poly, n_grids), start=1):
            grid_polys_all.append((s, g, gpoly))
    comm_counts = _allocate(rng, size.communities, [p.area for _, _, p in grid_polys_all])
    next_comm: dict[int, int] = {}
    for (s, g, gpoly), n_comm in zip(grid_polys_all, comm_counts, strict=True):
        gcode = grid_code(COUNTY, s, g)
        cells.append(Cell(gcode, "grid", f"{STREET_NAMES[s - 1]} Grid {g}", street_code(COUNTY, s),
                          gpoly))
        for cpoly in _split(rng, gpoly, n_comm):
            c = next_comm.get(s, 0) + 1
            next_comm[s] = c
            road = rng.choice(ROAD_NAMES)
            cell = Cell(community_code(COUNTY, s, c), "community", f"{road} Rd Community {c}",
                        gcode, cpoly)
            cells.append(cell)
            communities.append(cell)
    district = District(seed=seed, size=size, cells=cells)
    say("households, devices and workers")
    _populate(rng, district, communities)
    _key_sites(seed, district, communities)
    say("household needs profiles and past decisions")
    district.needs = generate_needs(seed, district.households)  # a numpy rng of its own
    return district


def _person(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(GIVEN)}{rng.choice(GIVEN).lower()}"


def _populate(rng: random.Random, district: District, communities: list[Cell]) -> None:
    size = district.size
    meter_no = 0
    for ci, cell in enumerate(communities):
        road = cell.name.split(" Rd ")[0]
        for h in range(size.households_per_community):
            p = _random_point(rng, cell.geometry)
            alone = rng.random() < size.elderly_alone_share
            hid = f"H{ci + 1:04d}{h + 1:04d}"
            district.households.append({
                "id": hid,
                "community_code": cell.code,
                "head_name": _person(rng),
                "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                "address": f"Room {rng.randint(1, 6)}0{rng.randint(1, 4)},"
                           f" No. {rng.randint(1, 60)}, Lane {rng.randint(1, 999)}, {road} Road",
                "members": 1 if alone else rng.choice([1, 2, 2, 3, 3, 3, 4, 5]),
                "elderly_alone": alone,
                "birth_year": rng.randint(1932, 1960) if alone else rng.randint(1940, 2000),
                "lon": p.x,
                "lat": p.y,
            })
            if alone:
                meter_no += 1
                district.devices.append({
                    "id": f"WM{meter_no:06d}", "kind": "water_meter", "household_id": hid,
                    "grid_code": cell.code, "lon": p.x, "lat": p.y,
                    "label": f"Water meter, {cell.name}", "config": {},
                })
        for w in range(size.workers_per_community):
            wid = f"GW{ci * size.workers_per_community + w + 1:05d}"
            district.workers.append({"id": wid, "name": _person(rng),
                                     "phone": f"139{rng.randrange(10**8):08d}",
                                     "cell_code": cell.code})
            day = w == 0
            for weekday in range(1, 8):
                district.shifts.append({
                    "worker_id": wid, "weekday": weekday,
                    "starts": time(8) if day else time(20), "ends": time(20) if day else time(8),
                })
    for i in range(size.flood_gauges):
        cell = rng.choice(communities)
        p = _random_point(rng, cell.geometry)
        district.devices.append({
            "id": f"FG{i + 1:06d}", "kind": "flood_gauge", "household_id": None,
            "grid_code": cell.code, "lon": p.x, "lat": p.y,
            "label": f"Flood gauge, {cell.name.split(' Community')[0]} {rng.choice(LOW_POINTS)}",
            "config": {"threshold_mm": rng.choice([100, 150, 150, 150, 200])},
        })
    for i in range(size.manhole_covers):
        cell = rng.choice(communities)
        p = _random_point(rng, cell.geometry)
        district.devices.append({
            "id": f"MC{i + 1:06d}", "kind": "manhole_cover", "household_id": None,
            "grid_code": cell.code, "lon": p.x, "lat": p.y,
            "label": f"Manhole cover, {cell.name.split(' Community')[0]}", "config": {},
        })
    for i in range(size.cameras):
        cell = rng.choice(communities)
        p = _random_point(rng, cell.geometry)
        district.cameras.append({
            "id": f"CAM{i + 1:05d}", "grid_code": cell.code, "label": f"Camera, {cell.name}",
            "lon": p.x, "lat": p.y, "stream_url": None,
        })


# Flood-season key sites per street: (kind, id prefix, plain name, how many).
KEY_SITE_KINDS = (("underpass", "UP", "Underpass", 3), ("low_road", "LR", "Low road", 2),
                  ("basement", "BS", "Basement", 2), ("shelter", "SH", "Shelter", 2),
                  ("depot", "DP", "Supply depot", 1))
GAUGED_LOW_POINTS = ("underpass", "tunnel mouth")


def _key_sites(seed: int, district: District, communities: list[Cell]) -> None:
    """Key sites of each street, inside the street's communities, from an rng of their own (so
    adding them changed nothing else). An underpass goes next to a flood gauge labelled as one
    (about 15 m away) while the street has such gauges; the rest are placed at random."""
    rng = random.Random(f"key-sites-{seed}")
    by_street: dict[str, list[Cell]] = {}
    for cell in communities:
        by_street.setdefault(cell.code[:9], []).append(cell)
    cell_of = {c.code: c for c in communities}
    for s, street in enumerate(c for c in district.cells if c.level == "street"):
        name = STREET_NAMES[s]
        cells = by_street[street.code[:9]]
        gauges = [d for d in district.devices if d["kind"] == "flood_gauge"
                  and d["grid_code"][:9] == street.code[:9]
                  and d["label"].endswith(GAUGED_LOW_POINTS)]
        for kind, prefix, label, count in KEY_SITE_KINDS:
            n = count if kind != "shelter" else rng.choice((1, 2))
            for i in range(1, n + 1):
                notes = ""
                gauge = gauges.pop(0) if kind == "underpass" and gauges else None
                if gauge is not None:
                    cell = cell_of[gauge["grid_code"]]
                    p = Point(round(gauge["lon"] + 0.00012, 6), round(gauge["lat"] + 0.00008, 6))
                    if not cell.geometry.contains(p):
                        p = Point(gauge["lon"], gauge["lat"])
                    notes = f"flood gauge {gauge['id']} at the entrance"
                else:
                    cell = rng.choice(cells)
                    p = _random_point(rng, cell.geometry)
                capacity = None
                if kind == "shelter":
                    capacity = rng.choice((150, 200, 300, 400, 500))
                    notes = "school hall" if i == 1 else "community centre"
                elif kind == "depot":
                    notes = "sandbags, pumps, barriers, life jackets"
                district.key_sites.append({
                    "id": f"{prefix}{s + 1:02d}{i:02d}", "kind": kind,
                    "name": f"{label}, {name} {i}", "grid_code": cell.code,
                    "lon": p.x, "lat": p.y, "capacity": capacity, "notes": notes,
                })


def _copy(
    cur: psycopg.Cursor[Any], table: str, columns: list[str], rows: list[dict[str, Any]]
) -> None:
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([
                json.dumps(row[c]) if isinstance(row[c], dict) else row[c] for c in columns
            ])


def is_loaded(conn: psycopg.Connection[Any]) -> bool:
    """True when a district is already in the database."""
    return conn.execute("SELECT 1 FROM grids LIMIT 1").fetchone() is not None


def load_district(conn: psycopg.Connection[Any], district: District) -> None:
    """Write a generated district into an empty database, in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        if is_loaded(conn):
            raise RuntimeError("a district is already loaded in this database")
        _copy(cur, "grids", ["code", "level", "name", "parent_code", "geometry", "centroid_lon",
                             "centroid_lat"], [c.to_row() for c in district.cells])
        _copy(cur, "households", ["id", "community_code", "head_name", "phone", "address",
                                  "members", "elderly_alone", "birth_year", "lon", "lat"],
              district.households)
        _copy(cur, "devices", ["id", "kind", "household_id", "grid_code", "lon", "lat", "label",
                               "config"], district.devices)
        _copy(cur, "cameras", ["id", "grid_code", "label", "lon", "lat", "stream_url"],
              district.cameras)
        _copy(cur, "workers", ["id", "name", "phone", "cell_code"], district.workers)
        _copy(cur, "shifts", ["worker_id", "weekday", "starts", "ends"], district.shifts)
        _copy(cur, "key_sites", ["id", "kind", "name", "grid_code", "lon", "lat", "capacity",
                                 "notes"], district.key_sites)
        if district.needs is not None:
            load_needs(cur, district.needs)
        cur.execute(
            "INSERT INTO meta (key, value) VALUES ('district', %s)",
            (json.dumps({"seed": district.seed, "size": district.size.__dict__,
                         "residents": district.residents()}),),
        )
