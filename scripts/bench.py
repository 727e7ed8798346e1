#!/usr/bin/env python3
"""Benchmark harness behind scripts/bench.sh (issue 7): etl against its peers, side by side.

  bench.py run --etl BIN --brokers B --records N --runs K --out DIR [--smoke] [--publish]
  bench.py report --out DIR [--publish]          BENCHMARKS.md + JSON from DIR/results.json
  bench.py peer KIND ARGS...                     one peer measurement (a child process, so that
                                                 /usr/bin/time sees only it)

Every measured command runs under `/usr/bin/time -v`: wall time, user+sys CPU seconds, peak RSS.
Needs the bench venv (duckdb, polars, pyarrow, confluent-kafka, pycryptodome, rsa, cryptography)
for `run` and the peers; `report` needs only the stdlib.
"""
import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEED_ARCHIVER_CANDIDATES = [
    os.path.join(ROOT, "..", "shared", "baselines", "seed_archive.py"),
    "/work/shared/baselines/seed_archive.py",
]
COLS = ["EVENT_NO_TRIP", "EVENT_NO_STOP", "OPD_DATE", "VEHICLE_ID", "METERS", "ACT_TIME",
        "GPS_LONGITUDE", "GPS_LATITUDE", "GPS_SATELLITES", "GPS_HDOP"]
TZ = "America/Los_Angeles"
# etl raw's default zlib level, read from src/raw.rs (DEFAULT_ZLIB_LEVEL), and the other level it is
# measured at; "zlib alone" runs at the default level (the "same level" comparison).
ETL_LEVEL = int(re.search(r"pub const DEFAULT_ZLIB_LEVEL: u32 = (\d+);", open(os.path.join(ROOT, "src", "raw.rs")).read()).group(1))
ALT_LEVEL = 6
ALT_KEY = f"etl_level{ALT_LEVEL}"


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Peers (run as child processes: `bench.py peer KIND ...`). Each prints one JSON line.
# --------------------------------------------------------------------------------------------

def peer_convert_duckdb(inp, out):
    import duckdb
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    cols = ", ".join(f"'{c}': 'VARCHAR'" for c in COLS)
    # Numbers arrive as JSON numbers or as strings ("" = missing): read as text, cast with TRY_CAST.
    con.execute(f"""
        COPY (
          SELECT TRY_CAST(EVENT_NO_TRIP AS BIGINT)                               AS trip_id,
                 TRY_CAST(EVENT_NO_STOP AS BIGINT)                               AS stop_event_id,
                 TRY_CAST(VEHICLE_ID AS BIGINT)                                  AS vehicle_id,
                 CAST(strptime(OPD_DATE, '%d%b%Y:%H:%M:%S') AS DATE)             AS service_date,
                 TRY_CAST(ACT_TIME AS INTEGER)                                   AS act_time,
                 timezone('{TZ}', strptime(OPD_DATE, '%d%b%Y:%H:%M:%S')
                                  + to_seconds(TRY_CAST(ACT_TIME AS BIGINT)))     AS event_time,
                 TRY_CAST(METERS AS BIGINT)                                      AS meters,
                 TRY_CAST(GPS_LATITUDE AS DOUBLE)                                AS latitude,
                 TRY_CAST(GPS_LONGITUDE AS DOUBLE)                               AS longitude,
                 CAST(TRY_CAST(GPS_SATELLITES AS DOUBLE) AS INTEGER)             AS satellites,
                 TRY_CAST(GPS_HDOP AS DOUBLE)                                    AS hdop
          FROM read_json('{inp}', format = 'newline_delimited', columns = {{{cols}}})
        ) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
    """)
    secs = time.perf_counter() - t0
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    return {"seconds": secs, "rows": rows, "output_bytes": os.path.getsize(out)}


