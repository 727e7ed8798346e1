#!/usr/bin/env python3
"""Deterministic breadcrumb generator for benchmarks (stdlib only).

Scales the real TriMet samples in data/ (JSON array + CSVs) up to N records of NDJSON, one
compact JSON object per line with the samples' field names:

  EVENT_NO_TRIP, EVENT_NO_STOP, OPD_DATE ("13FEB2023:00:00:00"), VEHICLE_ID, METERS, ACT_TIME,
  GPS_LONGITUDE, GPS_LATITUDE, GPS_SATELLITES, GPS_HDOP

How a replica of the base traces (every distinct sample record, ~12.8k) differs from the samples:
  - service date: replicas are spread in order over --dates consecutive days (default 7 from
    --start-date), so the file reads like daily batches; ACT_TIME is shifted by up to ±30 min
  - vehicle ids: each replica of a day gets its own vehicles (3001, 3002, ...), the same set every
    day; trip and stop-event ids are moved into a fresh, non-overlapping 9-digit range
  - GPS: the real traces, each reading jittered by up to ±25 µdeg (~2-3 m); METERS gets a
    per-vehicle odometer offset; a few HDOP readings move by ±0.1
  - encoding: records from the CSV samples keep every value as a JSON string (missing = "") as a
    CSV-fed producer sends them; records from the JSON sample keep JSON numbers (missing = null)
Pure replication would inflate zstd/Parquet ratios 2-4x; the jitter keeps them realistic.
The output is a pure function of (--records, --seed, --dates, --start-date, the samples).

  scripts/gen_breadcrumbs.py --records 5000000 -o bench-out/breadcrumbs.ndjson
"""
import argparse
import csv
import datetime as dt
import glob
import json
import math
import os
import random
import sys
import time

FIELDS = ["EVENT_NO_TRIP", "EVENT_NO_STOP", "OPD_DATE", "VEHICLE_ID", "METERS", "ACT_TIME",
          "GPS_LONGITUDE", "GPS_LATITUDE", "GPS_SATELLITES", "GPS_HDOP"]
TRIP_BASE = 300_000_000   # generated trip ids start here
TRIP_STRIDE = 100_000     # id range of one (replica, source file); larger than any file's span
VEHICLE_BASE = 3001
JITTER_UDEG = 25
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

# Filled in by load() in the parent and (via fork or initializer) in the workers.
BASE = None


def _num(v):
    """A sample value as a number (int or float) or None."""
    if v is None:
        return None
    if isinstance(v, (int, float)):
        return v
    s = str(v).strip()
    if s == "" or s.lower() in ("null", "nan"):
        return None
    try:
        return int(s)
    except ValueError:
        return float(s)


def load(data_dir):
    """Distinct base records from every sample file, in file order."""
    files = sorted(glob.glob(os.path.join(data_dir, "*.json"))) + sorted(glob.glob(os.path.join(data_dir, "*.csv")))
    recs, seen = [], set()
    file_idx = 0
    for path in files:
        if path.endswith(".json"):
            with open(path) as f:
                rows = json.load(f)
            strings = False
        else:
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            strings = True
        if not rows or not isinstance(rows[0], dict) or "EVENT_NO_TRIP" not in rows[0] or "ACT_TIME" not in rows[0]:
            continue  # not a breadcrumb sample (e.g. stop events)
        added = []
        for r in rows:
            trip, veh, act = _num(r.get("EVENT_NO_TRIP")), _num(r.get("VEHICLE_ID")), _num(r.get("ACT_TIME"))
            if trip is None or veh is None or act is None:
                continue
            key = (int(veh), int(trip), int(act))
            if key in seen:  # e.g. the one-trip CSV is contained in the full-day CSV
                continue
            seen.add(key)
            added.append(r)
        if not added:
            continue
        trip_min = min(int(_num(r["EVENT_NO_TRIP"])) for r in added)
        for r in added:
            lat, lon = _num(r.get("GPS_LATITUDE")), _num(r.get("GPS_LONGITUDE"))
            stop = _num(r.get("EVENT_NO_STOP"))
            sat, hdop = r.get("GPS_SATELLITES"), r.get("GPS_HDOP")
            recs.append({
                "file": file_idx,
                "strings": strings,
                "vehicle": int(_num(r["VEHICLE_ID"])),
                "trip_rel": int(_num(r["EVENT_NO_TRIP"])) - trip_min,
                "stop_rel": None if stop is None else int(stop) - trip_min,
                "meters": None if _num(r.get("METERS")) is None else int(_num(r.get("METERS"))),
                "act": int(_num(r["ACT_TIME"])),
                "lat": None if lat is None else int(round(lat * 1e6)),
                "lon": None if lon is None else int(round(lon * 1e6)),
                # Satellites and HDOP are kept as the sample wrote them (12.0 / "12", 0.8 / "0.8").
                "sat": sat,
                "hdop": hdop,
            })
        span = max(r["trip_rel"] for r in recs if r["file"] == file_idx)
        stop_span = max((r["stop_rel"] for r in recs if r["file"] == file_idx and r["stop_rel"] is not None), default=0)
        if max(span, stop_span) >= TRIP_STRIDE:
            sys.exit(f"gen_breadcrumbs: {path}: trip ids span {span} >= {TRIP_STRIDE}")
        file_idx += 1
    if not recs:
        sys.exit(f"gen_breadcrumbs: no breadcrumb samples in {data_dir}")
    vehicles = sorted({r["vehicle"] for r in recs})
    vidx = {v: i for i, v in enumerate(vehicles)}
    for r in recs:
        r["vk"] = vidx[r["vehicle"]]
    return {"recs": recs, "files": file_idx, "vehicles": len(vehicles)}


