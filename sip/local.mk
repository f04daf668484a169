# sip: transports (the `sip` listen module) and request handling
libparley_a_SOURCES += sip/sip.h sip/sip_transport.c sip/sip_options.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_sip
TESTS += test/unit/test_sip
test_unit_test_sip_SOURCES = test/unit/test_sip.c
test_unit_test_sip_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_sip_LDADD = $(UNIT_LIBS)
endif

EXTRA_DIST += test/fuzz/fuzz_sip.c test/fuzz/fuzz_sip.dict test/interop/test_sip.py \
	test/interop/sip/options.xml test/interop/sip/options_404.xml
