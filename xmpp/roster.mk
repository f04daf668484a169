# rosters, presence and subscriptions (RFC 6121), offline messages (XEP-0160,
# XEP-0013)
libparley_a_SOURCES += xmpp/roster.h xmpp/roster_sub.c xmpp/roster_cache.c xmpp/roster.c \
	xmpp/presence.c \
	xmpp/offline.h xmpp/offline.c xmpp/offline_flex.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_roster
TESTS += test/unit/test_roster
test_unit_test_roster_SOURCES = test/unit/test_roster.c
test_unit_test_roster_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_roster_LDADD = $(UNIT_LIBS)
endif

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_offline
TESTS += test/unit/test_offline
test_unit_test_offline_SOURCES = test/unit/test_offline.c
test_unit_test_offline_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_offline_LDADD = $(UNIT_LIBS)
endif