def _json_value(v):
    if v is None:
        return "null"
    if isinstance(v, str):
        n = _num(v)
        return "null" if n is None else repr(float(n)) if isinstance(n, float) or "." in v else str(n)
    return repr(v) if isinstance(v, float) else str(v)


def _str_value(v):
    if v is None:
        return '""'
    return '"' + str(v).strip() + '"'


def _fmt_udeg(u):
    """Micro-degrees → the shortest decimal, as json.dumps would print the float."""
    return repr(u / 1e6)


def plan(n, args):
    b = len(BASE["recs"])
    replicas = max(1, math.ceil(n / b))
    start = dt.date.fromisoformat(args.start_date)
    return b, replicas, start


NUM_T = ('{"EVENT_NO_TRIP":%d,"EVENT_NO_STOP":%s,"OPD_DATE":"@OPD@","VEHICLE_ID":%d,"METERS":%s,"ACT_TIME":%d,'
         '"GPS_LONGITUDE":%r,"GPS_LATITUDE":%r,"GPS_SATELLITES":%s,"GPS_HDOP":%s}\n')
STR_T = ('{"EVENT_NO_TRIP":"%d","EVENT_NO_STOP":%s,"OPD_DATE":"@OPD@","VEHICLE_ID":"%d","METERS":%s,"ACT_TIME":"%d",'
         '"GPS_LONGITUDE":"%r","GPS_LATITUDE":"%r","GPS_SATELLITES":%s,"GPS_HDOP":%s}\n')


def _prepared():
    """Per base record: everything that does not change between replicas, pre-rendered."""
    if "prepared" in BASE:
        return BASE["prepared"]
    prep = []
    for x in BASE["recs"]:
        s = x["strings"]
        val = _str_value if s else _json_value
        hd = x["hdop"]
        if hd in (None, ""):
            hdu = hdd = val(hd)
        else:
            up, dn = round(float(hd) + 0.1, 1), round(float(hd) - 0.1, 1)
            hdu, hdd = val(repr(up) if s else up), val(repr(dn) if s and dn > 0 else (dn if dn > 0 else hd))
        # Missing coordinates, odometer or stop keep their missing marker (slow path, rare).
        fast = x["lat"] is not None and x["lon"] is not None and x["meters"] is not None and x["stop_rel"] is not None
        prep.append((s, x["file"], x["vk"], x["trip_rel"], x["stop_rel"], x["meters"], x["act"],
                     x["lat"], x["lon"], val(x["sat"]), val(hd), hdu, hdd, fast))
    BASE["prepared"] = prep
    return prep


def _slow(x, trip, stop, v, m, act, lat, lon, hd, opd):
    s = x[0]
    val = _str_value if s else _json_value
    lat = None if lat is None else lat / 1e6
    lon = None if lon is None else lon / 1e6
    if s:
        head = '{"EVENT_NO_TRIP":"%d","EVENT_NO_STOP":%s,"OPD_DATE":"%s","VEHICLE_ID":"%d","METERS":%s,"ACT_TIME":"%d",' % (
            trip, val(stop), opd, v, val(m), act)
        lat, lon = val(None if lat is None else repr(lat)), val(None if lon is None else repr(lon))
    else:
        head = '{"EVENT_NO_TRIP":%d,"EVENT_NO_STOP":%s,"OPD_DATE":"%s","VEHICLE_ID":%d,"METERS":%s,"ACT_TIME":%d,' % (
            trip, val(stop), opd, v, val(m), act)
        lat, lon = val(lat), val(lon)
    return head + '"GPS_LONGITUDE":%s,"GPS_LATITUDE":%s,"GPS_SATELLITES":%s,"GPS_HDOP":%s}\n' % (lon, lat, x[9], hd)