def peer_convert_polars(inp, out):
    import polars as pl
    t0 = time.perf_counter()
    num = lambda c, t: pl.col(c).cast(pl.Float64 if t in (pl.Int32,) else t, strict=False)
    date = pl.col("OPD_DATE").str.to_date("%d%b%Y:%H:%M:%S", strict=False)
    act = pl.col("ACT_TIME").cast(pl.Int64, strict=False)
    lf = pl.scan_ndjson(inp, schema={c: pl.String for c in COLS}).select(
        num("EVENT_NO_TRIP", pl.Int64).alias("trip_id"),
        num("EVENT_NO_STOP", pl.Int64).alias("stop_event_id"),
        num("VEHICLE_ID", pl.Int64).alias("vehicle_id"),
        date.alias("service_date"),
        act.cast(pl.Int32).alias("act_time"),
        (date.cast(pl.Datetime("us")) + pl.duration(seconds=act))
        .dt.replace_time_zone(TZ, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC").alias("event_time"),
        num("METERS", pl.Int64).alias("meters"),
        num("GPS_LATITUDE", pl.Float64).alias("latitude"),
        num("GPS_LONGITUDE", pl.Float64).alias("longitude"),
        pl.col("GPS_SATELLITES").cast(pl.Float64, strict=False).cast(pl.Int32, strict=False).alias("satellites"),
        num("GPS_HDOP", pl.Float64).alias("hdop"),
    )
    lf.sink_parquet(out, compression="zstd")
    secs = time.perf_counter() - t0
    rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    return {"seconds": secs, "rows": rows, "output_bytes": os.path.getsize(out)}


def peer_convert_pyarrow(inp, out):
    """pyarrow's JSON reader cannot read a column whose values are numbers in some rows and
    strings in others, so it reads a numbers-only copy of the same records (see `normalize`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj
    import pyarrow.parquet as pq
    t0 = time.perf_counter()
    schema = pa.schema([("EVENT_NO_TRIP", pa.int64()), ("EVENT_NO_STOP", pa.int64()), ("OPD_DATE", pa.string()),
                        ("VEHICLE_ID", pa.int64()), ("METERS", pa.int64()), ("ACT_TIME", pa.int64()),
                        ("GPS_LONGITUDE", pa.float64()), ("GPS_LATITUDE", pa.float64()),
                        ("GPS_SATELLITES", pa.float64()), ("GPS_HDOP", pa.float64())])
    t = pj.read_json(inp, read_options=pj.ReadOptions(block_size=16 << 20),
                     parse_options=pj.ParseOptions(explicit_schema=schema))
    day = pc.strptime(t["OPD_DATE"], format="%d%b%Y:%H:%M:%S", unit="s")
    local = pc.add(day, pc.cast(t["ACT_TIME"], pa.duration("s")))
    event = pc.assume_timezone(local, timezone=TZ, ambiguous="earliest", nonexistent="earliest")
    res = pa.table({
        "trip_id": t["EVENT_NO_TRIP"],
        "stop_event_id": t["EVENT_NO_STOP"],
        "vehicle_id": t["VEHICLE_ID"],
        "service_date": pc.cast(day, pa.date32()),
        "act_time": pc.cast(t["ACT_TIME"], pa.int32()),
        "event_time": pc.cast(event, pa.timestamp("us", tz="UTC")),
        "meters": t["METERS"],
        "latitude": t["GPS_LATITUDE"],
        "longitude": t["GPS_LONGITUDE"],
        "satellites": pc.cast(t["GPS_SATELLITES"], pa.int32(), safe=False),
        "hdop": t["GPS_HDOP"],
    })
    pq.write_table(res, out, compression="zstd")
    secs = time.perf_counter() - t0
    return {"seconds": secs, "rows": res.num_rows, "output_bytes": os.path.getsize(out)}


def normalize_numbers(inp, out):
    """Same records, every number as a JSON number ("" → null): for pyarrow's reader.
    Specific to the generator's layout (OPD_DATE is the only string value, followed by a comma)."""
    t0 = time.perf_counter()
    with open(inp, "rb") as f, open(out + ".tmp", "wb") as o:
        while True:
            chunk = f.read(64 << 20)
            if not chunk:
                break
            chunk += f.readline()
            chunk = chunk.replace(b'""', b"null").replace(b'":"', b'":').replace(b'","', b',"').replace(b'"}', b"}")
            chunk = chunk.replace(b'"OPD_DATE":', b'"OPD_DATE":"').replace(b':00:00:00,', b':00:00:00",')
            o.write(chunk)
    os.replace(out + ".tmp", out)
    return time.perf_counter() - t0


def _zlib_chunk(job):
    import zlib
    path, off, size, level = job
    with open(path, "rb") as f:
        f.seek(off)
        data = f.read(size)
    return len(zlib.compress(data, level))


def peer_zlib(inp, level, procs, chunk):
    """zlib alone on all cores: independent `chunk`-byte pieces of the file compressed in parallel."""
    import multiprocessing as mp
    size = os.path.getsize(inp)
    jobs = [(inp, off, min(chunk, size - off), level) for off in range(0, size, chunk)]
    t0 = time.perf_counter()
    with mp.get_context("fork").Pool(procs) as pool:
        out = sum(pool.imap_unordered(_zlib_chunk, jobs))
    secs = time.perf_counter() - t0
    return {"seconds": secs, "input_bytes": size, "output_bytes": out, "MB_per_s": size / 1e6 / secs}


def peer_query_duckdb(glob, sql, out):
    t0 = time.perf_counter()
    import duckdb
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE VIEW breadcrumbs AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    t1 = time.perf_counter()
    cur = con.execute(sql)
    tbl = cur.to_arrow_table() if hasattr(cur, "to_arrow_table") else cur.fetch_arrow_table()  # Arrow: no per-value Python objects
    t2 = time.perf_counter()
    import pyarrow.csv as pcsv
    pcsv.write_csv(tbl, out)
    return {"seconds": t2 - t1, "setup_seconds": t1 - t0, "rows": tbl.num_rows}


def cmd_peer(argv):
    kind = argv[0]
    a = argv[1:]
    if kind == "convert-duckdb":
        r = peer_convert_duckdb(a[0], a[1])
    elif kind == "convert-polars":
        r = peer_convert_polars(a[0], a[1])
    elif kind == "convert-pyarrow":
        r = peer_convert_pyarrow(a[0], a[1])
    elif kind == "zlib":
        r = peer_zlib(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif kind == "query-duckdb":
        r = peer_query_duckdb(a[0], a[1], a[2])
    else:
        sys.exit(f"unknown peer {kind}")
    print(json.dumps(r))


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------

def measure(cmd, *, timeout=None, env=None, stdout_path=None, check=True):
    """Runs cmd under /usr/bin/time -v. Returns wall/cpu/rss and the command's stdout."""
    tf = os.path.join(WORK, f".time-{os.getpid()}")
    full = ["/usr/bin/time", "-v", "-o", tf] + [str(c) for c in cmd]
    t0 = time.perf_counter()
    p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout, env=env)
    wall = time.perf_counter() - t0
    txt = open(tf).read() if os.path.exists(tf) else ""
    def field(name, conv=float):
        m = re.search(rf"^\s*{re.escape(name)}:\s*(.+)$", txt, re.M)
        return conv(m.group(1).strip()) if m else None
    el = field("Elapsed (wall clock) time (h:mm:ss or m:ss)", str)
    if el:
        parts = [float(x) for x in el.split(":")]
        wall_time = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
        wall = wall_time if wall_time > 0 else wall
    user, sys_ = field("User time (seconds)") or 0.0, field("System time (seconds)") or 0.0
    rss = field("Maximum resident set size (kbytes)", int) or 0
    out = p.stdout.decode(errors="replace")
    if stdout_path:
        with open(stdout_path, "w") as f:
            f.write(out)
    res = {"wall_s": round(wall, 3), "cpu_s": round(user + sys_, 3), "user_s": user, "sys_s": sys_,
           "max_rss_mib": round(rss / 1024, 1), "exit": p.returncode}
    if check and p.returncode != 0:
        log(f"command failed ({p.returncode}): {' '.join(str(c) for c in cmd)}")
        sys.stderr.write(p.stderr.decode(errors="replace")[-4000:])
        sys.stderr.write(out[-2000:])
        raise SystemExit(1)
    res["stdout"] = out
    res["stderr"] = p.stderr.decode(errors="replace")
    return res


def last_json(text):
    """The last JSON document in text (a one-line object, or a pretty-printed one at the end)."""
    text = text.strip()
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                break
    i = text.find("{")
    while i >= 0:
        try:
            return json.loads(text[i:])
        except ValueError:
            i = text.find("{", i + 1)
    raise ValueError(f"no JSON in output: {text[-500:]}")


def strip(m):
    return {k: v for k, v in m.items() if k not in ("stdout", "stderr", "user_s", "sys_s")}


def stats(values):
    v = [x for x in values if x is not None]
    if not v:
        return None
    return {"min": min(v), "median": statistics.median(v), "max": max(v), "n": len(v)}


def du(path):
    total = 0
    for dp, _, fs in os.walk(path):
        for f in fs:
            total += os.path.getsize(os.path.join(dp, f))
    return total


def rm(path):
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

QUERIES = {
    "count_by_vehicle": """SELECT vehicle_id, count(*) AS breadcrumbs
FROM breadcrumbs GROUP BY vehicle_id ORDER BY vehicle_id""",
    "per_trip": """SELECT trip_id, count(*) AS breadcrumbs, max(meters) - min(meters) AS distance_m,
       max(act_time) - min(act_time) AS duration_s
FROM breadcrumbs GROUP BY trip_id ORDER BY trip_id""",
    "point_lookup": """SELECT trip_id, act_time, event_time, meters, latitude, longitude
FROM breadcrumbs WHERE vehicle_id = {vehicle} AND service_date = DATE '{date}' ORDER BY act_time, trip_id""",
    "avg_speed_lag": """SELECT vehicle_id, avg(speed_mps) AS avg_speed_mps, count(*) AS segments
FROM (
  SELECT vehicle_id,
         (meters - lag(meters) OVER w) / CAST(act_time - lag(act_time) OVER w AS DOUBLE) AS speed_mps
  FROM breadcrumbs
  WINDOW w AS (PARTITION BY service_date, vehicle_id, trip_id ORDER BY act_time)
) s
WHERE speed_mps IS NOT NULL AND speed_mps >= 0 AND speed_mps < 40
GROUP BY vehicle_id ORDER BY vehicle_id""",
}


def versions(etl, py):
    v = {}
    v["etl"] = subprocess.run([etl, "--version"], capture_output=True, text=True).stdout.strip().removeprefix("etl ")
    try:
        v["rustc"] = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip().removeprefix("rustc ")
    except OSError:
        pass
    import duckdb, polars, pyarrow  # noqa: E401
    v["duckdb"], v["polars"], v["pyarrow"] = duckdb.__version__, polars.__version__, pyarrow.__version__
    try:
        import confluent_kafka
        v["confluent_kafka"] = getattr(confluent_kafka, "__version__", None) or str(confluent_kafka.version()[0])
        v["librdkafka (seed archiver)"] = confluent_kafka.libversion()[0]
    except Exception:
        pass
    v["kafka"] = os.environ.get("KAFKA_VERSION", "4.1.1")
    v["python"] = platform.python_version()
    if shutil.which("pigz"):
        pv = subprocess.run(["pigz", "--version"], capture_output=True, text=True)
        v["pigz"] = (pv.stdout.strip() or pv.stderr.strip()).removeprefix("pigz ")
    import zlib
    v["zlib (python)"] = zlib.ZLIB_RUNTIME_VERSION
    return v


def machine():
    m = {"nproc": os.cpu_count(), "platform": platform.platform()}
    try:
        with open("/proc/meminfo") as f:
            kb = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1))
        m["ram_gib"] = round(kb / 1024 / 1024, 1)
    except Exception:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            mm = re.search(r"model name\s*:\s*(.+)", f.read())
        m["cpu"] = mm.group(1).strip() if mm else platform.processor()
    except Exception:
        pass
    return m


