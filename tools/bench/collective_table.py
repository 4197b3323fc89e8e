#!/usr/bin/env python3
"""earl's TCP ring collectives beside Open MPI, one table per op and rank count.

    collective_table.py --tools bin/tools --launcher bin/launcher --mpi out/bench/mpi_collectives \
        --out out/bench/collective [--ranks 2,4] [--ops allreduce,reduce_scatter,allgather] \
        [--min-bytes 1K] [--max-bytes 64M] [--iters 20] [--warmup 5]

For each rank count and op, four runs back to back on the same sizes:
  earl      `launcher run --nproc N -- tools bench collective --check` (the launcher gives every rank
            RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, EARL_JOB_TOKEN and GOMAXPROCS = CPUs / N);
            without a launcher that has `run`, the script starts the ranks itself with the same
            variables
  earl-tcp  the same with EARL_COLLECTIVE_TRANSPORT=tcp: TCP loopback, the path between hosts
  mpi       `mpirun --allow-run-as-root --oversubscribe -np N mpi_collectives --check`
  mpi+env   the same with MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ raised (glibc returning
            large buffers to the kernel after each call costs Open MPI its large-message speed)
Both programs print nccl-tests lines (op bytes count time_us algbw_GBps busbw_GBps #wrong) and
check every element. The table shows bus bandwidth in GB/s and earl / best-of-the-two-MPI-runs.
With --repeat R the four run R times, interleaved, and each cell is the best of R (other load on a
shared machine only slows a run down).
Raw outputs and the tables (table.md) go to --out. Exit status 1 if any run reports a wrong element or fails.
"""
import argparse
import os
import secrets
import socket
import subprocess
import sys

MALLOC_ENV = ["-x", "MALLOC_MMAP_THRESHOLD_=2147483647", "-x", "MALLOC_TRIM_THRESHOLD_=4294967296"]


