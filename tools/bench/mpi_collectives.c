/*
 * mpi_collectives: the Open MPI reference for `tools bench collective`.
 *
 *   mpirun -np N mpi_collectives --op allreduce|reduce_scatter|allgather
 *          --min-bytes B --max-bytes B [--iters N] [--warmup N] [--check]
 *
 * Same sizes, timing and output line as earl's benchmark (tools/collective.go),
 * which follow nccl-tests: for each power of two from min to max bytes,
 * `warmup` untimed calls, then `iters` back-to-back calls timed with
 * MPI_Wtime; the mean per call is averaged over ranks. bytes is the full
 * vector; count is its elements for allreduce and one rank's block for
 * reduce_scatter and allgather (the vector is count x ranks). algbw =
 * bytes / time (1 GB = 1e9 B); busbw = algbw x 2(n-1)/n for allreduce and
 * x (n-1)/n for the others. The calls mirror earl's Comm: MPI_Allreduce in
 * place (earl's AllReduce is in place), MPI_Reduce_scatter_block from the
 * full vector into a separate block, MPI_Allgather from a separate block
 * into the full vector; float32 sum. --check runs one more call on inputs
 * with exact known results and counts wrong elements over all ranks.
 *
 * Build: mpicc -O2 -o mpi_collectives mpi_collectives.c
 */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ALLREDUCE, REDUCE_SCATTER, ALLGATHER };

static long parse_bytes(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  if (*end == 'K' || *end == 'k') n <<= 10;
  else if (*end == 'M' || *end == 'm') n <<= 20;
  else if (*end == 'G' || *end == 'g') n <<= 30;
  else if (*end != '\0') n = -1;
  return n;
}

/* Rank r's check input at element i: small integers, so sums are exact. */
static float check_value(int r, long i) { return (float)((r + 1) * 3 + i % 97); }

static float expected_sum(long i, int n) {
  long s = 0;
  for (int r = 0; r < n; r++) s += (r + 1) * 3 + i % 97;
  return (float)s;
}

static int run(int op, float *x, float *shard, long full, long per) {
  switch (op) {
  case ALLREDUCE:
    return MPI_Allreduce(MPI_IN_PLACE, x, (int)full, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  case REDUCE_SCATTER:
    return MPI_Reduce_scatter_block(x, shard, (int)per, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  default:
    return MPI_Allgather(shard, (int)per, MPI_FLOAT, x, (int)per, MPI_FLOAT, MPI_COMM_WORLD);
  }
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, n;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);

  const char *opname = "allreduce";
  long minb = 1024, maxb = 64L << 20;
  int iters = 20, warmup = 5, check = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--op") && i + 1 < argc) opname = argv[++i];
    else if (!strcmp(argv[i], "--min-bytes") && i + 1 < argc) minb = parse_bytes(argv[++i]);
    else if (!strcmp(argv[i], "--max-bytes") && i + 1 < argc) maxb = parse_bytes(argv[++i]);
    else if (!strcmp(argv[i], "--iters") && i + 1 < argc) iters = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--check")) check = 1;
    else {
      if (rank == 0) fprintf(stderr, "mpi_collectives: unknown argument %s\n", argv[i]);
      MPI_Abort(MPI_COMM_WORLD, 2);
    }
  }
  int op = !strcmp(opname, "allreduce") ? ALLREDUCE
         : !strcmp(opname, "reduce_scatter") ? REDUCE_SCATTER
         : !strcmp(opname, "allgather") ? ALLGATHER : -1;
  if (op < 0 || minb <= 0 || maxb < minb || iters < 1 || warmup < 0) {
    if (rank == 0) fprintf(stderr, "mpi_collectives: bad --op, sizes or counts\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  double factor = op == ALLREDUCE ? 2.0 * (n - 1) / n : (double)(n - 1) / n;

  float *xbuf = malloc((size_t)maxb / 4 * sizeof(float) + 64);
  float *sbuf = malloc(((size_t)maxb / 4 / n + 1) * sizeof(float) + 64);
  if (!xbuf || !sbuf) MPI_Abort(MPI_COMM_WORLD, 1);

  if (rank == 0) {
    printf("# Open MPI %s, float32 sum, %d ranks, warmup %d, iters %d, check %s\n", opname, n, warmup, iters,
           check ? "on" : "off");
    printf("# %-14s %12s %12s %10s %11s %11s %7s\n", "op", "bytes", "count", "time_us", "algbw_GBps", "busbw_GBps",
           "#wrong");
  }
  for (long bytes = minb; bytes <= maxb; bytes *= 2) {
    long per = bytes / 4 / n, full = op == ALLREDUCE ? bytes / 4 : per * n;
    memset(xbuf, 0, (size_t)full * sizeof(float));
    memset(sbuf, 0, (size_t)per * sizeof(float));
    for (int i = 0; i < warmup; i++) run(op, xbuf, sbuf, full, per);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int i = 0; i < iters; i++) run(op, xbuf, sbuf, full, per);
    double t = (MPI_Wtime() - t0) / iters, tsum;
    MPI_Allreduce(&t, &tsum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    t = tsum / n;

    long wrong = 0, wsum = 0;
    if (check) {
      if (op == ALLGATHER) {
        for (long i = 0; i < full; i++) xbuf[i] = NAN;
        for (long j = 0; j < per; j++) sbuf[j] = check_value(rank, rank * per + j);
      } else {
        for (long i = 0; i < full; i++) xbuf[i] = check_value(rank, i);
      }
      run(op, xbuf, sbuf, full, per);
      if (op == ALLREDUCE) {
        for (long i = 0; i < full; i++) wrong += xbuf[i] != expected_sum(i, n);
      } else if (op == REDUCE_SCATTER) {
        for (long j = 0; j < per; j++) wrong += sbuf[j] != expected_sum(rank * per + j, n);
      } else {
        for (long i = 0; i < full; i++) wrong += xbuf[i] != check_value((int)(i / per), i);
      }
    }
    MPI_Allreduce(&wrong, &wsum, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
      double algbw = (double)full * 4 / t / 1e9;
      char w[32];
      if (check) snprintf(w, sizeof w, "%ld", wsum);
      else snprintf(w, sizeof w, "N/A");
      printf("  %-14s %12ld %12ld %10.1f %11.3f %11.3f %7s\n", opname, full * 4, op == ALLREDUCE ? full : per,
             t * 1e6, algbw, algbw * factor, w);
      fflush(stdout);
    }
  }
  free(xbuf);
  free(sbuf);
  MPI_Finalize();
  return 0;
}