def file_sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:12]


def run(a):
    global WORK
    out = os.path.abspath(a.out)
    WORK = os.path.join(out, "work")
    os.makedirs(WORK, exist_ok=True)
    etl = os.path.abspath(a.etl)
    py = sys.executable
    n = a.records
    warm = 0 if a.smoke else 1
    runs = a.runs
    stamp = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    res = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "smoke": a.smoke,
           "records": n, "runs": runs, "warmup_runs": warm, "machine": machine(), "versions": versions(etl, py),
           "commands": {}, "raw": {}, "standard": {}, "query": {}, "scaling": {}}
    t_all = time.perf_counter()

    res["loadavg"] = {}

    def save():
        res["loadavg"][str(len(res["loadavg"]))] = [round(x, 2) for x in os.getloadavg()]
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(res, f, indent=1)

    # ---- keys, data ----
    keys = os.path.join(out, "keys")
    if not os.path.exists(os.path.join(keys, "etl-private.pem")):
        subprocess.run([etl, "keys", "generate", "--dir", keys], check=True, stdout=subprocess.DEVNULL)
    pub, priv = os.path.join(keys, "etl-public.pem"), os.path.join(keys, "etl-private.pem")
    gen = os.path.join(HERE, "gen_breadcrumbs.py")
    data_dir = os.path.join(out, "data")
    os.makedirs(data_dir, exist_ok=True)
    tag = f"{n}-{file_sha(gen)}"
    data = os.path.join(data_dir, f"breadcrumbs-{tag}.ndjson")
    if not os.path.exists(data):
        for old in os.listdir(data_dir):
            os.remove(os.path.join(data_dir, old))
        log(f"generating {n} records → {data}")
        g = measure([sys.executable, gen, "--records", n, "--out", data])
        res["generate"] = {**strip(g), "records_per_s": round(n / g["wall_s"])}
    res["data_bytes"] = os.path.getsize(data)
    res["commands"]["generate"] = f"scripts/gen_breadcrumbs.py --records {n} --out {os.path.relpath(data, out)}"
    norm = data[:-len(".ndjson")] + ".numbers.ndjson"
    if not os.path.exists(norm):
        res["normalize_s"] = round(normalize_numbers(data, norm), 3)

    # ---- produce ----
    marker = os.path.join(out, "topic.json")
    topic = None
    if os.path.exists(marker):
        m = json.load(open(marker))
        if m.get("tag") == tag and m.get("brokers") == a.brokers:
            listed = subprocess.run([os.path.join(HERE, "kafka.sh"), "topics", "--list"], capture_output=True, text=True).stdout.split()
            if m["topic"] in listed:
                topic = m["topic"]
                log(f"reusing topic {topic} ({n} records already produced)")
                res["produce"] = m.get("produce")
    if topic is None:
        topic = f"bench-{n}-{stamp}"
        log(f"producing {n} records to {topic} (6 partitions) with etl produce")
        p = measure([etl, "produce", "--brokers", a.brokers, "--topic", topic, "--create-partitions", 6, data], timeout=3600)
        res["produce"] = {**strip(p), "records_per_s": round(n / p["wall_s"]), "tool": "etl produce"}
        json.dump({"tag": tag, "brokers": a.brokers, "topic": topic, "produce": res["produce"]}, open(marker, "w"))
    res["topic"] = topic
    res["commands"]["produce"] = f"etl produce --brokers {a.brokers} --topic {topic} --create-partitions 6 DATA.ndjson"
    save()

    # ---- raw ----
    raw = res["raw"]
    raw_layer = os.path.join(WORK, "raw-layer")

    def etl_raw(lake, group, max_records=None, extra=()):
        rm(lake)
        cmd = [etl, "raw", "--brokers", a.brokers, "--topic", topic, "--lake", lake, "--public-key", pub,
               "--group-id", group, "--format", "json", *extra]
        if max_records:
            cmd += ["--max-records", max_records]
        m = measure(cmd, timeout=3600)
        rep = last_json(m["stdout"])
        r = {**strip(m), "records": rep["records"], "message_bytes": rep["message_bytes"],
             "plaintext_bytes": rep["plaintext_bytes"], "compressed_bytes": rep["compressed_bytes"],
             "output_bytes": rep["encrypted_bytes"], "duration_s": rep["duration_s"], "objects": rep["objects_written"],
             "partition_records": [p["records"] for p in rep["partitions"]]}
        return r

    # Every tool runs once per round, round after round (warm-up round first), instead of all of
    # one tool's runs back to back: on a shared machine speed drifts by tens of percent over
    # minutes, and interleaving puts the same drift into etl's runs and its peers'.
    # etl at its default level (libdeflate 5: still smaller output than the seed archiver's
    # zlib-6) and at level 6; the last default run's lake becomes the raw layer for `standard`.
    res["commands"]["raw_etl"] = (f"etl raw --brokers {a.brokers} --topic {topic} --lake FRESH_DIR --public-key keys/etl-public.pem "
                                  f"--group-id UNIQUE --format json")
    seed = next((p for p in SEED_ARCHIVER_CANDIDATES if os.path.exists(p)), None)
    if seed is None:
        sys.exit("bench: /work/shared/baselines/seed_archive.py not found")
    nproc = os.cpu_count() or 1
    chunk = 16 << 20

    def raw_etl(key, extra, i):
        label = " ".join(["etl raw", *extra])
        lake = os.path.join(WORK, f"raw-{key}")
        r = etl_raw(lake, f"bench-{key}-raw-{stamp}-{i}", extra=extra)
        if r["records"] != n:
            sys.exit(f"bench: {label} landed {r['records']} records, expected {n}")
        r["warmup"] = i < warm
        raw[key].append(r)
        log(f"  {label} run {i}: {r['duration_s']:.2f}s ({r['message_bytes'] / 1e6 / r['duration_s']:.1f} MB/s), "
            f"rss {r['max_rss_mib']} MiB, cpu {r['cpu_s']}s, out {r['output_bytes'] / 1e6:.1f} MB")
        if key == "etl" and i == warm + runs - 1:
            rm(raw_layer)
            os.rename(lake, raw_layer)
        else:
            rm(lake)

    def raw_seed(mode, i):
        d = os.path.join(WORK, f"seed-{mode}")
        rm(d)
        m = measure([py, seed, "--brokers", a.brokers, "--topic", topic, "--group", f"bench-seed-{mode}-{stamp}-{i}",
                     "--out", d, "--mode", mode, "--idle", a.idle], timeout=7200)
        rep = last_json(m["stdout"])
        if rep["records"] != n:
            sys.exit(f"bench: seed archiver ({mode}) read {rep['records']} records, expected {n}")
        r = {**strip(m), "records": rep["records"], "message_bytes": rep["input_bytes"], "output_bytes": rep["output_bytes"],
             "duration_s": rep["seconds"], "objects": rep["objects"], "warmup": i < warm}
        raw[f"seed_{mode}"].append(r)
        log(f"  seed {mode} run {i}: {r['duration_s']:.2f}s ({rep['MB_per_s']} MB/s), rss {r['max_rss_mib']} MiB")
        rm(d)

    def raw_zlib(i):
        # zlib alone on all cores at etl's default level, over the same NDJSON bytes.
        m = measure([py, __file__, "peer", "zlib", data, ETL_LEVEL, nproc, chunk])
        rep = last_json(m["stdout"])
        raw["zlib_python"].append({**strip(m), "duration_s": rep["seconds"], "message_bytes": rep["input_bytes"],
                                   "output_bytes": rep["output_bytes"], "warmup": i < warm})
        log(f"  zlib-{ETL_LEVEL} alone (python, {nproc} processes) run {i}: {rep['seconds']:.2f}s")
        if shutil.which("pigz"):
            zz = os.path.join(WORK, "pigz.zz")
            m = measure(["sh", "-c", f"pigz -{ETL_LEVEL} -p {nproc} --zlib -c '{data}' > '{zz}'"])
            raw["zlib_pigz"].append({**strip(m), "duration_s": m["wall_s"], "message_bytes": res["data_bytes"],
                                     "output_bytes": os.path.getsize(zz), "warmup": i < warm})
            os.remove(zz)

    for k in ["etl", ALT_KEY, "seed_fernet", "seed_chunked", "zlib_python", "zlib_pigz"]:  # table order
        raw[k] = []
    log(f"raw: etl raw, etl raw --zlib-level {ALT_LEVEL}, zlib-{ETL_LEVEL} alone, seed archiver fernet and chunked, "
        f"interleaved: {warm}+{runs} rounds")
    # Scaling sizes (fractions of N) run inside the same rounds as the N-record runs, so 1M, 2M
    # and 5M see the same machine; each size's last raw lake is the input of its standard runs.
    scaling = res["scaling"]

    def plan_scaling(counts):
        for size in sorted({max(len(counts), round(n * f)) for f in a.scale or []}):
            if size >= n:
                continue
            # --max-records is per partition and partitions differ in size: the smallest cap
            # that lands at least `size` records in total.
            lo, hi = 1, max(counts)
            while lo < hi:
                mid = (lo + hi) // 2
                if sum(min(c, mid) for c in counts) >= size:
                    hi = mid
                else:
                    lo = mid + 1
            scaling[str(size)] = {"raw": [], "standard": [], "max_records": lo}

    def raw_scaling(i):
        for size, sc in scaling.items():
            lake = os.path.join(WORK, f"scale-raw-{size}")
            r = etl_raw(lake, f"bench-etl-scale-{stamp}-{size}-{i}", max_records=sc["max_records"])
            r["warmup"] = i < warm
            sc["raw"].append(r)
            log(f"  etl raw --max-records {sc['max_records']} ({r['records']} records) run {i}: {r['duration_s']:.2f}s, "
                f"rss {r['max_rss_mib']} MiB")

    for i in range(warm + runs):
        raw_etl("etl", (), i)
        if i == 0:
            plan_scaling(raw["etl"][-1]["partition_records"])
        raw_scaling(i)
        raw_zlib(i)
        raw_etl(ALT_KEY, ("--zlib-level", str(ALT_LEVEL)), i)
        for mode in ["fernet", "chunked"]:
            raw_seed(mode, i)
        save()
    res["commands"][f"raw_{ALT_KEY}"] = res["commands"]["raw_etl"] + f" --zlib-level {ALT_LEVEL}"
    for mode in ["fernet", "chunked"]:
        res["commands"][f"raw_seed_{mode}"] = (f"python seed_archive.py --brokers {a.brokers} --topic {topic} --group UNIQUE "
                                               f"--out DIR --mode {mode} --idle {a.idle}")
    res["commands"]["zlib_python"] = f"bench.py peer zlib DATA.ndjson {ETL_LEVEL} {nproc} {chunk}  (zlib.compress of 16 MiB pieces in {nproc} processes)"
    res["commands"]["zlib_pigz"] = f"pigz -{ETL_LEVEL} -p {nproc} --zlib -c DATA.ndjson > OUT"
    save()

    # ---- standard ----
    std = res["standard"]
    for k in ["etl", "duckdb", "polars", "pyarrow"]:
        std[k] = []
    std_lake = os.path.join(WORK, "std-lake")

    def etl_standard(raw_dir, lake):
        rm(lake)
        os.makedirs(lake)
        shutil.copytree(os.path.join(raw_dir, "raw"), os.path.join(lake, "raw"), copy_function=os.link)
        m = measure([etl, "standard", "--lake", lake, "--private-key", priv, "--format", "json"], timeout=7200)
        rep = last_json(m["stdout"])
        return {**strip(m), "records": rep["records_in"], "rows": rep["rows_written"], "rejects": rep["rejects"],
                "output_bytes": rep["bytes_out"], "files": rep["files_written"], "duration_s": rep["duration_s"],
                "input_bytes": rep["bytes_in"]}

    def peer_convert(eng, i):
        src = norm if eng == "pyarrow" else data
        pq = os.path.join(WORK, f"peer-{eng}.parquet")
        if os.path.exists(pq):
            os.remove(pq)
        m = measure([py, __file__, "peer", f"convert-{eng}", src, pq], timeout=3600)
        rep = last_json(m["stdout"])
        if rep["rows"] != n:
            sys.exit(f"bench: {eng} wrote {rep['rows']} rows, expected {n}")
        std[eng].append({**strip(m), "duration_s": rep["seconds"], "rows": rep["rows"],
                         "output_bytes": rep["output_bytes"], "warmup": i < warm})
        log(f"  {eng} run {i}: {rep['seconds']:.2f}s (process {m['wall_s']:.2f}s), rss {m['max_rss_mib']} MiB, "
            f"out {rep['output_bytes'] / 1e6:.1f} MB")
        os.remove(pq)

    # Rounds, as for raw: etl, DuckDB, polars, pyarrow once each per round.
    log(f"standard: etl standard, duckdb, polars, pyarrow (NDJSON → Parquet), interleaved: {warm}+{runs} rounds")
    for i in range(warm + runs):
        r = etl_standard(raw_layer, std_lake)
        if r["records"] != n:
            sys.exit(f"bench: etl standard read {r['records']} records, expected {n}")
        r["warmup"] = i < warm
        std["etl"].append(r)
        log(f"  etl standard run {i}: {r['wall_s']:.2f}s, rss {r['max_rss_mib']} MiB, out {r['output_bytes'] / 1e6:.1f} MB, "
            f"{r['rows']} rows + {r['rejects']} rejects")
        for size, sc in scaling.items():
            s = etl_standard(os.path.join(WORK, f"scale-raw-{size}"), os.path.join(WORK, f"scale-std-{size}"))
            s["warmup"] = i < warm
            sc["standard"].append(s)
            log(f"  etl standard ({s['records']} records) run {i}: {s['wall_s']:.2f}s, rss {s['max_rss_mib']} MiB")
            rm(os.path.join(WORK, f"scale-std-{size}"))
        for eng in ["duckdb", "polars", "pyarrow"]:
            peer_convert(eng, i)
        save()
    res["commands"]["standard_etl"] = "etl standard --lake COPY_OF_RAW_LAYER --private-key keys/etl-private.pem --format json"
    for eng in ["duckdb", "polars", "pyarrow"]:
        res["commands"][f"standard_{eng}"] = f"bench.py peer convert-{eng} {'DATA.numbers.ndjson' if eng == 'pyarrow' else 'DATA.ndjson'} OUT.parquet"
    save()

    # ---- query (etl's standard layer, both engines) ----
    glob = os.path.join(std_lake, "standard", "breadcrumbs", "*", "*.parquet")
    import duckdb
    con = duckdb.connect()
    vehicle, date = con.execute(
        f"SELECT vehicle_id, service_date FROM read_parquet('{glob}', hive_partitioning = true) "
        f"GROUP BY ALL ORDER BY count(*) DESC, vehicle_id LIMIT 1").fetchone()
    con.close()
    res["query_params"] = {"vehicle": vehicle, "date": str(date)}
    q = res["query"]
    for name, tmpl in QUERIES.items():
        sql = tmpl.format(vehicle=vehicle, date=date)
        q[name] = {"sql": sql, "etl": [], "duckdb": []}
        log(f"query {name}: etl query vs duckdb x{warm}+{runs}")
        for i in range(warm + runs):
            eo = os.path.join(WORK, f"q-{name}-etl.csv")
            m = measure([etl, "query", "--lake", std_lake, "--format", "csv", "--out", eo, sql])
            rows = max(0, sum(1 for _ in open(eo)) - 1)
            q[name]["etl"].append({**strip(m), "duration_s": m["wall_s"], "rows": rows, "warmup": i < warm})
            do = os.path.join(WORK, f"q-{name}-duckdb.csv")
            m = measure([py, __file__, "peer", "query-duckdb", glob, sql, do])
            rep = last_json(m["stdout"])
            q[name]["duckdb"].append({**strip(m), "duration_s": rep["seconds"], "process_s": m["wall_s"], "rows": rep["rows"],
                                      "warmup": i < warm})
            if rows != rep["rows"]:
                sys.exit(f"bench: query {name}: etl returned {rows} rows, duckdb {rep['rows']}")
        log(f"  etl {stats([r['duration_s'] for r in q[name]['etl'] if not r['warmup']])['median']:.3f}s, duckdb "
            f"{stats([r['duration_s'] for r in q[name]['duckdb'] if not r['warmup']])['median']:.3f}s (query only)")
    res["commands"]["query_etl"] = "etl query --lake STD_LAKE --format csv --out FILE 'SQL'"
    res["commands"]["query_duckdb"] = ("duckdb (Python): CREATE VIEW breadcrumbs AS SELECT * FROM read_parquet("
                                       "'STD_LAKE/standard/breadcrumbs/*/*.parquet', hive_partitioning = true); then the SQL, fetchall()")
    save()

    for size in scaling:
        rm(os.path.join(WORK, f"scale-raw-{size}"))
    save()

    res["total_s"] = round(time.perf_counter() - t_all, 1)
    res["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    save()
    if a.cleanup_topic:
        subprocess.run([os.path.join(HERE, "kafka.sh"), "topics", "--delete", "--topic", topic], capture_output=True)
        os.remove(marker)
    if not a.keep_work:
        rm(WORK)
    report(out, res, publish=a.publish)


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def med(rs, key="duration_s"):
    s = stats([r[key] for r in rs if not r.get("warmup")])
    return s


def fmt_s(s, digits=2, unit=""):
    if not s:
        return "–"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}–{f.format(s['max'])})"


