# parley-bench: the XMPP load generator (docs/benchmarks.md). Standalone:
# it links OpenSSL only, so it measures the server, not shared code.
bin_PROGRAMS += parley-bench
parley_bench_SOURCES = tools/bench/bench.h tools/bench/bench_main.c \
	tools/bench/bench_net.c tools/bench/bench_xmpp.c tools/bench/bench_ctl.c \
	tools/bench/bench_scan.h tools/bench/bench_scan.c \
	tools/bench/bench_hist.h tools/bench/bench_hist.c \
	tools/bench/bench_scram.h tools/bench/bench_scram.c
parley_bench_CFLAGS = $(PL_CFLAGS) -I$(top_srcdir) $(OPENSSL_CFLAGS)
parley_bench_LDADD = $(OPENSSL_LIBS) -lm
EXTRA_DIST += tools/bench-compare

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_bench
TESTS += test/unit/test_bench
test_unit_test_bench_SOURCES = test/unit/test_bench.c tools/bench/bench_scan.c \
	tools/bench/bench_hist.c tools/bench/bench_scram.c
test_unit_test_bench_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_bench_LDADD = $(UNIT_LIBS)
endif
