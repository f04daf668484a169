# unit tests of the reactor, shards, connections and config
if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_ev test/unit/test_shard test/unit/test_conn test/unit/test_cfg \
	test/unit/test_hook test/unit/test_tls test/unit/test_strtab test/unit/test_dlist
TESTS += test/unit/test_ev test/unit/test_shard test/unit/test_conn test/unit/test_cfg \
	test/unit/test_hook test/unit/test_tls test/unit/test_strtab test/unit/test_dlist
test_unit_test_ev_SOURCES = test/unit/test_ev.c
test_unit_test_ev_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ev_LDADD = $(UNIT_LIBS)
test_unit_test_shard_SOURCES = test/unit/test_shard.c
test_unit_test_shard_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_shard_LDADD = $(UNIT_LIBS)
test_unit_test_conn_SOURCES = test/unit/test_conn.c
test_unit_test_conn_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_conn_LDADD = $(UNIT_LIBS)
test_unit_test_cfg_SOURCES = test/unit/test_cfg.c
test_unit_test_cfg_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_cfg_LDADD = $(UNIT_LIBS)
test_unit_test_hook_SOURCES = test/unit/test_hook.c
test_unit_test_hook_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_hook_LDADD = $(UNIT_LIBS)
test_unit_test_tls_SOURCES = test/unit/test_tls.c
test_unit_test_tls_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_tls_LDADD = $(UNIT_LIBS)
test_unit_test_strtab_SOURCES = test/unit/test_strtab.c
test_unit_test_strtab_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_strtab_LDADD = $(UNIT_LIBS)
test_unit_test_dlist_SOURCES = test/unit/test_dlist.c
test_unit_test_dlist_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_dlist_LDADD = $(UNIT_LIBS)
endif