def replica(job):
    """NDJSON bytes of replica r (only its first `count` base records)."""
    r, count, replicas, dates, start_ord, seed = job
    recs, nfiles, nveh = _prepared(), BASE["files"], BASE["vehicles"]
    day = r * dates // replicas
    first_of_day = -(-day * replicas // dates)  # ceil
    slot = r - first_of_day                      # replica index within its day
    d = dt.date.fromordinal(start_ord + day)
    opd = f"{d.day:02d}{MONTHS[d.month - 1]}{d.year}:00:00:00"
    num_t, str_t = NUM_T.replace("@OPD@", opd), STR_T.replace("@OPD@", opd)
    rng = random.Random(seed * 1_000_003 + r)
    shift = rng.randrange(-1800, 1801)
    m_off = [rng.randrange(0, 5000) for _ in range(nveh)]
    veh = [VEHICLE_BASE + slot * nveh + k for k in range(nveh)]
    trip_off = [TRIP_BASE + (r * nfiles + f) * TRIP_STRIDE for f in range(nfiles)]
    # Per-record jitter from random bytes: latitude, longitude (±JITTER_UDEG), HDOP move (1/16).
    span = 2 * JITTER_UDEG + 1
    jl, jo, jh = rng.randbytes(count), rng.randbytes(count), rng.randbytes(count)
    out = []
    ap = out.append
    for x, bl, bo, bh in zip(recs[:count], jl, jo, jh):
        s, f, vk, trip_rel, stop_rel, m, act, lat, lon, sat, hd, hdu, hdd, fast = x
        to = trip_off[f]
        hd = hd if bh >= 16 else (hdu if bh & 1 else hdd)
        act = act + shift
        if act < 0:
            act = 0
        if fast:
            ap((str_t if s else num_t) % (trip_rel + to, '"%d"' % (stop_rel + to) if s else stop_rel + to,
                                          veh[vk], '"%d"' % (m + m_off[vk]) if s else m + m_off[vk], act,
                                          (lon + bo % span - JITTER_UDEG) / 1e6, (lat + bl % span - JITTER_UDEG) / 1e6, sat, hd))
        else:
            ap(_slow(x, trip_rel + to, None if stop_rel is None else stop_rel + to, veh[vk],
                     None if m is None else m + m_off[vk], act,
                     None if lat is None else lat + bl % span - JITTER_UDEG,
                     None if lon is None else lon + bo % span - JITTER_UDEG, hd, opd))
    return "".join(out).encode()


def _init(data_dir):
    global BASE
    if BASE is None:
        BASE = load(data_dir)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", "-n", type=int, default=5_000_000, help="records to write (default 5,000,000)")
    ap.add_argument("--out", "-o", default="-", help="output file (default stdout)")
    ap.add_argument("--data", default=os.path.join(here, "..", "data"), help="directory of the samples")
    ap.add_argument("--dates", type=int, default=7, help="service dates to spread over (default 7)")
    ap.add_argument("--start-date", default="2023-02-13", help="first service date (default 2023-02-13)")
    ap.add_argument("--seed", type=int, default=7, help="seed (default 7)")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    a = ap.parse_args()
    if a.records < 0 or a.dates < 1:
        ap.error("--records must be >= 0 and --dates >= 1")
    t0 = time.perf_counter()
    _init(a.data)
    b, replicas, start = plan(a.records, a)
    jobs = []
    left = a.records
    for r in range(replicas):
        c = min(b, left)
        if c <= 0:
            break
        jobs.append((r, c, replicas, a.dates, start.toordinal(), a.seed))
        left -= c
    out = sys.stdout.buffer if a.out == "-" else open(a.out + ".tmp", "wb")
    written = 0
    if a.jobs > 1 and len(jobs) > 1:
        import multiprocessing as mp
        ctx = mp.get_context("fork") if hasattr(os, "fork") else mp.get_context()
        with ctx.Pool(a.jobs, initializer=_init, initargs=(a.data,)) as pool:
            for chunk in pool.imap(replica, jobs, chunksize=1):
                out.write(chunk)
                written += len(chunk)
    else:
        for j in jobs:
            chunk = replica(j)
            out.write(chunk)
            written += len(chunk)
    if a.out != "-":
        out.close()
        os.replace(a.out + ".tmp", a.out)
    else:
        out.flush()
    secs = time.perf_counter() - t0
    n = a.records
    print(f"gen_breadcrumbs: {n} records ({len(BASE['recs'])} base records x {len(jobs)} replicas, "
          f"{a.dates} service dates from {start}), {written / 1e6:.1f} MB in {secs:.1f}s "
          f"({n / max(secs, 1e-9):,.0f} records/s)", file=sys.stderr)


if __name__ == "__main__":
    main()