def summarize(res):
    """Medians, rates and ratios from the raw measurements (also stored in the JSON)."""
    S = {"raw": {}, "standard": {}, "query": {}, "scaling": {}, "targets": []}
    raw = res["raw"]
    value_bytes = None
    for k in ("seed_fernet", "seed_chunked"):
        if raw.get(k):
            value_bytes = raw[k][0]["message_bytes"]
    for k, rs in raw.items():
        if not rs:
            continue
        nb = value_bytes if (value_bytes and k in ("etl", ALT_KEY, "seed_fernet", "seed_chunked")) else rs[0]["message_bytes"]
        d = med(rs)
        rates = [nb / 1e6 / r["duration_s"] for r in rs if not r.get("warmup")]
        S["raw"][k] = {
            "seconds": d, "wall_s": med(rs, "wall_s"), "MB_per_s": stats(rates),
            "records_per_s": stats([res["records"] / r["duration_s"] for r in rs if not r.get("warmup")]) if k.startswith(("etl", "seed")) else None,
            "output_bytes": med(rs, "output_bytes"), "max_rss_mib": med(rs, "max_rss_mib"), "cpu_s": med(rs, "cpu_s"),
            "bytes_counted": nb,
        }
    std = res["standard"]
    for k, rs in std.items():
        S["standard"][k] = {"seconds": med(rs), "wall_s": med(rs, "wall_s"), "max_rss_mib": med(rs, "max_rss_mib"),
                            "cpu_s": med(rs, "cpu_s"), "output_bytes": med(rs, "output_bytes")}
    for name, q in res["query"].items():
        S["query"][name] = {"etl_s": med(q["etl"]), "etl_rss_mib": med(q["etl"], "max_rss_mib"),
                            "duckdb_query_s": med(q["duckdb"]), "duckdb_process_s": med(q["duckdb"], "process_s"),
                            "rows": q["etl"][-1]["rows"]}
    for size, sc in res.get("scaling", {}).items():
        S["scaling"][size] = {"raw_s": med(sc["raw"]), "raw_wall_s": med(sc["raw"], "wall_s"), "raw_rss_mib": med(sc["raw"], "max_rss_mib"),
                              "standard_s": med(sc["standard"], "wall_s"), "standard_rss_mib": med(sc["standard"], "max_rss_mib"),
                              "records": sc["raw"][0]["records"]}
    if S["raw"].get("etl") and S["standard"].get("etl"):
        S["scaling"][str(res["records"])] = {
            "raw_s": S["raw"]["etl"]["seconds"], "raw_wall_s": S["raw"]["etl"]["wall_s"], "raw_rss_mib": S["raw"]["etl"]["max_rss_mib"],
            "standard_s": S["standard"]["etl"]["wall_s"], "standard_rss_mib": S["standard"]["etl"]["max_rss_mib"],
            "records": res["records"]}

    # ---- targets ----
    T = S["targets"]
    def ratio(a, b):
        return a / b if a is not None and b else None
    def add(stage, what, value, target, ok, note=""):
        T.append({"stage": stage, "target": what, "value": value, "goal": target, "met": bool(ok) if ok is not None else None, "note": note})
    r = S["raw"]
    def against_seed(key):
        """(seed mode, goal, MB/s ratio, output-size ratio) of etl run `key` against each seed mode."""
        for k, goal in (("seed_fernet", 10), ("seed_chunked", 20)):
            if r.get(k):
                yield (k[5:], goal, ratio(r[key]["MB_per_s"]["median"], r[k]["MB_per_s"]["median"]),
                       ratio(r[key]["output_bytes"]["median"], r[k]["output_bytes"]["median"]))
    if r.get("etl"):
        e = r["etl"]["MB_per_s"]["median"]
        for mode, goal, x, size in against_seed("etl"):
            add("raw", f"MB/s ≥ {goal}× seed archiver ({mode})", f"{x:.1f}× (output {size:.2f}× the seed's)", f"≥ {goal}×", x >= goal)
        zl = [r[k]["MB_per_s"]["median"] for k in ("zlib_python", "zlib_pigz") if r.get(k)]
        if zl:
            x = ratio(e, max(zl))
            add("raw", f"MB/s ≥ 80% of zlib-{ETL_LEVEL} alone on all cores (best of python/pigz)", f"{x * 100:.0f}%", "≥ 80%", x >= 0.8)
        rss = r["etl"]["max_rss_mib"]["max"]
        add("raw", "peak RSS ≤ 256 MiB", f"{rss:.0f} MiB", "≤ 256 MiB", rss <= 256)
    if r.get(ALT_KEY):
        for mode, _, x, size in against_seed(ALT_KEY):
            add("raw", f"for comparison, `--zlib-level {ALT_LEVEL}`: MB/s against the seed archiver ({mode})", f"{x:.1f}× (output {size:.2f}× the seed's)", "–", None)
    s = S["standard"]
    if s.get("etl") and s.get("duckdb"):
        x = ratio(s["etl"]["wall_s"]["median"], s["duckdb"]["wall_s"]["median"])
        add("standard", "time (etl process, from the encrypted raw layer) ≤ DuckDB process time (NDJSON → Parquet)", f"{x:.2f}×", "≤ 1.0×", x <= 1.0)
        x2 = ratio(s["etl"]["wall_s"]["median"], s["duckdb"]["seconds"]["median"])
        add("standard", "time (etl process) ≤ DuckDB conversion time (in-process, no Python start)", f"{x2:.2f}×", "≤ 1.0×", x2 <= 1.0)
        x = ratio(s["etl"]["output_bytes"]["median"], s["duckdb"]["output_bytes"]["median"])
        add("standard", "output ≤ 1.2× DuckDB's file size", f"{x:.2f}×", "≤ 1.2×", x <= 1.2)
        rss = s["etl"]["max_rss_mib"]["max"]
        add("standard", "peak RSS ≤ 512 MiB", f"{rss:.0f} MiB", "≤ 512 MiB", rss <= 512)
    for name, qq in S["query"].items():
        goal = 1.0 if name == "point_lookup" else 1.5
        x = ratio(qq["etl_s"]["median"], qq["duckdb_query_s"]["median"])
        xp = ratio(qq["etl_s"]["median"], qq["duckdb_process_s"]["median"])
        add("query", f"{name}: etl (process) ≤ {goal}× DuckDB (query only)", f"{x:.2f}×", f"≤ {goal}×", x <= goal,
            f"vs DuckDB process time: {xp:.2f}×")
    sc = S["scaling"]
    sizes = sorted(sc, key=int)
    if len(sizes) >= 2:
        lo, hi = sizes[0], sizes[-1]
        f = int(hi) / int(lo)
        for k, label in (("raw_s", "raw"), ("standard_s", "standard")):
            x = ratio(sc[hi][k]["median"], sc[lo][k]["median"])
            add("scaling", f"{label}: {f:.0f}× the records costs ≤ {f * 1.1:.1f}× the time", f"{x:.2f}×", f"≤ {f * 1.1:.1f}×", x <= f * 1.1)
        for k, label in (("raw_rss_mib", "raw"), ("standard_rss_mib", "standard")):
            x = ratio(sc[hi][k]["median"], sc[lo][k]["median"])
            add("scaling", f"{label}: peak RSS flat from {lo} to {hi} records (≤ 1.25×)", f"{x:.2f}× ({sc[lo][k]['median']:.0f} → {sc[hi][k]['median']:.0f} MiB)",
                "≤ 1.25×", x <= 1.25)
    return S


