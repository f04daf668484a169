# ice: STUN codec and the `stun` listen module
libparley_a_SOURCES += ice/stun.h ice/stun.c ice/stun_server.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_stun
TESTS += test/unit/test_stun
test_unit_test_stun_SOURCES = test/unit/test_stun.c
test_unit_test_stun_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_stun_LDADD = $(UNIT_LIBS)
endif

EXTRA_DIST += test/fuzz/fuzz_stun.c test/interop/test_stun.py
