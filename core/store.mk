# core: storage, users, SCRAM, commands, control socket
libparley_a_SOURCES += \
	core/store.h core/store.c core/users.h core/users.c \
	core/scram.h core/scram.c core/cmd.h core/cmd.c core/ctl.h core/ctl.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_scram
TESTS += test/unit/test_scram
check_PROGRAMS += test/unit/test_store
TESTS += test/unit/test_store
check_PROGRAMS += test/unit/test_users
TESTS += test/unit/test_users
check_PROGRAMS += test/unit/test_cmd
TESTS += test/unit/test_cmd
check_PROGRAMS += test/unit/test_ctl
TESTS += test/unit/test_ctl
test_unit_test_scram_SOURCES = test/unit/test_scram.c
test_unit_test_scram_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_scram_LDADD = $(UNIT_LIBS)
test_unit_test_store_SOURCES = test/unit/test_store.c
test_unit_test_store_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_store_LDADD = $(UNIT_LIBS)
test_unit_test_users_SOURCES = test/unit/test_users.c
test_unit_test_users_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_users_LDADD = $(UNIT_LIBS)
test_unit_test_cmd_SOURCES = test/unit/test_cmd.c
test_unit_test_cmd_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_cmd_LDADD = $(UNIT_LIBS)
test_unit_test_ctl_SOURCES = test/unit/test_ctl.c
test_unit_test_ctl_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_ctl_LDADD = $(UNIT_LIBS)
endif