def report(out, res=None, publish=False):
    if res is None:
        res = json.load(open(os.path.join(out, "results.json")))
    S = summarize(res)
    res_out = {k: v for k, v in res.items()}
    res_out["summary"] = S
    for name in res_out.get("query", {}):
        pass
    md = render(res, S)
    with open(os.path.join(out, "BENCHMARKS.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "latest.json"), "w") as f:
        json.dump(res_out, f, indent=1, sort_keys=False)
    log(f"report: {os.path.join(out, 'BENCHMARKS.md')}, {os.path.join(out, 'latest.json')}")
    if publish:
        os.makedirs(os.path.join(ROOT, "bench-results"), exist_ok=True)
        shutil.copy(os.path.join(out, "latest.json"), os.path.join(ROOT, "bench-results", "latest.json"))
        shutil.copy(os.path.join(out, "BENCHMARKS.md"), os.path.join(ROOT, "BENCHMARKS.md"))
        log("published BENCHMARKS.md and bench-results/latest.json")
    failed = [t for t in S["targets"] if t["met"] is False]
    goals = [t for t in S["targets"] if t["met"] is not None]
    print(f"bench: {len(goals) - len(failed)} of {len(goals)} targets met", file=sys.stderr)
    for t in failed:
        print(f"bench:   missed [{t['stage']}] {t['target']}: {t['value']} (goal {t['goal']})", file=sys.stderr)


def mb(b):
    return f"{b / 1e6:,.1f} MB" if b is not None else "–"


def render(res, S):
    m, v = res["machine"], res["versions"]
    n = res["records"]
    L = []
    L.append("# Benchmarks\n")
    L.append(f"Generated by `scripts/bench.sh` ({'smoke mode: tiny sizes, figures meaningless' if res['smoke'] else 'full run'}) "
             f"on {res['started_at']}; {n:,} records ({res['data_bytes'] / 1e9:.2f} GB NDJSON), "
             f"{res['warmup_runs']} warm-up + {res['runs']} measured runs per figure: **median (min–max)**. "
             f"Raw figures: `bench-results/latest.json`. Total time {res.get('total_s', 0) / 60:.0f} min.\n")
    notes = os.path.join(ROOT, "bench-results", "notes.md")
    if not res["smoke"] and os.path.exists(notes):
        L.append(open(notes).read().rstrip() + "\n")
    L.append("## Machine and versions\n")
    L.append(f"- {m.get('nproc')} CPUs ({m.get('cpu', '?')}), {m.get('ram_gib', '?')} GiB RAM, {m.get('platform')}")
    L.append("- " + ", ".join(f"{k} {val}" for k, val in v.items()))
    la = list(res.get("loadavg", {}).values())
    if la:
        L.append(f"- 1-minute load average when each stage ended: {', '.join(str(x[0]) for x in la)} "
                 f"(2.0 = both cores busy; anything else running on the machine shows here)")
    L.append(f"- Kafka: single KRaft node from `scripts/kafka.sh` on 127.0.0.1, topic `{res['topic']}` with 6 partitions, "
             f"produced with `etl produce` ({res['produce']['wall_s']:.0f}s, {res['produce'].get('records_per_s', 0):,} records/s)\n"
             if res.get("produce") else "")
    L.append("## Targets\n")
    L.append("| stage | target | measured | goal | met |")
    L.append("|---|---|---|---|---|")
    for t in S["targets"]:
        L.append(f"| {t['stage']} | {t['target']} | {t['value']}{(' — ' + t['note']) if t['note'] else ''} | {t['goal']} | "
                 f"{'–' if t['met'] is None else 'yes' if t['met'] else '**NO**'} |")
    L.append("")

    r = S["raw"]
    L.append("## Raw: Kafka → compressed, encrypted objects\n")
    L.append("MB/s are message-value bytes (the same count for every tool) divided by the tool's own run time: "
             "`etl raw`'s report `duration_s` (connect, plan, read, seal, write, commit), the seed archiver's "
             "first-message-to-last-write time (its own definition: consumer start-up and idle wait at the end excluded), "
             "zlib's whole compression. Process wall time, CPU (user+sys) and peak RSS come from `/usr/bin/time -v`.\n")
    L.append("| tool | MB/s | records/s | run time s | process wall s | CPU s | peak RSS MiB | output | etl ÷ tool (MB/s) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    names = {"etl": f"`etl raw` (zlib-{ETL_LEVEL} via libdeflate + AES-256-GCM, RSA-OAEP key wrap)", ALT_KEY: f"`etl raw --zlib-level {ALT_LEVEL}`",
             "seed_fernet": "seed archiver, fernet (zlib-6)", "seed_chunked": "seed archiver, chunked RSA-4096 (zlib-6)",
             "zlib_python": f"zlib-{ETL_LEVEL} alone, python, all cores", "zlib_pigz": f"zlib-{ETL_LEVEL} alone, `pigz -p N --zlib`"}
    e = r.get("etl", {}).get("MB_per_s", {}).get("median")
    for k, x in r.items():
        ratio = f"{e / x['MB_per_s']['median']:.2f}×" if e and k != "etl" else ""
        rps = fmt_s(x["records_per_s"], 0) if x.get("records_per_s") else "–"
        L.append(f"| {names.get(k, k)} | {fmt_s(x['MB_per_s'], 1)} | {rps} | {fmt_s(x['seconds'])} | {fmt_s(x['wall_s'])} | "
                 f"{fmt_s(x['cpu_s'], 1)} | {fmt_s(x['max_rss_mib'], 0)} | {mb(x['output_bytes']['median'])} | {ratio} |")
    if res["raw"].get("etl"):
        last = [x for x in res["raw"]["etl"] if not x.get("warmup")][-1]
        L.append(f"\n`etl raw` frames every message (a short text header line per message, offsets and timestamps as differences), so it compresses "
                 f"{last['plaintext_bytes'] / 1e6:,.0f} MB of plaintext for {last['message_bytes'] / 1e6:,.0f} MB of messages "
                 f"(ratio {last['plaintext_bytes'] / max(last['compressed_bytes'], 1):.1f}); zlib alone compresses only the NDJSON.\n")

    s = S["standard"]
    L.append("## Standard: typed Parquet\n")
    L.append("`etl standard` starts from the encrypted raw layer (decrypt, inflate, parse, validate, dedupe, sort, lineage "
             "columns, zstd-3 Parquet per service date); the peers start from the plain NDJSON file and write one zstd Parquet "
             "file with the same typed columns (ids BIGINT, service_date DATE, act_time INT, event_time TIMESTAMPTZ in "
             "America/Los_Angeles → UTC, meters, latitude, longitude, satellites, hdop), no validation. pyarrow's JSON reader "
             "cannot read columns whose values are numbers in some rows and strings in others, so it reads a numbers-only copy "
             f"of the same records (made once, not timed{', ' + format(res['normalize_s'], '.1f') + 's' if res.get('normalize_s') else ''}).\n")
    L.append("| tool | process wall s | in-process s | CPU s | peak RSS MiB | output | etl ÷ tool (wall) |")
    L.append("|---|---|---|---|---|---|---|")
    ew = s.get("etl", {}).get("wall_s", {}).get("median")
    for k, x in s.items():
        ratio = f"{ew / x['wall_s']['median']:.2f}×" if ew and k != "etl" else ""
        L.append(f"| {'`etl standard`' if k == 'etl' else k} | {fmt_s(x['wall_s'])} | {fmt_s(x['seconds'])} | {fmt_s(x['cpu_s'], 1)} | "
                 f"{fmt_s(x['max_rss_mib'], 0)} | {mb(x['output_bytes']['median'])} | {ratio} |")
    if res["standard"].get("etl"):
        last = res["standard"]["etl"][-1]
        L.append(f"\n`etl standard`: {last['rows']:,} rows + {last['rejects']:,} rejects in {last['files']} files; its files "
                 f"also hold lineage and quality columns (kafka topic/partition/offset/timestamp, raw_key, quality_flags, "
                 f"encoding, the older feed's four columns) that the peers' files do not.\n")

    L.append("## Query: the same SQL on the same Parquet (etl's standard layer)\n")
    qp = res.get("query_params", {})
    L.append(f"`etl query` is timed as a whole process (start, list the lake, infer the schema, plan, run, write CSV); "
             f"DuckDB (Python) over `read_parquet(..., hive_partitioning = true)` is timed for the query alone "
             f"(execute + fetchall) and as a whole process. Point lookup: vehicle {qp.get('vehicle')} on {qp.get('date')}.\n")
    L.append("| query | rows | etl s (process) | DuckDB s (query) | DuckDB s (process) | etl ÷ DuckDB query | etl ÷ DuckDB process | etl peak RSS MiB |")
    L.append("|---|---|---|---|---|---|---|---|")
    for name, x in S["query"].items():
        L.append(f"| {name} | {x['rows']:,} | {fmt_s(x['etl_s'], 3)} | {fmt_s(x['duckdb_query_s'], 3)} | {fmt_s(x['duckdb_process_s'], 3)} | "
                 f"{x['etl_s']['median'] / x['duckdb_query_s']['median']:.2f}× | {x['etl_s']['median'] / x['duckdb_process_s']['median']:.2f}× | "
                 f"{fmt_s(x['etl_rss_mib'], 0)} |")
    L.append("")
    L.append("<details><summary>SQL</summary>\n")
    for name, q in res["query"].items():
        L.append(f"`{name}`:\n```sql\n{q['sql']}\n```")
    L.append("</details>\n")

    L.append("## Scaling\n")
    L.append("Smaller sizes use `etl raw --max-records M` on the same topic (M per partition, the smallest that lands the size; "
             "partitions differ in size), then `etl standard` on that raw layer. They run inside the same rounds as the "
             f"{res['records']:,}-record runs (raw sizes right after etl's full raw run, standard sizes right after its full "
             "standard run), so every size is measured at the same moments of the machine.\n")
    L.append("| records | raw s (report) | raw process s | raw peak RSS MiB | standard process s | standard peak RSS MiB |")
    L.append("|---|---|---|---|---|---|")
    for size in sorted(S["scaling"], key=int):
        x = S["scaling"][size]
        L.append(f"| {x['records']:,} | {fmt_s(x['raw_s'])} | {fmt_s(x['raw_wall_s'])} | {fmt_s(x['raw_rss_mib'], 0)} | "
                 f"{fmt_s(x['standard_s'])} | {fmt_s(x['standard_rss_mib'], 0)} |")
    L.append("")
    L.append("## Commands\n")
    L.append("```sh")
    L.append(f"scripts/bench.sh --records {n} --runs {res['runs']}{' --smoke' if res['smoke'] else ''}")
    for k, c in res["commands"].items():
        L.append(f"# {k}\n{c}")
    L.append("```")
    return "\n".join(L) + "\n"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "peer":
        return cmd_peer(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--etl", required=True)
    r.add_argument("--brokers", default="127.0.0.1:9092")
    r.add_argument("--records", type=int, default=5_000_000)
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--out", default="bench-out")
    r.add_argument("--smoke", action="store_true")
    r.add_argument("--idle", type=float, default=5.0, help="seed archiver --idle seconds")
    r.add_argument("--scale", type=float, nargs="*", default=[0.2, 0.4], help="scaling sizes as fractions of --records")
    r.add_argument("--publish", action="store_true", help="copy BENCHMARKS.md and bench-results/latest.json into the repo")
    r.add_argument("--keep-work", action="store_true")
    r.add_argument("--cleanup-topic", action="store_true")
    p = sub.add_parser("report")
    p.add_argument("--out", default="bench-out")
    p.add_argument("--publish", action="store_true")
    a = ap.parse_args()
    if a.cmd == "run":
        run(a)
    else:
        report(os.path.abspath(a.out), publish=a.publish)


WORK = "/tmp"
if __name__ == "__main__":
    main()
