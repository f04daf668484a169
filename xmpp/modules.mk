# the basic server modules: version, time, last activity, vCard, private
# storage, blocking, in-band registration, entity caps (server pings and
# contact addresses live in ping.c and disco.c)
libparley_a_SOURCES += xmpp/modules.h xmpp/modopt.c xmpp/modstore.c xmpp/caps.c \
	xmpp/mod_version.c xmpp/mod_time.c xmpp/mod_last.c xmpp/mod_vcard.c \
	xmpp/mod_private.c xmpp/mod_blocking.c xmpp/mod_register.c xmpp/mod_caps.c

if HAVE_CMOCKA
check_PROGRAMS += test/unit/test_modules
TESTS += test/unit/test_modules
test_unit_test_modules_SOURCES = test/unit/test_modules.c
test_unit_test_modules_CFLAGS = $(UNIT_CFLAGS)
test_unit_test_modules_LDADD = $(UNIT_LIBS)
endif