def parse(text):
    """{bytes: (time_us, busbw, wrong)} from nccl-tests-style lines (launcher prefixes allowed)."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("[rank "):
            line = line.split("]", 1)[1]
        f = line.split()
        if len(f) != 7 or f[0].startswith("#"):
            continue
        try:
            rows[int(f[1])] = (float(f[3]), float(f[5]), f[6])
        except ValueError:
            continue
    return rows


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def has_launcher_run(launcher):
    if not launcher or not os.path.exists(launcher):
        return False
    r = subprocess.run([launcher, "run", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def run_earl(a, n, op, sizes, transport):
    cmd = [a.tools, "bench", "collective", "--op", op] + sizes + ["--check"]
    base = dict(os.environ, EARL_COLLECTIVE_TRANSPORT=transport)
    if a.use_launcher:
        r = subprocess.run([a.launcher, "run", "--nproc", str(n), "--"] + cmd, capture_output=True, text=True, env=base)
        return r.returncode, r.stdout + r.stderr
    port, token = free_port(), secrets.token_hex(16)
    procs = []
    for rank in range(n):
        env = dict(base, RANK=str(rank), WORLD_SIZE=str(n), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(n),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), EARL_JOB_TOKEN=token)
        env.setdefault("GOMAXPROCS", str(max(1, (os.cpu_count() or 1) // n)))
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate()[0] for p in procs]
    code = max(p.returncode for p in procs)
    return code, outs[0] + "".join(outs[1:])


def run_mpi(a, n, op, sizes, extra):
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(n)] + extra + [a.mpi, "--op", op] + sizes + ["--check"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def fmt_bytes(b):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if b >= div and b % div == 0:
            return f"{b // div} {unit}"
    return f"{b} B"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tools", required=True)
    p.add_argument("--launcher", default="")
    p.add_argument("--mpi", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--ranks", default="2,4")
    p.add_argument("--ops", default="allreduce,reduce_scatter,allgather")
    p.add_argument("--min-bytes", default="1K")
    p.add_argument("--max-bytes", default="64M")
    p.add_argument("--iters", default="20")
    p.add_argument("--warmup", default="5")
    p.add_argument("--repeat", type=int, default=1, help="runs of each program, interleaved; the best per size is shown")
    a = p.parse_args()
    a.use_launcher = has_launcher_run(a.launcher)
    os.makedirs(a.out, exist_ok=True)
    table = open(os.path.join(a.out, "table.md"), "w")

    def out(line=""):
        print(line)
        table.write(line + "\n")
        table.flush()

    sizes = ["--min-bytes", a.min_bytes, "--max-bytes", a.max_bytes, "--iters", a.iters, "--warmup", a.warmup]
    how = "launcher run" if a.use_launcher else "ranks started by this script"
    out(f"# bus bandwidth in GB/s on one host ({os.cpu_count()} CPUs), best of {a.repeat} interleaved runs each; "
        f"warmup {a.warmup}, iters {a.iters}; every element checked.")
    out(f"# earl: {how}, GOMAXPROCS = CPUs / ranks unless set; Unix sockets + shared memory between local ranks "
        f"(EARL_COLLECTIVE_TRANSPORT=auto); earl TCP: the same over TCP loopback (=tcp, the path between hosts).")
    out("# MPI: mpirun --oversubscribe (Open MPI's shared memory, vader); MPI+env: with glibc's mmap/trim thresholds raised.")
    bad = False
    summary = []
    for n in [int(x) for x in a.ranks.split(",")]:
        for op in a.ops.split(","):
            runs = {"earl": {}, "earl-tcp": {}, "mpi": {}, "mpi+env": {}}
            # Interleaved repeats, best per size: other load on a shared
            # machine only ever slows a run down, and it hits all three alike.
            for rep in range(a.repeat):
                for name, fn in (("earl", lambda: run_earl(a, n, op, sizes, "auto")),
                                 ("earl-tcp", lambda: run_earl(a, n, op, sizes, "tcp")),
                                 ("mpi", lambda: run_mpi(a, n, op, sizes, [])),
                                 ("mpi+env", lambda: run_mpi(a, n, op, sizes, MALLOC_ENV))):
                    code, text = fn()
                    with open(os.path.join(a.out, f"{op}-{n}-{name}-{rep}.txt"), "w") as f:
                        f.write(text)
                    if code != 0:
                        print(f"{name} {op} at {n} ranks failed (status {code}):\n{text}", file=sys.stderr)
                        bad = True
                    for b, (t, bw, wrong) in parse(text).items():
                        prev = runs[name].get(b)
                        # Keep the fastest run, and any run's wrong elements.
                        if prev and prev[2] != "0":
                            wrong = prev[2]
                        if prev and prev[1] >= bw:
                            t, bw = prev[0], prev[1]
                        runs[name][b] = (t, bw, wrong)
            out(f"\n## {op}, {n} ranks\n")
            out("| bytes | earl | earl TCP | MPI | MPI+env | earl / best MPI | #wrong earl/TCP/MPI/MPI+env |")
            out("|---:|---:|---:|---:|---:|---:|---:|")
            for b in sorted(runs["earl"]):
                e, et = runs["earl"][b], runs["earl-tcp"].get(b)
                m, me = runs["mpi"].get(b), runs["mpi+env"].get(b)
                best = max(x[1] for x in (m, me) if x) if (m or me) else 0
                ratio = f"{e[1] / best:.2f}" if best > 0 else "–"
                wrong = [e[2]] + [x[2] if x else "–" for x in (et, m, me)]
                if any(w not in ("0", "–") for w in wrong):
                    bad = True
                def cell(x):
                    return f"{x[1]:.3f}" if x else "–"
                out(f"| {fmt_bytes(b)} | {e[1]:.3f} | {cell(et)} | {cell(m)} | {cell(me)} | {ratio} | {'/'.join(wrong)} |")
                if b == max(runs["earl"]):
                    summary.append((op, n, fmt_bytes(b), e[1], best, ratio))
    out("\n## largest size: earl vs the best Open MPI run\n")
    out("| op | ranks | bytes | earl busbw | best MPI busbw | ratio |")
    out("|---|---:|---:|---:|---:|---:|")
    for op, n, b, e, best, ratio in summary:
        out(f"| {op} | {n} | {b} | {e:.3f} | {best:.3f} | {ratio} |")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
